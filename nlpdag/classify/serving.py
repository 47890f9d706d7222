"""The classifier table's non-neural rows, saved by the `classify` stage so that `nlpdag predict` can serve
any of them (each neural@<key> stage saves its own model: data/models/classify/<key>).

data/models/rows/<folder>/ (a row's name holds '@' and '+': `row_folder` maps it to a safe name; row.json
keeps the name):
- row.json: the row, its labels, the tokenise params its documents were made with, its validation
  accuracy, and how its features are built (`ngrams`: word 1..n-gram indicators; `mean`: the (idf-weighted)
  mean of a method's word vectors, re-read from the method's vectors file, whose size is checked;
  `docvec`: Doc2Vec document vectors inferred for the text by the model(s) in data/models/doc2vec_<mode>,
  whose fingerprint is checked; `tfidf`: the bow stage's TF-IDF, copied from data/models/tfidf_logreg);
- estimator.json + estimator.npz: the fitted model (nlpdag/models/baselines.py save_estimator; tfidf_logreg's
  from nlpdag/models/tfidf.py save_tfidf_logreg);
- ngrams.parquet (the n-gram vocabulary in column order; tfidf_logreg's with its idf) or idf.parquet (token, idf).
The ensemble's folder holds its stack (nlpdag/classify/ensemble.py LogOddsStack.save) and, under members/,
each baseline member's fit on the training split minus the validation slice: the model whose log-odds
the stack's weights were fitted on (`member_test_proba`), not the row's refit. A neural member is its
saved model, trained on that same part.

A docvec@ row's classifier was fitted on the doc2vec stage's document vectors (trained ones under
doc2vec.train_on_all: transductive); a new text's vector can only be inferred, the honest inductive path,
and row.json says so. Not servable: a docvec@ row whose Doc2Vec model was not saved, tfidf_logreg when the
bow stage saved no model, an ensemble with such a member (tfidf_logreg is never a member: no fit without
the slice).
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import pyarrow as pa

from nlpdag.catalog.bow import TFIDF_MODEL
from nlpdag.catalog.classify import NEURAL_MODELS, ROW_MODELS
from nlpdag.catalog.embeddings import DOC2VEC_SETTINGS, doc2vec_model_dir
from nlpdag.classify.dataset import Dataset, Result
from nlpdag.classify.neural import write_folder
from nlpdag.errors import StageError
from nlpdag.evaluation.rows import servable, validation_accuracy
from nlpdag.io.tables import read_json, read_table, write_json, write_table
from nlpdag.models import baselines as bl
from nlpdag.names import parse_embedding

ROW_FILE, NGRAMS_FILE, IDF_FILE, MEMBERS = "row.json", "ngrams.parquet", "idf.parquet", "members"
NOT_SERVABLE = {"tfidf_logreg": f"served only when the bow stage saved its model ({TFIDF_MODEL}: dvc repro bow classify)",
                "docvec@": "served only when the doc2vec stages saved their models (data/models/doc2vec_<mode>: "
                           "dvc repro doc2vec classify)",
                "nb_docvec@": "served only when the doc2vec stages saved their models (data/models/doc2vec_<mode>: "
                              "dvc repro doc2vec classify)"}
INFERRED = ("Doc2Vec infer_vector: a new text's vector is inferred (the honest inductive path), whereas the row's "
            "classifier was fitted, and its test split scored, on the doc2vec stage's document vectors (trained "
            "ones under doc2vec.train_on_all, i.e. transductive; inferred ones otherwise, as here)")


def row_folder(name: str) -> str:
    """'docvec@doc2vec_dm+doc2vec_dbow' -> 'docvec_at_doc2vec_dm_and_doc2vec_dbow': a name any file system takes."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name.replace("@", "_at_").replace("+", "_and_"))


def not_servable_reason(name: str) -> str | None:
    return next((why for prefix, why in NOT_SERVABLE.items() if name == prefix or name.startswith(prefix)
                 and prefix.endswith("@")), None)


# ---- saving (the classify stage) ---------------------------------------------------------------------

def docvec_recipe(methods: Sequence[str], root: Path = Path(".")) -> dict | None:
    """How serving rebuilds a docvec@ row's features (the saved Doc2Vec models and their fingerprints);
    None when a model was not saved (the row is then not servable)."""
    models = []
    for method in methods:
        folder = doc2vec_model_dir(method.removeprefix("doc2vec_"))
        settings = root / folder / DOC2VEC_SETTINGS
        if not settings.is_file():
            return None
        meta = read_json(settings)
        models.append({"method": method, "folder": folder.as_posix(), "fingerprint": meta.get("fingerprint"),
                       "dim": meta.get("settings", {}).get("vector_size"), "ngram_max": meta.get("ngram_max")})
    return {"kind": "docvec", "methods": list(methods), "models": models, "vectors": "Doc2Vec infer_vector"}


