"""Non-neural baselines of the classifier table, called by the `classify` stage.

- n-gram counts, the features of the NB log-count ratio models (nlpdag/models/nblinear.py).
- Averaged word vectors (plain or idf-weighted) and document vectors, standardised, then
  multinomial logistic regression.

Every function is pure (arrays in, arrays or fitted estimators out); the stage does the I/O.
A fitted estimator has `classes_`, `predict(X)` and `predict_proba(X)` -> (n, k), columns in
`classes_` order. Tuned defaults (validation slice of the training split, bench/baselines.py) are
in DEFAULT_C (and nblinear.DEFAULT_BETA).

Fitted estimators are saved as plain data (`save_estimator` / `load_estimator`, nlpdag/models/linear_state.py).
"""
from __future__ import annotations

from collections import Counter
from itertools import chain
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from nlpdag.evaluation import protocol as evaluation
from nlpdag.models.linear_state import BaselineError, check_labels, load_state, logreg_from_state, logreg_state, save_state
from nlpdag.models.nblinear import NBLinear

# Chosen on a validation slice of the default corpus's training split (bench/baselines.py --tune).
DEFAULT_C = {"nb_logreg": 1.0, "nbsvm": 0.01, "dense_logreg": 1.0}


def _identity(doc):
    return doc



# ---------------------------------------------------------------------------------------------
# n-gram features and NB log-count ratios


def ngram_vectorizer(ngram_max: int = 2, min_df: int = 2, vocabulary: Sequence[str] | None = None) -> CountVectorizer:
    """Word 1..ngram_max-gram counts of token lists; with `vocabulary` (the fitted one's n-grams in
    column order, `ngram_vocabulary`) a ready vectorizer for new documents, columns unchanged."""
    return CountVectorizer(tokenizer=_identity, preprocessor=_identity, token_pattern=None,
                           lowercase=False, ngram_range=(1, ngram_max), min_df=min_df, dtype=np.float32,
                           vocabulary=None if vocabulary is None else list(vocabulary))


def ngram_vocabulary(vectorizer: CountVectorizer) -> list[str]:
    """A fitted vectorizer's n-grams in column order."""
    return vectorizer.get_feature_names_out().tolist()


def ngram_features(train_docs: Sequence[Sequence[str]], test_docs: Sequence[Sequence[str]],
                   ngram_max: int = 2, min_df: int = 2) -> tuple[CountVectorizer, sp.csr_matrix, sp.csr_matrix]:
    """`ngram_counts` and the fitted vectorizer (kept to serve new texts)."""
    vectorizer = ngram_vectorizer(ngram_max, min_df)
    X_train = vectorizer.fit_transform(train_docs).tocsr()
    X_test = vectorizer.transform(test_docs).tocsr() if len(test_docs) else sp.csr_matrix((0, X_train.shape[1]), dtype=np.float32)
    return vectorizer, X_train, X_test


def ngram_counts(train_docs: Sequence[Sequence[str]], test_docs: Sequence[Sequence[str]],
                 ngram_max: int = 2, min_df: int = 2) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Word 1..ngram_max-gram counts over the training split's n-grams seen in >= min_df of its
    documents (as the bow stage's baseline); test n-grams outside that vocabulary are dropped."""
    return ngram_features(train_docs, test_docs, ngram_max, min_df)[1:]



# ---------------------------------------------------------------------------------------------
# averaged word vectors and dense features


def idf_weights(docs_train: Sequence[Sequence[str]], min_df: int = 1) -> dict[str, float]:
    """Smoothed idf of every token in >= min_df training documents, the formula of scikit-learn's
    TfidfTransformer and the bow stage: ln((1 + n) / (1 + df)) + 1."""
    df = Counter(chain.from_iterable(set(doc) for doc in docs_train))
    n = len(docs_train)
    # Sorted: a set's order, and so the Counter's, follows Python's per-process string hash; saved
    # models (data/models/rows/*/idf.parquet) must not.
    return {t: float(np.log((1 + n) / (1 + d)) + 1) for t, d in sorted(df.items()) if d >= min_df}


def idf_from_doc_freq(tokens: Sequence[str], doc_freq: Sequence[int], n_docs: int) -> dict[str, float]:
    """The same idf from data/vocab.parquet's doc_freq (counted on the training split), so the
    stage need not rescan the tokens; n_docs is the number of training documents."""
    df = np.asarray(doc_freq, dtype=np.float64)
    return dict(zip(tokens, (np.log((1 + n_docs) / (1 + df)) + 1).tolist()))


def doc_word_matrix(docs: Sequence[Sequence[str]], tokens: Sequence[str],
                    weights: Mapping[str, float] | None = None) -> sp.csr_matrix:
    """docs x tokens matrix of counts (times each token's weight); tokens outside `tokens`, and
    with weights, tokens without a weight, are left out. Duplicate tokens: the first row counts."""
    index = pd.Index(tokens, dtype=object)
    first = ~index.duplicated()
    lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
    codes = index[first].get_indexer(pd.Index(list(chain.from_iterable(docs)), dtype=object))
    if not first.all() and len(codes):
        codes = np.where(codes >= 0, np.flatnonzero(first)[np.maximum(codes, 0)], -1)
    rows = np.repeat(np.arange(len(docs)), lengths)
    values = np.ones(len(tokens), dtype=np.float64)
    if weights is not None:
        values = np.array([weights.get(t, 0.0) for t in tokens], dtype=np.float64)
    keep = codes >= 0
    keep[keep] = values[codes[keep]] != 0
    # rows are already grouped by document, so CSR is built directly (one entry per occurrence)
    # and repeats summed per row: about twice as fast as scipy's COO conversion on millions of tokens
    word = codes[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=len(docs)))])
    matrix = sp.csr_matrix((values[word], word, indptr), shape=(len(docs), len(tokens)))
    matrix.sum_duplicates()
    return matrix


