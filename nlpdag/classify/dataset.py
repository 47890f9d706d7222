"""What the classifier stages train and score on: the corpus, its token lists and split (`Dataset`,
read here; the dataclass and the row `Result` are nlpdag/evaluation/rows.py's)."""
from __future__ import annotations

import numpy as np

from nlpdag.catalog.ingest import CORPUS, LABELS

from nlpdag.catalog.tokenise import TOKENS
from nlpdag.errors import StageError
from nlpdag.evaluation.rows import Dataset, Result

__all__ = ["Dataset", "Result", "load_dataset", "validation_split"]
from nlpdag.io.tables import read_frame, read_json


def load_dataset() -> Dataset:
    corpus = read_frame(CORPUS)
    tokens = read_frame(TOKENS, columns=["doc_id", "tokens"])
    if not np.array_equal(corpus["doc_id"].to_numpy(), tokens["doc_id"].to_numpy()):
        raise StageError(f"{TOKENS}: documents differ from {CORPUS} (rerun: dvc repro tokenise)")
    if "validation" not in corpus.columns:
        raise StageError(f"{CORPUS}: no validation column (written by an older ingest; rerun: dvc repro ingest)")
    labels = [str(label) for label in read_json(LABELS)]
    train = (corpus["split"] == "train").to_numpy()
    return Dataset(doc_ids=corpus["doc_id"].to_numpy(), y=corpus["label_id"].to_numpy().astype(np.int64),
                   sources=corpus["source"], docs=[list(d) for d in tokens["tokens"]], train=train, labels=labels,
                   validation=corpus["validation"].to_numpy(dtype=bool) & train)


def validation_split(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Positions (within the training split) of the fitting part and of the validation slice that
    ingest chose (stratified by label and source, a function of the texts: nlpdag/evaluation/protocol.py)."""
    val = data.validation[data.train]
    if val.sum() == 0 or val.all():
        raise StageError(f"{CORPUS}: the validation slice of the training split is empty or all of it "
                         "(data.val_fraction)")
    return np.flatnonzero(~val), np.flatnonzero(val)
