"""What `evaluate` writes."""
from pathlib import Path

NEIGHBOURS = Path("reports/neighbours.json")
EMBEDDINGS_METRICS = Path("reports/metrics/embeddings.json")
