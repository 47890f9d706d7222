"""What `tsne` writes."""
from pathlib import Path

TSNE_DIR = Path("data/tsne")
TSNE_WORDS, TSNE_DOCS, TSNE_MAPS = "words.parquet", "docs.parquet", "maps.json"   # inside it
