"""What `reduce` writes, its reducers, and the names of every method's vectors it makes possible:
PCA (reference), plain, denoising, stacked and variational auto-encoders; a reduced method is
named <method>__<reducer>."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from nlpdag.catalog.embeddings import EMBEDDINGS_DIR, METHODS
from nlpdag.errors import StageError

REDUCERS = ["pca", "ae", "dae", "stacked_ae", "vae"]

REDUCED_DIR = Path("data/reduced")        # <method>__<reducer>.parquet
REDUCE_LOSS = Path("reports/plots/reduce_loss.csv")
REDUCE_SCORES = Path("reports/scores/reduce.json")


def vectors_path(method: str, root: Path = Path(".")) -> Path:
    """A method's word vectors, or a reduced method's (<method>__<reducer>)."""
    folder = REDUCED_DIR if "__" in method else EMBEDDINGS_DIR
    return Path(root) / folder / f"{method}.parquet"


def known_methods() -> list[str]:
    return METHODS + [f"{m}__{r}" for m in METHODS for r in REDUCERS]


def check_methods(methods: Sequence[str], key: str, reduced: bool = True) -> None:
    """Stop with one line at a method name that is not a method (or, with `reduced`, <method>__<reducer>)."""
    known = set(known_methods() if reduced else METHODS)
    unknown = [m for m in methods if m not in known]
    if unknown:
        also = f" or <method>__<reducer> with reducer {'|'.join(REDUCERS)}" if reduced else ""
        raise StageError(f"params.yaml: {key}: unknown method {unknown[0]!r}; allowed: {', '.join(METHODS)}{also}")
