"""What `evaluate` writes."""
from pathlib import Path

NEIGHBOURS = Path("reports/neighbours.json")
EMBEDDINGS_SCORES = Path("reports/scores/embeddings.json")  # everything the report reads
EMBEDDINGS_METRICS = Path("reports/metrics/embeddings.json")  # headline: per method analogy, WS353, SimLex, seconds
