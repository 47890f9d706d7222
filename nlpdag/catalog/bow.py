"""What `bow` writes."""
from pathlib import Path

BOW_DIR = Path("data/bow")
COUNTS = BOW_DIR / "counts.parquet"
TFIDF = BOW_DIR / "tfidf.parquet"
BOW_PREDICTIONS = BOW_DIR / "predictions.parquet"
BOW_METRICS = Path("reports/metrics/bow.json")
