"""NB log-count ratio models (Wang & Manning 2012): binarised word n-gram indicators scaled by
r = log((p/|p|1) / (q/|q|1)), then logistic regression (NB-LR) or a linear SVM whose weights are
interpolated towards their mean magnitude (NBSVM). More than two classes: one-vs-rest, each class
with its own r. A fitted model has `classes_`, `predict(X)` and `predict_proba(X)` -> (n, k).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from nlpdag.models.linear_state import BaselineError, binarise, check_labels, load_state, save_state

# Chosen on a validation slice of the default corpus's training split (bench/baselines.py --tune).
DEFAULT_BETA = 0.25


def _ratios(Xb: sp.csr_matrix, y: np.ndarray, classes: np.ndarray, alpha: float) -> np.ndarray:
    """(k, n_features): row c is r for class c against all other classes."""
    onehot = sp.csr_matrix((np.ones(len(y)), (np.searchsorted(classes, y), np.arange(len(y)))),
                           shape=(len(classes), len(y)))
    per_class = np.asarray((onehot @ Xb).todense())
    rest = per_class.sum(axis=0, keepdims=True) - per_class
    p, q = per_class + alpha, rest + alpha
    return np.log(p / p.sum(axis=1, keepdims=True)) - np.log(q / q.sum(axis=1, keepdims=True))


class NBLinear:
    """Shared by NB-LR and NBSVM: one binary linear model per target on r-scaled binarised features.
    r is folded into the stored weights, so predicting is one sparse product on binarised X."""

    def __init__(self, C: float, alpha: float = 1.0, seed: int = 0):
        self.C, self.alpha, self.seed = C, alpha, seed

    def _fit_binary(self, Xr: sp.csr_matrix, target: np.ndarray) -> tuple[np.ndarray, float]:
        raise NotImplementedError

    def fit(self, X, y) -> "NBLinear":
        Xb = binarise(X)
        y, self.classes_ = check_labels(y, Xb.shape[0])
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
        Xb = binarise(X)
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
    def load(cls, folder: str | Path) -> "NBLinear":
        name, params, arrays = load_state(folder)
        kinds = {k.__name__: k for k in (NBLogisticRegression, NBSVM, NBDocvec)}
        if name not in kinds or (cls is not NBLinear and kinds[name] is not cls):
            raise BaselineError(f"{folder}: holds a {name}, not a {cls.__name__}")
        model = kinds[name](**params)
        model.coef_, model.intercept_, model.classes_ = arrays["coef_"], arrays["intercept_"], arrays["classes_"]
        return model


class NBLogisticRegression(NBLinear):
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


class NBSVM(NBLinear):
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


class NBDocvec(NBLogisticRegression):
    """NB-weighted n-grams and document vectors in one logistic regression (Mesnil et al. 2014; Thongtan
    & Phienthrakul 2019). X's last `n_dense` columns are the document vectors, the others n-gram counts:
    one matrix, so that row selection and the classify stage treat it as any other. The vectors are
    standardised on the training rows, times `scale` (their weight against the r-scaled indicators under
    one C); standardisation and scale are folded into the stored weights, so predicting stays one product."""

    def __init__(self, C: float, n_dense: int, scale: float = 1.0, alpha: float = 1.0, seed: int = 0):
        if n_dense < 1 or scale <= 0:
            raise BaselineError(f"n_dense must be >= 1 and scale > 0 (got {n_dense}, {scale})")
        super().__init__(C, alpha, seed)
        self.n_dense, self.scale = n_dense, scale

    def get_params(self) -> dict:
        return {**super().get_params(), "n_dense": self.n_dense, "scale": self.scale}

    def _split(self, X) -> tuple[sp.csr_matrix, np.ndarray]:
        X = sp.csr_matrix(X)
        return binarise(X[:, : X.shape[1] - self.n_dense]), X[:, X.shape[1] - self.n_dense:].toarray()

    def fit(self, X, y) -> "NBDocvec":
        Xb, V = self._split(X)
        y, self.classes_ = check_labels(y, Xb.shape[0])
        r = _ratios(Xb, y, self.classes_, self.alpha)
        mean, std = V.mean(axis=0), V.std(axis=0)
        std[std == 0] = 1.0
        Vs = sp.csr_matrix((V - mean) / std * self.scale)
        targets = [1] if len(self.classes_) == 2 else range(len(self.classes_))
        coefs, intercepts = [], []
        for c in targets:
            w, b = self._fit_binary(sp.hstack([Xb @ sp.diags(r[c]), Vs]).tocsr(), y == self.classes_[c])
            dense = w[Xb.shape[1]:] * self.scale / std
            coefs.append(np.concatenate([w[: Xb.shape[1]] * r[c], dense]))
            intercepts.append(b - float(dense @ mean))
        self.coef_, self.intercept_ = np.vstack(coefs), np.asarray(intercepts)
        return self

    def decision_function(self, X) -> np.ndarray:
        Xb, V = self._split(X)
        if Xb.shape[1] + V.shape[1] != self.coef_.shape[1]:
            raise BaselineError(f"X has {Xb.shape[1] + V.shape[1]} features, the model was fitted on {self.coef_.shape[1]}")
        scores = np.asarray(Xb @ self.coef_[:, : Xb.shape[1]].T) + V @ self.coef_[:, Xb.shape[1]:].T + self.intercept_
        return scores[:, 0] if len(self.classes_) == 2 else scores


def fit_nb_docvec(X_train, y_train: np.ndarray, C: float, n_dense: int, scale: float = 1.0, seed: int = 0) -> NBDocvec:
    """NB n-grams + document vectors: `NBDocvec` on [n-gram counts | document vectors]."""
    return NBDocvec(C=C, n_dense=n_dense, scale=scale, seed=seed).fit(X_train, y_train)