def tfidf_recipe(root: Path = Path(".")) -> dict | None:
    """tfidf_logreg's recipe: the bow stage's saved model, copied whole; None when it saved none."""
    return {"kind": "tfidf", "folder": TFIDF_MODEL.as_posix()} if (root / TFIDF_MODEL).is_dir() else None


def save_row(folder: Path, name: str, serving: dict, meta: dict, fit_part: bool = False,
             root: Path = Path(".")) -> None:
    """A baseline row: its refit on the whole training split, or (`fit_part`) its fit without the slice."""
    features = dict(serving["features"])
    if features["kind"] == "tfidf":
        if fit_part:  # classify.ensemble refuses it before anything trains
            raise StageError(f"{name}: no fit without the validation slice to save")
        shutil.copytree(root / features["folder"], folder)
    else:
        bl.save_estimator(serving["fit_part_model" if fit_part else "model"], folder)
    if features["kind"] in ("docvec", "ngrams+docvec"):
        meta = {**meta, "note": INFERRED}
    if features["kind"] in ("ngrams", "ngrams+docvec"):
        write_table(pa.table({"ngram": pa.array(features.pop("vocabulary"), pa.string())}), folder / NGRAMS_FILE)
    elif (idf := features.pop("idf", None)) is not None:
        write_table(pa.table({"token": pa.array(list(idf), pa.string()),
                              "idf": pa.array(list(idf.values()), pa.float64())}), folder / IDF_FILE)
        features["weighted"] = True
    trained_on = ("train split minus its validation slice (the model the ensemble weighs)" if fit_part
                  else "train split (C chosen on its validation slice, then refitted on all of it)")
    write_json({"row": name, "kind": "baseline", "features": features, **meta, "trained_on": trained_on},
               folder / ROW_FILE)


def save_ensemble(folder: Path, row: Result, by_name: dict[str, Result], keys: dict[str, str], meta: dict,
                  root: Path = Path(".")) -> None:
    row.extra["stack"].save(folder)
    members = []
    for name in row.info["ensemble"]["members"]:
        member = by_name[name]
        if member.kind == "neural":
            members.append({"row": name, "neural": keys.get(name, name)})
        else:
            sub = f"{MEMBERS}/{row_folder(name)}"
            save_row(folder / sub, name, member.extra["serving"], {**meta, "validation_accuracy": None}, True, root)
            members.append({"row": name, "folder": sub})
    write_json({"row": row.name, "kind": "ensemble", "members": members, **meta}, folder / ROW_FILE)


def save_rows(results: list[Result], data: Dataset, tokenise: dict, keys: dict[str, str] | None = None,
              root: Path = Path(".")) -> list[str]:
    """Every servable non-neural row of the run, into a fresh data/models/rows (a row taken out of the
    params leaves no stale folder); the names saved."""
    by_name = {r.name: r for r in results}
    saved = []

    def write(tmp: Path) -> None:
        for r in results:
            if r.kind == "neural" or not servable(r, results):
                continue
            accuracy = None if r.val_proba is None else round(validation_accuracy(r, data), 4)
            meta = {"labels": list(data.labels), "tokenise": tokenise, "C": r.info.get("C"),
                    "validation_accuracy": accuracy}
            if r.kind == "ensemble":
                save_ensemble(tmp / row_folder(r.name), r, by_name, keys or {}, meta, root)
            else:
                save_row(tmp / row_folder(r.name), r.name, r.extra["serving"], meta, root=root)
            saved.append(r.name)

    write_folder(root / ROW_MODELS, write)
    return saved


# ---- loading (`nlpdag predict`) ----------------------------------------------------------------------

@dataclass
class RowModel:
    """A saved row, ready for token lists: `predict_proba(docs)` -> (n, labels) in `labels` order."""
    name: str
    labels: list[str]
    tokenise: dict
    validation_accuracy: float | None
    predict_proba: Callable[[Sequence[Sequence[str]]], np.ndarray]
    meta: dict = field(default_factory=dict)


def saved_rows(root: Path = Path(".")) -> dict[str, str]:
    """{row name: folder name} of every saved row."""
    out = {}
    folder = root / ROW_MODELS
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            out[json.loads((p / ROW_FILE).read_text(encoding="utf-8"))["row"]] = p.name
        except (OSError, ValueError, KeyError):
            continue
    return out


