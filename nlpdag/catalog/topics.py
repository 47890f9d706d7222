"""What `topics` writes."""
from pathlib import Path

TOPICS = Path("data/topics.parquet")
TOPICS_METRICS = Path("reports/metrics/topics.json")
