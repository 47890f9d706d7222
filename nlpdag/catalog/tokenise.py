"""What `tokenise` writes."""
from pathlib import Path

TOKENS = Path("data/tokens.parquet")
VOCAB = Path("data/vocab.parquet")
PHRASES = Path("data/phrases.parquet")
TOKENISE_SCORES = Path("reports/scores/tokenise.json")  # everything the report reads
TOKENISE_METRICS = Path("reports/metrics/tokenise.json")  # headline: vocabulary size