def mean_vectors(docs: Sequence[Sequence[str]], tokens: Sequence[str], vectors: np.ndarray,
                 weights: Mapping[str, float] | None = None) -> np.ndarray:
    """(n_docs, dim) float32: the mean of each document's in-vocabulary word vectors, every
    occurrence counted (weighted mean with `weights`, e.g. idf_weights: tokens without a weight are
    left out, as TF-IDF has no feature for them); a zero vector for a document with none."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(tokens):
        raise BaselineError(f"vectors has shape {vectors.shape}, expected ({len(tokens)}, dim): one row per token")
    matrix = doc_word_matrix(docs, tokens, weights)
    totals = np.asarray(matrix.sum(axis=1)).ravel()
    out = np.asarray(matrix @ vectors.astype(np.float64))
    nonzero = totals != 0
    out[nonzero] /= totals[nonzero, None]
    return out.astype(np.float32)


def stack_vectors(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list column (e.g. data/docvecs/*.parquet `vector`) as an (n, dim) float32 matrix."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dim = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)


def fit_dense_logreg(X_train: np.ndarray, y_train: np.ndarray, C: float, seed: int = 0) -> Pipeline:
    """StandardScaler + multinomial LogisticRegression (lbfgs): for mean word vectors and doc vectors."""
    X_train = np.asarray(X_train)
    check_labels(y_train, X_train.shape[0])
    model = make_pipeline(StandardScaler(),
                          LogisticRegression(C=C, solver="lbfgs", max_iter=2000, random_state=seed))
    return model.fit(X_train, np.asarray(y_train))


# ---------------------------------------------------------------------------------------------
# choosing C


def take_rows(X, rows: np.ndarray):
    """Rows of a matrix, or items of a list of token lists."""
    return [X[i] for i in rows] if isinstance(X, list) else X[rows]


def select_C(fit: Callable[[object, np.ndarray, float], object], X_train, y_train: np.ndarray,
             grid: Sequence[float], seed: int = 0, val_fraction: float = 0.2,
             strata: np.ndarray | None = None) -> tuple[float, dict[float, float]]:
    """The C of `grid` with the best accuracy on a held-out slice of the training rows (stratified
    by `strata`, default the labels), and every C's accuracy; ties go to the smaller C
    (`evaluation.select`). `fit(X, y, C)` returns a fitted estimator. The test split is never seen.
    The classify stage uses ingest's validation slice instead; this serves bench/baselines.py."""
    y_train = np.asarray(y_train)
    rows = np.arange(len(y_train))
    fit_rows, val_rows = train_test_split(rows, test_size=val_fraction, random_state=seed,
                                          stratify=y_train if strata is None else strata)
    X_fit, X_val = take_rows(X_train, fit_rows), take_rows(X_train, val_rows)
    return evaluation.select(grid, lambda C: np.mean(fit(X_fit, y_train[fit_rows], C).predict(X_val) == y_train[val_rows]))


# ---------------------------------------------------------------------------------------------
# saving as plain data

def save_estimator(model, folder: str | Path) -> None:
    """An NB-LR / NBSVM model or `fit_dense_logreg`'s pipeline (StandardScaler's mean_/scale_, then the
    logistic regression's coef_/intercept_/classes_)."""
    if isinstance(model, NBLinear):
        return model.save(folder)
    scaler, logreg = model[0], model[-1]
    if not (isinstance(model, Pipeline) and isinstance(scaler, StandardScaler) and isinstance(logreg, LogisticRegression)):
        raise BaselineError(f"cannot save a {type(model).__name__}: not a baseline of this module")
    save_state(folder, "dense_logreg", {"C": float(logreg.C)},
                {"mean_": scaler.mean_, "scale_": scaler.scale_, "var_": scaler.var_, **logreg_state(logreg)})


def load_estimator(folder: str | Path):
    """What `save_estimator` wrote, ready to predict_proba."""
    kind, params, arrays = load_state(folder)
    if kind != "dense_logreg":
        return NBLinear.load(folder)
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = arrays["mean_"], arrays["scale_"], arrays["var_"]
    scaler.n_features_in_ = len(scaler.mean_)
    scaler.n_samples_seen_ = 0
    return make_pipeline(scaler, logreg_from_state(arrays, C=params.get("C", 1.0)))
