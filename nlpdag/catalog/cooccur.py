"""What `cooccur` writes."""
from pathlib import Path

COOCCUR = Path("data/cooccur.parquet")
COOCCUR_SCORES = Path("reports/scores/cooccur.json")  # everything the report reads
COOCCUR_METRICS = Path("reports/metrics/cooccur.json")  # headline: seconds
