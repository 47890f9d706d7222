"""`nlpdag predict` serves any saved row: each baseline (tfidf_logreg from the bow stage's saved model, the
docvec@ rows by inferring a text's vector with the saved Doc2Vec models) and the ensemble, saved by the
classify stage as plain data, read back to the same probabilities; the served row is the one chosen on
validation."""
import json

import numpy as np
import pandas as pd
import pytest

import pyarrow as pa

from nlpdag.catalog.bow import BOW_PREDICTIONS, BOW_SCORES, BOW_VALIDATION
from nlpdag.catalog.classify import ROW_MODELS, SUMMARY
from nlpdag.catalog.embeddings import DOC2VEC_SETTINGS, docvecs_path, doc2vec_model_dir
from nlpdag.catalog.ingest import LABELS
from nlpdag.classify.baselines import run_baselines
from nlpdag.classify.dataset import Dataset
from nlpdag.classify.ensemble import fit_ensemble
from nlpdag.classify.predict import load_classifier, predict_texts
from nlpdag.classify.serving import row_folder, save_rows
from nlpdag.config.bow import BowParams
from nlpdag.config.classify import ClassifyParams
from nlpdag.config.doc2vec import Doc2VecParams
from nlpdag.embeddings.doc2vec import document_vectors, tagged_documents, train_doc2vec
from nlpdag.embeddings.doc2vec_model import ngram_documents
from nlpdag.embeddings.doc2vec_model import save_doc2vec
from nlpdag.config.tokenise import TokeniseParams
from nlpdag.errors import StageError
from nlpdag.evaluation.rows import served, servable
from nlpdag.io.tables import read_json, write_json, write_table
from nlpdag.io.vectors import vectors_table, write_vectors
from nlpdag.models import baselines as bl
from nlpdag.models import linear_state, nblinear
from nlpdag.models.tfidf import save_tfidf_logreg
from nlpdag.text import bow
from nlpdag.text.tokenise import tokenise_texts

GOOD, BAD = ["great", "wonderful", "superb", "moving"], ["dull", "awful", "boring", "mess"]
FILLER = ["the", "film", "plot", "cast", "was", "and", "a", "story"]


