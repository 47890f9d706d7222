"""The `classify` stage's baselines, each a logistic regression or SVM on fixed features, judged on the
same split as the neural models (nlpdag/models/baselines.py fits them):
- `tfidf_logreg`: the `bow` stage's TF-IDF 1..n-gram model, read from its outputs (not refitted).
- `nb_logreg`, `nbsvm`: word 1..`nb_ngram_max`-gram presence scaled by the naive-Bayes log-count ratio
  (Wang & Manning 2012), with logistic regression or the interpolated linear SVM.
- `nb_docvec@<doc2vec method>`: those NB-scaled n-grams and the method's standardised document vectors in
  one logistic regression (Mesnil et al. 2014; Thongtan & Phienthrakul 2019).
- `mean@<method>`, `idf_mean@<method>`: the (IDF-weighted) mean of a document's word vectors.
- `docvec@doc2vec_dm`, `docvec@doc2vec_dbow`, `docvec@doc2vec_dm+doc2vec_dbow`, `docvec@doc2vec_ngram`
  (DV-ngram): the Doc2Vec document vectors.
Each C is chosen on the validation slice of the training split, then refitted on the whole split.
Each fitted row keeps its model and features' recipe in `extra["serving"]` (the refit, and the fit on the
split minus the slice that the ensemble weighs), which nlpdag/classify/serving.py saves for `nlpdag predict`.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from nlpdag.catalog.bow import BOW_SCORES, BOW_PREDICTIONS, BOW_VALIDATION
from nlpdag.catalog.embeddings import TRAIN_DIR, docvecs_path
from nlpdag.catalog.ingest import CORPUS
from nlpdag.classify.dataset import Dataset, Result, validation_split
from nlpdag.classify.serving import docvec_recipe, tfidf_recipe
from nlpdag.config.classify import ClassifyParams
from nlpdag.errors import StageError, involving
from nlpdag.evaluation import protocol as evaluation
from nlpdag.evaluation.rows import accuracy_on_test
from nlpdag.io.tables import read_frame, read_json, read_table
from nlpdag.io.vectors import read_vectors
from nlpdag.models import baselines as bl
from nlpdag.models import nblinear as nb
from nlpdag.names import parse_embedding, row_embeddings


def _from_bow(data: Dataset) -> Result:
    """The bow stage's predictions hold the probability of the predicted class only; for two classes
    that is the whole distribution."""
    metrics = read_json(BOW_SCORES)["models"]["tfidf_logreg"]
    pred = read_frame(BOW_PREDICTIONS)
    if not np.array_equal(pred["doc_id"].to_numpy(), data.doc_ids[data.test]):
        raise StageError(f"{BOW_PREDICTIONS}: test documents differ from {CORPUS} (rerun: dvc repro bow)")
    k = len(data.labels)
    rest = (1.0 - pred["proba"].to_numpy()) / max(k - 1, 1)
    proba = np.repeat(rest[:, None], k, axis=1)
    proba[np.arange(len(pred)), pred["predicted"].to_numpy()] = pred["proba"].to_numpy()
    info = {key: metrics.get(key) for key in ("C", "validation_accuracy", "trained_on")}
    val_proba = None
    table = read_table(BOW_VALIDATION) if BOW_VALIDATION.is_file() else None
    if table is not None and table.num_rows:  # the chosen C's fit without the slice: serving may choose this row
        if not np.array_equal(table.column("doc_id").to_numpy(), data.doc_ids[data.validation]):
            raise StageError(f"{BOW_VALIDATION}: validation documents differ from {CORPUS} (rerun: dvc repro bow)")
        val_proba = bl.stack_vectors(table.column("proba")).astype(np.float64)
    recipe = tfidf_recipe()
    return Result("tfidf_logreg", "baseline", proba, float(metrics.get("train_seconds", float("nan"))), info=info,
                  val_proba=val_proba if val_proba is not None and val_proba.shape[1] == k else None,
                  extra={} if recipe is None else {"serving": {"features": recipe}})


def _select_fit_predict(name: str, fit, grid: list[float], X_train, data: Dataset, X_test,
                        features_seconds: float = 0.0, features: dict | None = None, **info) -> Result:
    """Each C of `grid` fitted on the training split minus its validation slice and scored on the
    slice; the best one (ties: the smaller C) refitted on the whole training split for the test.
    `fit(X, y, C)` returns an estimator with predict_proba. The test split is not seen until the end.
    `features`: how serving rebuilds X from token lists (nlpdag/classify/serving.py); None: not servable."""
    fit_pos, val_pos = validation_split(data)
    y_train = data.y[data.train]
    X_fit, X_val = bl.take_rows(X_train, fit_pos), bl.take_rows(X_train, val_pos)
    start = time.perf_counter()
    with involving(f"classify.baselines: {name}"):
        val_proba = {}

        fitted = {}

        def score(C: float) -> float:
            fitted[C] = fit(X_fit, y_train[fit_pos], C)
            val_proba[C] = np.asarray(fitted[C].predict_proba(X_val))
            return float(np.mean(val_proba[C].argmax(axis=1) == y_train[val_pos]))

        C, scores = evaluation.select(grid, score)
        model = fit(X_train, y_train, C)
        proba = np.asarray(model.predict_proba(X_test))
        # The ensemble weighs this row's log-odds as the validation slice showed them: on the test split it
        # needs the same model's, not the refitted one's (more data, other margins and confidence).
        fit_part_proba = np.asarray(fitted[C].predict_proba(X_test))
    seconds = features_seconds + time.perf_counter() - start
    info = {"C": C, "validation_accuracy": {f"{c:g}": round(v, 4) for c, v in scores.items()},
            "trained_on": "train split (C chosen on its validation slice, then refitted on all of it)", **info}
    extra = {"fit_part_proba": fit_part_proba}
    if features is not None:
        extra["serving"] = {"features": features, "model": model, "fit_part_model": fitted[C]}
    return Result(name, "baseline", proba, seconds, extra=extra, val_proba=val_proba[C], info=info)


def load_docvecs(mode: str, data: Dataset) -> tuple[np.ndarray, bool]:
    """(vectors, transductive): transductive when the test documents' vectors were trained beside the
    training ones (doc2vec.train_on_all), i.e. the model saw the test texts (never their labels)."""
    path = docvecs_path(mode)
    table = read_table(path, columns=["doc_id", "vector", "inferred"])
    ids = table.column("doc_id").to_numpy()
    if not np.array_equal(ids, data.doc_ids):
        raise StageError(f"{path}: documents differ from {CORPUS} (rerun: dvc repro doc2vec@{mode})")
    inferred = table.column("inferred").to_numpy(zero_copy_only=False)
    return bl.stack_vectors(table.column("vector")), not bool(inferred[data.test].all())


def representation_seconds(method: str) -> float | None:
    """The representation's own training time (reports/train/<method>.json), apart from the row's."""
    path = TRAIN_DIR / f"{method.partition('__')[0]}.json"
    return read_json(path).get("train_seconds") if path.is_file() else None


def run_baselines(data: Dataset, params: ClassifyParams, seed: int, log=print) -> list[Result]:
    train, test = data.train, data.test
    results: list[Result] = []
    wanted = set(params.baselines)
    if "tfidf_logreg" in wanted:
        results.append(_from_bow(data))
    if wanted & {"nb_logreg", "nbsvm", "nb_docvec"}:
        start = time.perf_counter()
        vectorizer, X_train, X_test = bl.ngram_features(data.subset(train), data.subset(test), params.nb_ngram_max)
        seconds = time.perf_counter() - start
        ngrams = {"kind": "ngrams", "ngram_max": vectorizer.ngram_range[1], "vocabulary": bl.ngram_vocabulary(vectorizer)}
        if "nb_logreg" in wanted:
            results.append(_select_fit_predict("nb_logreg", lambda X, y, C: nb.fit_nb_logreg(X, y, C=C, seed=seed),
                                               params.nb_C, X_train, data, X_test, seconds, ngrams))
        if "nbsvm" in wanted:
            results.append(_select_fit_predict("nbsvm", lambda X, y, C: nb.fit_nbsvm(X, y, C=C, seed=seed),
                                               params.nbsvm_C, X_train, data, X_test, seconds, ngrams))
        if "nb_docvec" in wanted:
            for method in params.nb_docvec:
                V, seen = load_docvecs(method.removeprefix("doc2vec_"), data)
                fit = lambda X, y, C, n=V.shape[1]: nb.fit_nb_docvec(X, y, C=C, n_dense=n,  # noqa: E731
                                                                      scale=params.nb_docvec_scale, seed=seed)
                recipe = docvec_recipe([method])
                both = None if recipe is None else {**recipe, **ngrams, "kind": "ngrams+docvec"}
                results.append(_select_fit_predict(
                    f"nb_docvec@{method}", fit, params.nb_docvec_C, sp.hstack([X_train, V[train]]).tocsr(), data,
                    sp.hstack([X_test, V[test]]).tocsr(), seconds, both, transductive=seen,
                    representation_seconds=representation_seconds(method)))
    dense = lambda X, y, C: bl.fit_dense_logreg(X, y, C=C, seed=seed)  # noqa: E731
    if wanted & {"mean", "idf_mean"}:
        idf = bl.idf_weights(data.subset(train)) if "idf_mean" in wanted else None  # training split only
        for method in params.baseline_methods:
            embedding = load_mean_vectors(method)
            if embedding is None:
                log(f"classify: {method}: no vectors (pretrained.path not set), skipped")
                continue
            tokens, vectors = embedding
            for kind, weights in (("mean", None), ("idf_mean", idf)):
                if kind not in wanted:
                    continue
                start = time.perf_counter()
                X = bl.mean_vectors(data.docs, tokens, vectors, weights)
                mean = {"kind": "mean", "method": method, "idf": weights, "n_tokens": len(tokens), "dim": int(vectors.shape[1])}
                results.append(_select_fit_predict(f"{kind}@{method}", dense, params.dense_C, X[train], data, X[test],
                                                   time.perf_counter() - start, mean, transductive=transductive(f"{kind}@{method}", data),
                                                   representation_seconds=representation_seconds(method)))
    if "docvec" in wanted:
        (dm, dm_all), (dbow, dbow_all), (ngram, ngram_all) = (load_docvecs(m, data) for m in ("dm", "dbow", "ngram"))
        for name, X, seen in (("docvec@doc2vec_dm", dm, dm_all), ("docvec@doc2vec_dbow", dbow, dbow_all),
                              ("docvec@doc2vec_dm+doc2vec_dbow", np.hstack([dm, dbow]), dm_all or dbow_all),
                              ("docvec@doc2vec_ngram", ngram, ngram_all)):
            methods = name.partition("@")[2].split("+")
            rep = [representation_seconds(m) for m in methods]
            results.append(_select_fit_predict(name, dense, params.dense_C, X[train], data, X[test], 0.0,
                                               docvec_recipe(methods), transductive=seen,
                                               representation_seconds=None if None in rep else round(sum(rep), 2)))
    for r in results:
        log(f"classify: {r.name}: accuracy {accuracy_on_test(r, data):.4f} "
            f"({r.seconds:.1f} s" + (f", C {r.info['C']:g}" if r.info.get("C") is not None else "") + ")")
    return results


def transductive(name: str, data: Dataset) -> bool:
    """Whether a row's representation saw the test texts: Doc2Vec's word or document vectors under
    doc2vec.train_on_all (its document vectors of the test split were trained, not inferred)."""
    modes = {e.doc2vec_mode for e in row_embeddings(name)} - {None}
    return any(load_docvecs(mode, data)[1] for mode in sorted(modes))


def load_mean_vectors(method: str) -> tuple[list[str], np.ndarray] | None:
    """(tokens, vectors) of a method for the mean baselines; None when the `pretrained` table is empty."""
    path = parse_embedding(method).path()
    if not path.exists():
        raise StageError(f"{path}: embedding {method!r} not found (run: dvc repro {parse_embedding(method).producer})")
    tokens, vectors = read_vectors(path)
    return (tokens, vectors) if tokens else None


