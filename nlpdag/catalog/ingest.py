"""What `ingest` writes (dvc.yaml's outs of the stage), and the folder it reads a user's corpus from.

The catalog has one module per producing stage: a stage depends on the modules of the artefacts it
reads and writes, so naming a new artefact reruns only the stages that use it."""
from pathlib import Path

RAW_DIR = Path("data/raw")
CORPUS = Path("data/corpus.parquet")
LABELS = Path("data/labels.json")
INGEST_SCORES = Path("reports/scores/ingest.json")  # everything the report reads
INGEST_METRICS = Path("reports/metrics/ingest.json")  # headline: documents
