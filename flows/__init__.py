"""Prefect flows over the DVC pipeline: `pipeline` (nlpdag run), `serve` (schedules), `sweep` (work pools)."""
