"""The bow stage's tfidf_logreg kept for `nlpdag predict` as plain data, apart from the stage (so that
`classify` and predict read it without the bow params): the n-grams in column order with their idf and the
TF-IDF settings (Parquet + JSON), the logistic regression's weights (one row per class when one-vs-rest) as
.npz read with allow_pickle=False; `load_tfidf_logreg` predicts from them as the fitted model does.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from scipy.special import expit
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from nlpdag.catalog.bow import TFIDF_MODEL
from nlpdag.errors import StageError
from nlpdag.io.tables import read_json, read_table, write_json, write_table
from nlpdag.models.baselines import ngram_vectorizer
from nlpdag.models.linear_state import load_state, save_state

TFIDF_SETTINGS, NGRAMS_FILE = "tfidf.json", "ngrams.parquet"


def save_tfidf_logreg(vectorizer: TfidfVectorizer, model: LogisticRegression | OneVsRestClassifier, C: float,
                      folder: Path = TFIDF_MODEL) -> None:
    """A fresh `folder` (replaced whole): tfidf.json, ngrams.parquet (ngram, idf in column order),
    estimator.json + .npz (coef_ one row per binary model, intercept_, classes_)."""
    binaries = model.estimators_ if isinstance(model, OneVsRestClassifier) else [model]
    coef = np.vstack([np.asarray(m.coef_, dtype=np.float64)[:1] for m in binaries])
    intercept = np.concatenate([np.asarray(m.intercept_, dtype=np.float64)[:1] for m in binaries])
    settings = {"ngram_max": int(vectorizer.ngram_range[1]), "min_df": vectorizer.min_df,
                "sublinear_tf": bool(vectorizer.sublinear_tf), "norm": vectorizer.norm,
                "smooth_idf": bool(vectorizer.smooth_idf), "use_idf": bool(vectorizer.use_idf),
                "C": float(C), "one_vs_rest": isinstance(model, OneVsRestClassifier)}
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write_table(pa.table({"ngram": pa.array(vectorizer.get_feature_names_out().tolist(), pa.string()),
                              "idf": pa.array(np.asarray(vectorizer.idf_, dtype=np.float64))}), tmp / NGRAMS_FILE)
        save_state(tmp, "tfidf_logreg", {"C": float(C)}, {"coef_": coef, "intercept_": intercept,
                                                          "classes_": np.asarray(model.classes_)})
        write_json(settings, tmp / TFIDF_SETTINGS)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def linear_proba(X, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """(n, classes) as scikit-learn's liblinear LogisticRegression (one binary model: [1 - p, p]) or its
    OneVsRestClassifier (one per class, each sigmoid, rows renormalised) compute them."""
    p = expit(np.asarray(X @ coef.T) + intercept)
    return np.column_stack([1 - p[:, 0], p[:, 0]]) if coef.shape[0] == 1 else p / p.sum(axis=1, keepdims=True)


def load_tfidf_logreg(folder: Path = TFIDF_MODEL) -> tuple[np.ndarray, Callable[[Sequence[Sequence[str]]], np.ndarray]]:
    """(classes, predict_proba over token lists) of what `save_tfidf_logreg` wrote: the same TF-IDF
    columns (counts over the saved n-grams, then the saved idf) and the same probabilities."""
    try:
        settings = read_json(folder / TFIDF_SETTINGS)
        table = read_table(folder / NGRAMS_FILE)
    except (OSError, ValueError) as exc:
        raise StageError(f"{folder}: not a saved tfidf_logreg ({exc}; rerun: dvc repro bow)") from None
    kind, _, arrays = load_state(folder)
    if kind != "tfidf_logreg":
        raise StageError(f"{folder}: holds a {kind}, not tfidf_logreg (rerun: dvc repro bow)")
    counter = ngram_vectorizer(settings["ngram_max"], vocabulary=table.column("ngram").to_pylist())
    transformer = TfidfTransformer(norm=settings["norm"], use_idf=settings["use_idf"], smooth_idf=settings["smooth_idf"],
                                   sublinear_tf=settings["sublinear_tf"])
    transformer.fit(sp.csr_matrix((1, table.num_rows)))
    transformer.idf_ = table.column("idf").to_numpy()
    coef, intercept = arrays["coef_"], arrays["intercept_"]
    return arrays["classes_"], lambda docs: linear_proba(transformer.transform(counter.transform(docs)), coef, intercept)
