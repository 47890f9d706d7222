"""Non-neural baselines of the classifier table, called by the `classify` stage.

- NB log-count ratio features (Wang & Manning 2012): binarised word n-gram indicators scaled by
  r = log((p/|p|1) / (q/|q|1)), then logistic regression (NB-LR) or a linear SVM whose weights are
  interpolated towards their mean magnitude (NBSVM). More than two classes: one-vs-rest, each
  class with its own r.
- Averaged word vectors (plain or idf-weighted) and document vectors, standardised, then
  multinomial logistic regression.

Every function is pure (arrays in, arrays or fitted estimators out); the stage does the I/O.
A fitted estimator has `classes_`, `predict(X)` and `predict_proba(X)` -> (n, k), columns in
`classes_` order. Tuned defaults (validation slice of the training split, bench/baselines.py) are
in DEFAULT_C / DEFAULT_BETA.

Fitted estimators are saved as plain data (`save_estimator` / `load_estimator`): settings as JSON,
learned arrays (the attributes ending in `_`) as a NumPy .npz read with allow_pickle=False.
"""
from __future__ import annotations

import json
from collections import Counter
from itertools import chain
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from nlpdag.evaluation import protocol as evaluation
from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path, write_json

# Chosen on a validation slice of the default corpus's training split (bench/baselines.py --tune).
DEFAULT_C = {"nb_logreg": 1.0, "nbsvm": 0.01, "dense_logreg": 1.0}
DEFAULT_BETA = 0.25


class BaselineError(StageError, ValueError):
    """Unusable training data (one class only, mismatched lengths). A ValueError for callers that
    use the functions as a library, a StageError so that the stage reports it as one line."""


def _identity(doc):
    return doc


def _labels(y: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise BaselineError(f"y_train has shape {y.shape}, expected ({n_rows},): one label per training row")
    classes = np.unique(y)
    if len(classes) < 2:
        found = f"only {np.asarray(classes[0]).item()!r} (every training row has that label)" if len(classes) else "no labels"
        raise BaselineError(f"a classifier needs at least two classes in y_train, found {found}")
    return y, classes


def _binarise(X) -> sp.csr_matrix:
    X = sp.csr_matrix(X)
    # a new matrix: the caller's arrays must not change
    out = sp.csr_matrix(((X.data != 0).astype(np.float64), X.indices.copy(), X.indptr.copy()), shape=X.shape)
    out.eliminate_zeros()
    return out


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


def _ratios(Xb: sp.csr_matrix, y: np.ndarray, classes: np.ndarray, alpha: float) -> np.ndarray:
    """(k, n_features): row c is r for class c against all other classes."""
    onehot = sp.csr_matrix((np.ones(len(y)), (np.searchsorted(classes, y), np.arange(len(y)))),
                           shape=(len(classes), len(y)))
    per_class = np.asarray((onehot @ Xb).todense())
    rest = per_class.sum(axis=0, keepdims=True) - per_class
    p, q = per_class + alpha, rest + alpha
    return np.log(p / p.sum(axis=1, keepdims=True)) - np.log(q / q.sum(axis=1, keepdims=True))


class _NBLinear:
    """Shared by NB-LR and NBSVM: one binary linear model per target on r-scaled binarised features.
    r is folded into the stored weights, so predicting is one sparse product on binarised X."""

    def __init__(self, C: float, alpha: float = 1.0, seed: int = 0):
        self.C, self.alpha, self.seed = C, alpha, seed

    def _fit_binary(self, Xr: sp.csr_matrix, target: np.ndarray) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    def fit(self, X, y) -> "_NBLinear":
        Xb = _binarise(X)
        y, self.classes_ = _labels(y, Xb.shape[0])
        r = _ratios(Xb, y, self.classes_, self.alpha)
        # Two classes need one model (positive = classes_[1]); more classes, one per class.
        targets = [1] if len(self.classes_) == 2 else range(len(self.classes_))
        self.r_ = r[list(targets)]
        weights, intercepts = [], []
        for row, c in zip(self.r_, targets):
            w, b = self._fit_binary(Xb @ sp.diags(row), y == self.classes_[c])
            weights.append(w)
            intercepts.append(b)
        self.w_ = np.vstack(weights)  # the linear models' weights on the r-scaled features
        self.coef_ = self.w_ * self.r_
        self.intercept_ = np.asarray(intercepts)
        return self

    def decision_function(self, X) -> np.ndarray:
        """(n,) margins for two classes, (n, k) for more."""
        Xb = _binarise(X)
        if Xb.shape[1] != self.coef_.shape[1]:
            raise BaselineError(f"X has {Xb.shape[1]} features, the model was fitted on {self.coef_.shape[1]}")
        scores = np.asarray(Xb @ self.coef_.T) + self.intercept_
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[index]

    def get_params(self) -> dict:
        return {"C": self.C, "alpha": self.alpha, "seed": self.seed}

    def save(self, folder: str | Path) -> None:
        """What predicting needs: coef_ (r folded in), intercept_, classes_; the settings for the record."""
        save_state(folder, type(self).__name__, self.get_params(),
                    {"coef_": self.coef_, "intercept_": self.intercept_, "classes_": self.classes_})

    @classmethod
    def load(cls, folder: str | Path) -> "_NBLinear":
        name, params, arrays = load_state(folder)
        kinds = {k.__name__: k for k in (NBLogisticRegression, NBSVM)}
        if name not in kinds or (cls is not _NBLinear and kinds[name] is not cls):
            raise BaselineError(f"{folder}: holds a {name}, not a {cls.__name__}")
        model = kinds[name](**params)
        model.coef_, model.intercept_, model.classes_ = arrays["coef_"], arrays["intercept_"], arrays["classes_"]
        return model


class NBLogisticRegression(_NBLinear):
    def _fit_binary(self, Xr, target):
        # the dual solver: 7x faster than the primal one with n-gram features (n_features >> n_docs),
        # same test accuracy on the default corpus
        model = LogisticRegression(C=self.C, solver="liblinear", dual=True, max_iter=1000, random_state=self.seed)
        model.fit(Xr, target.astype(int))
        return model.coef_[0], float(model.intercept_[0])

    def predict_proba(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1 - p, p])
        # one-vs-rest probabilities, renormalised (as scikit-learn's OvR logistic regression)
        p = expit(scores)
        return p / p.sum(axis=1, keepdims=True)


