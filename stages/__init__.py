"""The DVC entry points: one short script per stage of dvc.yaml, wiring only (the logic is nlpdag's)."""
