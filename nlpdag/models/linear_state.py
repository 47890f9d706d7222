"""What the linear baselines share: their one error type, the label check, and plain-data persistence.

Fitted estimators are saved as plain data: settings as JSON, learned arrays (the attributes ending
in `_`) as a NumPy .npz read with allow_pickle=False, so that a model on a shared DVC remote never
runs code when loaded.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path, write_json


class BaselineError(StageError, ValueError):
    """Unusable training data (one class only, mismatched lengths). A ValueError for callers that
    use the functions as a library, a StageError so that the stage reports it as one line."""


def check_labels(y: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise BaselineError(f"y_train has shape {y.shape}, expected ({n_rows},): one label per training row")
    classes = np.unique(y)
    if len(classes) < 2:
        found = f"only {np.asarray(classes[0]).item()!r} (every training row has that label)" if len(classes) else "no labels"
        raise BaselineError(f"a classifier needs at least two classes in y_train, found {found}")
    return y, classes


def binarise(X) -> sp.csr_matrix:
    X = sp.csr_matrix(X)
    # a new matrix: the caller's arrays must not change
    out = sp.csr_matrix(((X.data != 0).astype(np.float64), X.indices.copy(), X.indptr.copy()), shape=X.shape)
    out.eliminate_zeros()
    return out

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