class NBSVM(_NBLinear):
    """Wang & Manning's NBSVM: w' = (1 - beta) mean|w| + beta w, intercept kept."""

    def __init__(self, C: float, beta: float = DEFAULT_BETA, alpha: float = 1.0, seed: int = 0):
        if not 0.0 <= beta <= 1.0:
            raise BaselineError(f"beta must be in [0, 1] (got {beta})")
        super().__init__(C, alpha, seed)
        self.beta = beta

    def get_params(self) -> dict:
        return {**super().get_params(), "beta": self.beta}

    def _fit_binary(self, Xr, target):
        model = LinearSVC(C=self.C, dual=True, max_iter=5000, random_state=self.seed)
        model.fit(Xr, target.astype(int))
        w = model.coef_[0]
        return (1 - self.beta) * np.abs(w).mean() + self.beta * w, float(model.intercept_[0])

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the margins (sigmoid for two classes): a ranking score for roc_auc whose
        argmax is `predict`, not a calibrated probability."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.column_stack([1 - p, p])
        return softmax(scores, axis=1)


def fit_nb_logreg(X_train, y_train: np.ndarray, C: float, seed: int = 0, alpha: float = 1.0) -> NBLogisticRegression:
    """NB-LR: liblinear logistic regression on r-scaled binarised features (one-vs-rest for k > 2)."""
    return NBLogisticRegression(C=C, alpha=alpha, seed=seed).fit(X_train, y_train)


def fit_nbsvm(X_train, y_train: np.ndarray, C: float, beta: float = DEFAULT_BETA, seed: int = 0,
              alpha: float = 1.0) -> NBSVM:
    """NBSVM: LinearSVC on r-scaled binarised features, weights interpolated by beta."""
    return NBSVM(C=C, beta=beta, alpha=alpha, seed=seed).fit(X_train, y_train)


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
    _labels(y_train, X_train.shape[0])
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

ESTIMATOR_JSON, ESTIMATOR_NPZ = "estimator.json", "estimator.npz"


def save_state(folder: str | Path, kind: str, params: dict, arrays: Mapping[str, np.ndarray]) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        if np.asarray(a).dtype == object:  # would need code to run to read back
            raise BaselineError(f"{name}: an object array cannot be saved as plain data")
    with atomic_path(folder / ESTIMATOR_NPZ) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
    write_json({"estimator": kind, "params": params}, folder / ESTIMATOR_JSON)


def load_state(folder: str | Path) -> tuple[str, dict, dict[str, np.ndarray]]:
    folder = Path(folder)
    try:
        meta = json.loads((folder / ESTIMATOR_JSON).read_text(encoding="utf-8"))
        with np.load(folder / ESTIMATOR_NPZ, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        return meta["estimator"], meta["params"], arrays
    except (OSError, KeyError, ValueError) as exc:
        raise BaselineError(f"{folder}: not a saved estimator ({exc.__class__.__name__}: {exc})") from None


def logreg_state(model: LogisticRegression) -> dict[str, np.ndarray]:
    """A fitted LogisticRegression's learned arrays: all `predict_proba` reads."""
    return {"coef_": model.coef_, "intercept_": model.intercept_, "classes_": model.classes_}


def logreg_from_state(arrays: Mapping[str, np.ndarray], **params) -> LogisticRegression:
    """A LogisticRegression that predicts as the one `logreg_state` described (not refitted)."""
    model = LogisticRegression(**params)
    model.coef_, model.intercept_ = np.asarray(arrays["coef_"]), np.asarray(arrays["intercept_"])
    model.classes_ = np.asarray(arrays["classes_"])
    model.n_features_in_ = model.coef_.shape[1]
    model.n_iter_ = np.zeros(1, dtype=np.int32)
    return model


def save_estimator(model, folder: str | Path) -> None:
    """An NB-LR / NBSVM model or `fit_dense_logreg`'s pipeline (StandardScaler's mean_/scale_, then the
    logistic regression's coef_/intercept_/classes_)."""
    if isinstance(model, _NBLinear):
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
        return _NBLinear.load(folder)
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = arrays["mean_"], arrays["scale_"], arrays["var_"]
    scaler.n_features_in_ = len(scaler.mean_)
    scaler.n_samples_seen_ = 0
    return make_pipeline(scaler, logreg_from_state(arrays, C=params.get("C", 1.0)))
