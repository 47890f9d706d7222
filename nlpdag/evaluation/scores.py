"""Classification metrics in the one shape every classifier writes under `models` in its metrics file."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from nlpdag.evaluation.protocol import bootstrap_ci


def _scores(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, n_classes: int, seed: int) -> dict:
    if len(y_true) == 0:
        return {"accuracy": None, "accuracy_ci": None, "macro_f1": None, "macro_f1_ci": None, "n": 0}
    ci = bootstrap_ci(y_true, y_pred, n_classes, seed)
    out = {"accuracy": round(float(accuracy_score(y_true, y_pred)), 4), "accuracy_ci": ci["accuracy_ci"],
           "macro_f1": round(float(f1_score(y_true, y_pred, average="macro", labels=range(n_classes))), 4),
           "macro_f1_ci": ci["macro_f1_ci"]}
    if n_classes == 2 and proba is not None and len(np.unique(y_true)) == 2:
        out["roc_auc"] = round(float(roc_auc_score(y_true, proba[:, 1])), 4)
    out["n"] = int(len(y_true))
    return out


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                           n_classes: int, sources: pd.Series | None = None, seed: int = 0) -> dict:
    """accuracy and macro_f1 with their 95% bootstrap intervals (`accuracy_ci`, `macro_f1_ci`),
    roc_auc (two classes), n; plus `by_source` when sources are known."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = _scores(y_true, y_pred, proba, n_classes, seed)
    if sources is not None and sources.notna().any():
        src = sources.fillna("").to_numpy()
        out["by_source"] = {
            str(s): _scores(y_true[src == s], y_pred[src == s], None if proba is None else proba[src == s], n_classes, seed)
            for s in sorted(np.unique(src))
        }
    return out