def corpus(n=240, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    texts = [" ".join(rng.choice(FILLER, 6).tolist() + rng.choice(GOOD if label else BAD, 2).tolist())
             for label in y]
    docs = tokenise_texts(texts, TokeniseParams())
    train = np.arange(n) < n * 2 // 3
    validation = train & (np.arange(n) % 4 == 0)
    data = Dataset(np.arange(n), y, pd.Series([pd.NA] * n), docs, train, ["negative", "positive"], validation)
    return texts, data


ENSEMBLE = ("nbsvm", "mean@word2vec_skipgram", "docvec@doc2vec_dbow")


def doc2vec_stage(data):
    """As the doc2vec stages write their outputs, trained on the training split only: the test documents'
    vectors are inferred, so serving (which infers too) must give the stage's very test predictions."""
    position = np.where(data.train, np.cumsum(data.train) - 1, -1)
    for mode in ("dm", "dbow", "ngram"):
        n = 2 if mode == "ngram" else None  # DV-ngram: words and bigrams, as serving rebuilds them from the saved n
        docs = ngram_documents(data.docs, n) if n else data.docs
        documents = tagged_documents([d for d, t in zip(docs, data.train) if t], None)
        model = train_doc2vec(documents, mode, Doc2VecParams(size=8, min_count=1, epochs=5, workers=1), seed=0)
        table = vectors_table([""] * len(data.docs), document_vectors(model, docs, position))
        write_table(pa.table({"doc_id": pa.array(data.doc_ids), "split": pa.array(np.where(data.train, "train", "test")),
                              "vector": table.column("vector"), "inferred": pa.array(~data.train)}), docvecs_path(mode))
        save_doc2vec(model, doc2vec_model_dir(mode), ngram_max=n)


def bow_stage(data):
    """As the bow stage leaves tfidf_logreg: its scores, test and validation predictions, and saved model."""
    fit = data.train & ~data.validation
    params = BowParams(min_df=1, C=[1.0, 4.0])
    C, scores, val_proba = bow.select_C(data.subset(fit), data.y[fit], data.subset(data.validation),
                                        data.y[data.validation], params)
    vectorizer, model = bow.fit_tfidf_logreg(data.subset(data.train), data.y[data.train], params, C=C)
    proba = model.predict_proba(vectorizer.transform(data.subset(data.test)))
    write_table(pd.DataFrame({"doc_id": data.doc_ids[data.test], "label_id": data.y[data.test],
                              "predicted": proba.argmax(axis=1).astype(np.int32), "proba": proba.max(axis=1)}),
                BOW_PREDICTIONS)
    write_table(pa.table({"doc_id": pa.array(data.doc_ids[data.validation]),
                          "proba": pa.array(list(val_proba), pa.list_(pa.float64(), 2))}), BOW_VALIDATION)
    write_json({"models": {"tfidf_logreg": {"C": C, "validation_accuracy": scores, "train_seconds": 0.1}}}, BOW_SCORES)
    save_tfidf_logreg(vectorizer, model, C)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    texts, data = corpus()
    words = sorted({t for d in data.docs for t in d})
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(len(words), 6)).astype(np.float32)
    for k, w in enumerate(words):  # a direction for sentiment, so the mean rows learn something
        vectors[k, 0] += 3.0 * ((w in GOOD) - (w in BAD))
    write_vectors("word2vec_skipgram", words, vectors, tmp_path / "data/embeddings")
    doc2vec_stage(data)
    bow_stage(data)
    params = ClassifyParams(baselines=["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "idf_mean", "docvec", "nb_docvec"],
                            baseline_methods=["word2vec_skipgram"], nb_docvec=["doc2vec_ngram"])
    results = run_baselines(data, params, 0, log=lambda *_: None)
    results.append(fit_ensemble([r for r in results if r.name in ENSEMBLE], data, [0.1, 1.0]))
    write_json(data.labels, tmp_path / LABELS)
    save_rows(results, data, TokeniseParams().model_dump(), root=tmp_path)
    return tmp_path, texts, data, results


def test_estimators_round_trip_without_pickle(tmp_path):
    _, data = corpus()
    vectorizer, X, _ = bl.ngram_features(data.docs, [])
    for fit in (nblinear.fit_nb_logreg, nblinear.fit_nbsvm):
        model = fit(X, data.y, C=0.1)
        bl.save_estimator(model, tmp_path / fit.__name__)
        back = bl.load_estimator(tmp_path / fit.__name__)
        assert type(back) is type(model) and np.array_equal(back.classes_, model.classes_)
        assert np.allclose(back.predict_proba(X), model.predict_proba(X))
    dense = np.random.default_rng(0).normal(size=(len(data.y), 5))
    model = bl.fit_dense_logreg(dense, data.y, C=1.0)
    bl.save_estimator(model, tmp_path / "dense")
    assert np.allclose(bl.load_estimator(tmp_path / "dense").predict_proba(dense), model.predict_proba(dense))
    with np.load(tmp_path / "dense" / linear_state.ESTIMATOR_NPZ, allow_pickle=False) as npz:
        assert {"mean_", "scale_", "coef_", "intercept_", "classes_"} <= set(npz.files)


def test_every_saved_row_predicts_as_the_stage_did(workspace):
    root, texts, data, results = workspace
    test_texts = [t for t, keep in zip(texts, data.test) if keep]
    folders = {p.name for p in (root / ROW_MODELS).iterdir()}
    assert folders == {row_folder(r.name) for r in results} and len(results) == 11
    assert {"tfidf_logreg", "docvec_at_doc2vec_dm_and_doc2vec_dbow", "mean_at_word2vec_skipgram",
            "docvec_at_doc2vec_ngram", "nb_docvec_at_doc2vec_ngram"} <= folders
    for r in results:
        clf = load_classifier(r.name, root)
        assert clf.name == r.name and clf.labels == ["negative", "positive"]
        frame = predict_texts(clf, test_texts)
        assert np.allclose(frame[["p_negative", "p_positive"]].to_numpy(), r.proba, atol=1e-6), r.name
        assert frame["label"].isin(["negative", "positive"]).all()
    ensemble = json.loads((root / ROW_MODELS / "ensemble" / "row.json").read_text())
    # the members the stack weighs are their fits without the validation slice, saved beside it
    assert [m["row"] for m in ensemble["members"]] == list(ENSEMBLE)
    assert all((root / ROW_MODELS / "ensemble" / m["folder"] / "estimator.npz").is_file() for m in ensemble["members"])
    docvec = read_json(root / ROW_MODELS / "ensemble" / ensemble["members"][2]["folder"] / "row.json")
    assert docvec["features"]["vectors"] == "Doc2Vec infer_vector" and "inductive" in docvec["note"]
    assert [m["folder"] for m in docvec["features"]["models"]] == ["data/models/doc2vec_dbow"]
    tfidf = read_json(root / ROW_MODELS / "tfidf_logreg" / "row.json")
    assert tfidf["features"]["kind"] == "tfidf" and tfidf["validation_accuracy"] is not None


def test_the_served_row_is_the_default_and_unknown_names_list_the_saved(workspace):
    root, texts, data, results = workspace
    pick = served(results, data)
    assert pick["chosen_on"] == "validation accuracy" and pick["near_chance"] is False
    assert 0.4 < pick["majority_share"] < 0.65 and pick["row"] in {r.name for r in results}
    write_json({"served": pick}, root / SUMMARY)
    clf = load_classifier(None, root)
    assert clf.name == pick["row"] and clf.served == pick
    assert load_classifier("mean_at_word2vec_skipgram", root).name == "mean@word2vec_skipgram"  # by folder
    with pytest.raises(StageError, match=r"no such classifier 'nope'; saved: .*docvec@doc2vec_dm.*ensemble.*nbsvm"):
        load_classifier("nope", root)


def test_a_docvec_row_needs_the_doc2vec_model_it_was_fitted_with(workspace):
    root, *_ = workspace
    settings = root / doc2vec_model_dir("dbow") / DOC2VEC_SETTINGS
    meta = read_json(settings)
    write_json({**meta, "fingerprint": "retrained"}, settings)
    for name in ("docvec@doc2vec_dbow", "ensemble"):
        with pytest.raises(StageError, match=r"doc2vec_dbow: not the Doc2Vec model .* \(rerun: dvc repro classify\)"):
            load_classifier(name, root).predict_proba([["great", "film"]])
    load_classifier("docvec@doc2vec_dm", root)   # the other mode's row is unaffected
    for p in sorted((root / ROW_MODELS / "docvec_at_doc2vec_dm").iterdir()):
        p.unlink()
    (root / ROW_MODELS / "docvec_at_doc2vec_dm").rmdir()
    with pytest.raises(StageError, match=r"no such classifier 'docvec@doc2vec_dm' \(served only when the doc2vec "
                                         r"stages saved their models.*saved: .*tfidf_logreg"):
        load_classifier("docvec@doc2vec_dm", root)


def test_served_row_near_chance_and_unservable_rows():
    _, data = corpus()
    from nlpdag.classify.dataset import Result

    y_val = data.y[data.validation]
    onehot = np.eye(2)[y_val]
    coin = np.eye(2)[np.zeros_like(y_val)]   # always the first label: no better than the majority
    # a docvec row whose Doc2Vec model was not saved has no serving recipe
    rows = [Result("docvec@doc2vec_dm", "baseline", None, 0.0, val_proba=onehot),
            Result("nbsvm", "baseline", None, 0.0, val_proba=coin, extra={"serving": {}})]
    assert not servable(rows[0]) and servable(rows[1])
    both = Result("ensemble", "ensemble", None, 0.0, val_proba=onehot,
                  info={"ensemble": {"members": ["nbsvm", "docvec@doc2vec_dm"]}})
    assert not servable(both, rows) and servable(both, rows[1:2] + [Result("docvec@doc2vec_dm", "baseline", None, 0.0,
                                                                           extra={"serving": {}})])
    pick = served(rows, data)
    assert pick["row"] == "nbsvm" and pick["near_chance"] is True
    assert pick["majority_share"] == round(float(np.bincount(y_val).max() / len(y_val)), 4)


def test_a_missing_model_folder_says_how_to_restore_it(workspace):
    root, *_ = workspace
    write_json({"served": {"row": "nbsvm"}}, root / SUMMARY)
    for p in sorted((root / ROW_MODELS).rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    md5 = "0123456789abcdef0123456789abcdef.dir"
    (root / "dvc.lock").write_text(f"schema: '2.0'\nstages:\n  classify:\n    outs:\n    - path: {ROW_MODELS}\n"
                                   f"      md5: {md5}\n")
    (root / ".dvc/cache/files/md5" / md5[:2]).mkdir(parents=True)
    (root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).write_text("[]")
    with pytest.raises(StageError, match=r"'nbsvm' is missing \(restore it: dvc checkout data/models/rows\)"):
        load_classifier(None, root)
