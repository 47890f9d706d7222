"""What `topics` writes."""
from pathlib import Path

TOPICS = Path("data/topics.parquet")
TOPICS_SCORES = Path("reports/scores/topics.json")  # everything the report reads
TOPICS_METRICS = Path("reports/metrics/topics.json")  # headline: coherence per model
