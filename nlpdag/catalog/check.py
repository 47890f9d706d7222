"""What `check` writes: a stamp every root stage depends on, so that DVC validates params.yaml first."""
from pathlib import Path

CHECKED = Path("data/checked.txt")
