"""Prefect flows over the DVC pipeline, and the `nlpdag` command line."""
