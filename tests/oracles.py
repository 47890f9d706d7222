"""Reference implementations that only the tests use: whole-corpus, in-memory versions of what
the stages do a chunk at a time (nlpdag.text.*), against which the chunked code is checked, and
the bare NB log-count ratio the NB baselines fold into their weights.

They reuse the library's own helpers (readers' error handling, the pair counter, the ratio), so
what they add is only the "everything at once" part. Imported as `from oracles import ...`
(pytest puts tests/ on the path, as for tests/imports.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

from nlpdag.errors import StageError
from nlpdag.models.linear_state import BaselineError, binarise, check_labels
from nlpdag.models.nblinear import _ratios
from nlpdag.text.cooccur import CHUNK_TOKENS, left_counts
from nlpdag.text.corpus import _select, detect_format, read_errors


def _identity(doc):
    return doc


# ---------------------------------------------------------------------------------------------
# ingest: the whole corpus at once (nlpdag.text.corpus.iter_corpus reads it a chunk at a time)


def read_folder(path: Path) -> pd.DataFrame:
    """One sub-folder of `.txt` files per label (the aclImdb layout)."""
    rows = []
    for label_dir in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(label_dir.glob("*.txt")):
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise StageError(f"{file}: not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
            rows.append((text, label_dir.name))
    if not rows:
        raise StageError(f"{path}: no <label>/*.txt files found in the folder")
    return pd.DataFrame(rows, columns=["text", "label"])


def read_corpus(path: Path, fmt: str, text_column: str, label_column: str,
                source_column: str) -> pd.DataFrame:
    """Read any supported corpus into columns text, label, source (source None when absent)."""
    if not path.exists():
        raise StageError(f"{path}: corpus file not found (data.path)")
    fmt = detect_format(path, fmt)
    with read_errors(path, fmt):
        if fmt == "folder":
            if not path.is_dir():
                raise StageError(f"{path}: data.format is folder but the path is not a folder")
            frame = read_folder(path)
            text_column, label_column = "text", "label"
        elif fmt in ("csv", "tsv"):
            frame = pd.read_csv(path, sep="," if fmt == "csv" else "\t", encoding="utf-8",
                                keep_default_na=False, na_values=[""])
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True, encoding="utf-8")
    return _select(frame, path, text_column, label_column, source_column, 0)


# ---------------------------------------------------------------------------------------------
# tokenise: phrases on a list of documents (nlpdag.text.tokenise.tokenise_chunks learns them streamed)


def apply_phrases(docs: list[list[str]], train_mask: Sequence[bool], min_count: int,
                  threshold: float) -> list[list[str]]:
    """Join frequent collocations ("new_york") with gensim Phrases learnt on the training split only."""
    from gensim.models.phrases import Phrases

    train_docs = [d for d, is_train in zip(docs, train_mask) if is_train]
    frozen = Phrases(train_docs, min_count=min_count, threshold=threshold).freeze()
    return [frozen[d] for d in docs]


# ---------------------------------------------------------------------------------------------
# bow: whole matrices (nlpdag.text.bow.bow_chunks writes them a batch at a time)


def count_matrix(docs: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> sp.csr_matrix:
    """docs x vocabulary term counts; tokens outside the vocabulary are ignored."""
    vectorizer = CountVectorizer(vocabulary=list(vocabulary), analyzer=_identity, dtype=np.int32)
    return vectorizer.transform(docs).tocsr()


def tfidf_matrix(counts: sp.csr_matrix, train_mask: np.ndarray, sublinear_tf: bool = True) -> sp.csr_matrix:
    """TF-IDF with idf learnt on the training rows only, rows L2-normalised."""
    transformer = TfidfTransformer(sublinear_tf=sublinear_tf).fit(counts[train_mask])
    return transformer.transform(counts).astype(np.float32).tocsr()


# ---------------------------------------------------------------------------------------------
# cooccur: one in-memory matrix (nlpdag.text.cooccur.count_chunks spills and merges shards)


def count_cooccurrences(ids: np.ndarray, docs: np.ndarray, vocab_size: int, window: int = 10,
                        weighting: str = "harmonic", chunk_tokens: int = CHUNK_TOKENS) -> sp.csr_matrix:
    """Symmetric co-occurrence counts X (vocab_size x vocab_size, float64, CSR).

    `ids` are in-vocabulary token ids in corpus order and `docs` the document of each (non-decreasing).
    """
    left = sp.csr_matrix((vocab_size, vocab_size), dtype=np.float64)  # context before target
    for part in left_counts(ids, docs, vocab_size, window, weighting, chunk_tokens):
        left = left + part
    return symmetric(left)


def symmetric(left: sp.csr_matrix) -> sp.csr_matrix:
    matrix = (left + left.T).tocsr()
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def cooccurrence_table(matrix: sp.csr_matrix) -> pa.Table:
    coo = matrix.tocoo()
    return pa.table({"i": pa.array(coo.row.astype(np.int32)), "j": pa.array(coo.col.astype(np.int32)),
                     "x": pa.array(coo.data.astype(np.float32))})


# ---------------------------------------------------------------------------------------------
# baselines: the ratio r on its own (NB-LR and NBSVM compute it inside `fit`)


def nb_log_count_ratio(X, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """NB log-count ratio on binarised features, smoothed by alpha: shape (n_features,) for two
    classes (positive = the larger label), (k, n_features) one-vs-rest for k > 2 classes."""
    if alpha <= 0:
        raise BaselineError(f"alpha must be > 0 (got {alpha}): r is undefined for unseen features")
    Xb = binarise(X)
    y, classes = check_labels(y, Xb.shape[0])
    r = _ratios(Xb, y, classes, alpha)
    return r[1] if len(classes) == 2 else r
