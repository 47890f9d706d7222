"""What `cooccur` writes."""
from pathlib import Path

COOCCUR = Path("data/cooccur.parquet")
COOCCUR_METRICS = Path("reports/metrics/cooccur.json")
