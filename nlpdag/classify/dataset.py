"""What `classify` trains and scores on: the corpus, its token lists and split (`Dataset`), and one
row of the classifier table (`Result`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nlpdag.catalog.ingest import CORPUS, LABELS

from nlpdag.catalog.tokenise import TOKENS
from nlpdag.errors import StageError
from nlpdag.io.tables import read_frame, read_json


@dataclass
class Dataset:
    doc_ids: np.ndarray          # (N,)
    y: np.ndarray                # (N,) label ids
    sources: pd.Series           # (N,) or all-NA
    docs: list[list[str]]        # token lists, in-vocabulary or not
    train: np.ndarray            # (N,) bool
    labels: list[str]
    validation: np.ndarray | None = None   # (N,) bool, within train: the slice every choice is made on

    @property
    def test(self) -> np.ndarray:
        return ~self.train

    def subset(self, mask: np.ndarray) -> list[list[str]]:
        return [d for d, keep in zip(self.docs, mask) if keep]


@dataclass
class Result:
    name: str
    kind: str                    # baseline | neural
    proba: np.ndarray            # (n_test, n_classes)
    seconds: float               # features + selection + fit, the same for every row
    extra: dict = field(default_factory=dict)
    val_proba: np.ndarray | None = None   # (n_validation, n_classes): the chosen setting on the validation slice
    info: dict = field(default_factory=dict)  # C, validation scores, trained_on, transductive...


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