def _docvec_features(folder: Path, features: dict, root: Path) -> Callable[[Sequence[Sequence[str]]], np.ndarray]:
    from nlpdag.embeddings.doc2vec_model import infer_vectors, load_doc2vec, model_fingerprint, ngram_documents

    models = []
    for m in features["models"]:
        where = root / m["folder"]
        mode = m["method"].removeprefix("doc2vec_")
        if not where.is_dir():
            raise StageError(f"{where}: the Doc2Vec model of {m['method']} is missing (restore it: dvc checkout "
                             f"{m['folder']}, or dvc repro doc2vec@{mode})")
        if model_fingerprint(where) != m["fingerprint"]:
            raise StageError(f"{where}: not the Doc2Vec model {folder.name} was trained on (rerun: dvc repro classify)")
        models.append((load_doc2vec(where), m.get("ngram_max")))
    return lambda docs: np.hstack([infer_vectors(model, ngram_documents(docs, n) if n else docs) for model, n in models])


def _features(folder: Path, features: dict, root: Path) -> Callable[[Sequence[Sequence[str]]], object]:
    if features["kind"] in ("ngrams", "ngrams+docvec"):
        vocab = read_table(folder / NGRAMS_FILE).column("ngram").to_pylist()
        ngrams = bl.ngram_vectorizer(features["ngram_max"], vocabulary=vocab).transform
        if features["kind"] == "ngrams":
            return ngrams
        docvecs = _docvec_features(folder, features, root)
        return lambda docs: sp.hstack([ngrams(docs), docvecs(docs)]).tocsr()  # NBDocvec's [counts | vectors]
    if features["kind"] == "docvec":
        return _docvec_features(folder, features, root)
    method = features["method"]
    embedding = parse_embedding(method)
    path = embedding.path(root)
    if not path.is_file():
        raise StageError(f"{path}: the word vectors of {method} are missing (restore them: dvc checkout "
                         f"{path.relative_to(root)}, or dvc repro {embedding.producer})")
    from nlpdag.io.vectors import read_vectors

    tokens, vectors = read_vectors(path)
    if len(tokens) != features["n_tokens"] or (len(tokens) and vectors.shape[1] != features["dim"]):
        raise StageError(f"{path}: not the vectors {folder.name} was trained on ({len(tokens)} words, "
                         f"{features['n_tokens']} then; rerun: dvc repro classify)")
    idf = None
    if features.get("weighted"):
        table = read_table(folder / IDF_FILE)
        idf = dict(zip(table.column("token").to_pylist(), table.column("idf").to_pylist()))
    return lambda docs: bl.mean_vectors(docs, tokens, vectors, idf)


def load_row(folder: Path, root: Path = Path(".")) -> RowModel:
    """A row `save_rows` saved (an ensemble with its members)."""
    try:
        meta = json.loads((folder / ROW_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StageError(f"{folder}: not a saved row ({exc.__class__.__name__}: {exc})") from None
    if meta.get("kind") == "ensemble":
        return _load_ensemble(folder, meta, root)
    if meta["features"]["kind"] == "tfidf":
        from nlpdag.models.tfidf import load_tfidf_logreg

        classes, predict_proba = load_tfidf_logreg(folder)
        if classes.tolist() != list(range(len(meta["labels"]))):
            raise StageError(f"{folder}: fitted on label ids {classes.tolist()}, not one per label of "
                             f"{meta['labels']} (rerun: dvc repro bow classify)")
        return RowModel(meta["row"], meta["labels"], meta.get("tokenise", {}), meta.get("validation_accuracy"),
                        predict_proba, meta)
    estimator = bl.load_estimator(folder)
    transform = _features(folder, meta["features"], root)
    return RowModel(meta["row"], meta["labels"], meta.get("tokenise", {}), meta.get("validation_accuracy"),
                    lambda docs: np.asarray(estimator.predict_proba(transform(docs))), meta)


def _load_ensemble(folder: Path, meta: dict, root: Path) -> RowModel:
    from nlpdag.classify.ensemble import LogOddsStack

    stack = LogOddsStack.load(folder)
    members = []
    for m in meta["members"]:
        if "neural" in m:
            from nlpdag.models.classifier import NeuralClassifier

            where = root / NEURAL_MODELS / m["neural"]
            if not where.is_dir():
                raise StageError(f"{where}: the ensemble's member {m['row']} is missing (restore it: dvc checkout "
                                 f"{where.relative_to(root)}, or dvc repro neural@{m['neural']})")
            clf = NeuralClassifier.load(where)
            if clf.spec != m["row"]:
                raise StageError(f"{where}: now {clf.spec}, the ensemble was fitted on {m['row']} (rerun: dvc repro classify)")
            members.append(lambda docs, clf=clf: np.asarray(clf.predict_proba(docs, device="cpu")))
        else:
            members.append(load_row(folder / m["folder"], root).predict_proba)
    return RowModel(meta["row"], meta["labels"], meta.get("tokenise", {}), meta.get("validation_accuracy"),
                    lambda docs: stack.predict_proba([f(docs) for f in members]), meta)
