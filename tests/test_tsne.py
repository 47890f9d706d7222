"""The `tsne` stage on tiny inputs laid out as the pipeline writes them (and as the classify stage's
contract says), in a temporary folder."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from nlpdag.errors import StageError
from nlpdag.io.tables import read_frame, write_table
from nlpdag.config.tsne import TsneParams
from nlpdag.catalog.tsne import TSNE_MAPS
from nlpdag.catalog.reduce import check_methods
from nlpdag.report.tsne import (DOC_COLUMNS, WORD_COLUMNS, embed, mark_predictions,
                         pick_classify_model, run, snippet, stratified_sample)
from nlpdag.io.vectors import vectors_table

WORDS = [f"w{i}" for i in range(40)]
NEURAL = "lstm-bi-attention@word2vec_cbow"
TINY = TsneParams(methods=["word2vec_cbow", "glove__ae", "pretrained"], words=30, docs=24,
                  doc_vectors=["doc2vec_dm", "classify"], perplexity=5, n_iter=50, n_jobs=1)


def clustered(n: int, dim: int, groups: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(groups.max() + 1, dim))
    return (centres[groups] + rng.normal(size=(n, dim))).astype(np.float32)


def fixed_size(vectors: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])


def write_tsne_inputs(root: Path, n_docs: int = 60) -> dict:
    """Vocabulary, vectors, a corpus with 2 labels x 2 sources, Doc2Vec vectors and the classify
    stage's predictions and pooled states, under root. Returns facts the tests check against."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "labels.json").write_text(json.dumps(["negative", "positive"]))  # names, as ingest writes them
    write_table(pd.DataFrame({"id": np.arange(len(WORDS), dtype=np.int32), "token": WORDS,
                              "count": np.arange(len(WORDS), 0, -1), "doc_freq": 1}), root / "data/vocab.parquet")
    groups = np.arange(len(WORDS)) % 3
    # The method's own order differs from the vocabulary's, and it lacks one word: ranks must follow the vocabulary.
    cbow = [w for w in reversed(WORDS) if w != "w5"]
    write_table(vectors_table(cbow, clustered(len(cbow), 8, groups[:len(cbow)], 0)), root / "data/embeddings/word2vec_cbow.parquet")
    write_table(vectors_table(WORDS, clustered(len(WORDS), 4, groups, 1)), root / "data/reduced/glove__ae.parquet")
    write_table(pa.table({"token": pa.array([], pa.string()), "vector": pa.array([], pa.list_(pa.float32(), 1))}),
                root / "data/embeddings/pretrained.parquet")
    label = np.arange(n_docs) % 2
    source = np.where(np.arange(n_docs) % 4 < 2, "imdb", "rotten_tomatoes")
    split = np.where(np.arange(n_docs) < n_docs // 5, "train", "test")
    text = [f"<b>Doc</b> {i} is {'great' if l else 'awful'} &amp; " + " ".join(f"word{k}" for k in range(40))
            for i, l in enumerate(label)]
    write_table(pd.DataFrame({"doc_id": np.arange(n_docs, dtype=np.int64), "text": text, "label": label,
                              "label_id": label.astype(np.int32), "source": source, "split": split}),
                root / "data/corpus.parquet")
    ids = np.arange(n_docs, dtype=np.int64)
    # bag-of-words presence: WORDS[0] in every positive document, WORDS[1] in every negative one, WORDS[2] in all
    pairs = [(d, 0 if label[d] else 1) for d in ids] + [(d, 2) for d in ids]
    write_table(pa.table({"doc_id": pa.array([d for d, _ in pairs], pa.int64()),
                          "token_id": pa.array([t for _, t in pairs], pa.int32()),
                          "value": pa.array([1] * len(pairs), pa.int32())}), root / "data/bow/counts.parquet")
    write_table(pa.table({"doc_id": ids, "split": split, "vector": fixed_size(clustered(n_docs, 6, label, 2)),
                          "inferred": split == "test"}), root / "data/docvecs/doc2vec_dm.parquet")
    test_ids = ids[split == "test"]
    wrong = test_ids[::5]  # every fifth test document misclassified by both models
    rows = []
    for model in ("tfidf_logreg", "docvec@doc2vec_dm", NEURAL):
        y = label[test_ids]
        pred = np.where(np.isin(test_ids, wrong), 1 - y, y)
        rows.append(pd.DataFrame({"model": model, "doc_id": test_ids, "label_id": y.astype(np.int32),
                                  "predicted": pred.astype(np.int32), "confidence": np.float32(0.9),
                                  "proba_1": pred.astype(np.float32)}))
    write_table(pd.concat(rows, ignore_index=True), root / "data/classify/predictions.parquet")
    states = clustered(len(test_ids), 5, label[test_ids], 3)
    write_table(pa.table({"model": [NEURAL] * len(test_ids), "doc_id": test_ids, "vector": fixed_size(states)}),
                root / "data/classify/states.parquet")
    return {"test_ids": test_ids, "wrong": wrong}


def test_embed_gives_finite_2d_coordinates_and_separates_clusters():
    groups = np.repeat([0, 1], 30)
    xy = embed(clustered(60, 10, groups, 0), perplexity=10, n_iter=100, seed=0, n_jobs=1)
    assert xy.shape == (60, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    a, b = xy[groups == 0].mean(axis=0), xy[groups == 1].mean(axis=0)
    spread = max(xy[groups == 0].std(axis=0).max(), xy[groups == 1].std(axis=0).max())
    assert np.linalg.norm(a - b) > 2 * spread
    again = embed(clustered(60, 10, groups, 0), perplexity=10, n_iter=100, seed=0, n_jobs=1)
    np.testing.assert_allclose(xy, again, atol=1e-4)  # seeded


def test_embed_rejects_too_few_points_and_nan():
    with pytest.raises(StageError, match="at least 4"):
        embed(np.ones((3, 2)))
    x = np.ones((10, 2))
    x[2, 1] = np.nan
    with pytest.raises(StageError, match="NaN"):
        embed(x)


def test_zero_vectors_and_high_perplexity_are_handled():
    x = clustered(12, 4, np.arange(12) % 2, 0)
    x[3] = 0
    xy = embed(x, perplexity=50, n_iter=30, n_jobs=1)
    assert xy.shape == (12, 2) and np.isfinite(xy).all()


def test_unknown_method_is_an_error():
    check_methods(["word2vec_cbow", "glove__vae", "pretrained"], "tsne.methods")
    with pytest.raises(StageError, match=r"tsne\.methods: unknown method 'word2vec'"):
        check_methods(["word2vec_cbow", "word2vec"], "tsne.methods")
    with pytest.raises(StageError, match="unknown method 'glove__tsne'"):
        check_methods(["glove__tsne"], "tsne.methods")


def test_stratified_sample_keeps_proportions():
    frame = pd.DataFrame({"doc_id": range(100), "label": [0] * 70 + [1] * 30, "source": ["a", "b"] * 50})
    sample = stratified_sample(frame, 20, seed=0)
    assert len(sample) == 20 and sample["doc_id"].is_unique
    assert sample["label"].value_counts().to_dict() == {0: 14, 1: 6}
    assert stratified_sample(frame, 20, seed=0).equals(sample)
    assert len(stratified_sample(frame, 500, seed=0)) == 100


def test_snippet_strips_html_and_cuts():
    assert snippet("<br />Great &amp; <i>fun</i> film, really", 3) == "Great & fun …"
    assert snippet("short one", 5) == "short one"


def test_word_maps_carry_each_word_s_sentiment(tmp_path):
    from nlpdag.report.tsne import word_polarity

    write_tsne_inputs(tmp_path)
    words, _, _ = run(TINY, seed=0, root=tmp_path, out=None, log=lambda _: None)
    first = words[words["method"] == words["method"].iloc[0]].set_index("token")
    assert first.loc[WORDS[0], "polarity"] > 1 and first.loc[WORDS[0], "leaning"] == "positive"
    assert first.loc[WORDS[1], "polarity"] < -1 and first.loc[WORDS[1], "leaning"] == "negative"
    assert abs(first.loc[WORDS[2], "polarity"]) < 0.2
    # more than two labels: the label a word leans to, by its largest one-vs-rest ratio
    pol, lean = word_polarity(np.array([0, 1, 2, 2]), np.array([0, 0, 1, 0]), {0: 0, 1: 0, 2: 2}, 3, 2)
    assert lean.tolist() == [0, 2] and pol[1] > 0


def test_pick_classify_model():
    summary = {"best_neural": {"overall": "b", "chosen_on": "validation accuracy"}}
    assert pick_classify_model(None, ["a", "b"], summary) == "b"
    assert pick_classify_model(None, ["a", "b"], None) == "a"
    assert pick_classify_model("a", ["a", "b"], summary) == "a"
    with pytest.raises(StageError, match="tsne.classify_model: no pooled states for 'c'"):
        pick_classify_model("c", ["a", "b"], summary)


def test_mark_predictions_without_predictions_leaves_nulls():
    sample = pd.DataFrame({"doc_id": [1, 2], "label_id": [0, 1], "label": ["neg", "pos"]})
    out = mark_predictions(sample, None, "m", ["neg", "pos"])
    assert out["predicted"].isna().all() and out["correct"].isna().all()


def test_run_writes_every_map(tmp_path):
    facts = write_tsne_inputs(tmp_path)
    out = tmp_path / "data" / "tsne"
    notes = []
    words, docs, maps = run(TINY, seed=0, root=tmp_path, out=out, log=notes.append)
    stored_words, stored_docs = read_frame(out / "words.parquet"), read_frame(out / "docs.parquet")
    assert list(stored_words.columns) == WORD_COLUMNS and list(stored_docs.columns) == DOC_COLUMNS
    assert len(stored_words) == len(words) and len(stored_docs) == len(docs)
    # words: the 30 most frequent of the vocabulary, less the one word2vec_cbow lacks; ranks from the vocabulary
    cbow = words[words["method"] == "word2vec_cbow"]
    assert len(cbow) == 29 and "w5" not in set(cbow["token"]) and cbow["rank"].max() == 29
    assert (cbow["token"] == [f"w{r}" for r in cbow["rank"]]).all()
    assert len(words[words["method"] == "glove__ae"]) == 30
    assert np.isfinite(words[["x", "y"]].to_numpy()).all() and np.isfinite(docs[["x", "y"]].to_numpy()).all()
    # docs: 24 of the 48 test documents, the same sample in both maps
    assert set(docs["vectors"]) == {"doc2vec_dm", "classify"}
    by_map = {v: set(g["doc_id"]) for v, g in docs.groupby("vectors")}
    assert by_map["doc2vec_dm"] == by_map["classify"] and len(by_map["doc2vec_dm"]) == 24
    assert by_map["doc2vec_dm"] <= set(facts["test_ids"])
    assert docs.groupby(["vectors", "label"]).size().eq(12).all()  # stratified by label
    assert set(docs.loc[docs["vectors"] == "classify", "model"]) == {NEURAL}
    assert set(docs.loc[docs["vectors"] == "doc2vec_dm", "model"]) == {"docvec@doc2vec_dm"}
    wrong = set(docs.loc[docs["correct"] == False, "doc_id"])  # noqa: E712
    assert wrong == set(facts["wrong"]) & by_map["doc2vec_dm"]
    assert (docs["label"].isin(["negative", "positive"])).all() and docs["snippet"].str.startswith("Doc ").all()
    assert not docs["snippet"].str.contains("<b>").any()
    # the pretrained table is empty: skipped with a note, recorded in maps.json
    assert any("pretrained skipped" in n for n in notes)
    recorded = json.loads((out / TSNE_MAPS).read_text())
    assert [(m["kind"], m["name"], m["points"]) for m in recorded] == [
        ("words", "word2vec_cbow", 29), ("words", "glove__ae", 30), ("words", "pretrained", 0),
        ("docs", "doc2vec_dm", 24), ("docs", "classify", 24)]


def test_run_skips_absent_classifier_outputs(tmp_path):
    write_tsne_inputs(tmp_path)
    (tmp_path / "data/classify/states.parquet").unlink()
    (tmp_path / "data/classify/predictions.parquet").unlink()
    params = TINY.model_copy(update={"methods": ["glove__ae"]})
    notes = []
    _, docs, maps = run(params, root=tmp_path, out=None, log=notes.append)
    assert set(docs["vectors"]) == {"doc2vec_dm"} and docs["predicted"].isna().all()
    assert any("classify skipped" in n for n in notes)


def test_run_missing_required_vectors_is_an_error(tmp_path):
    write_tsne_inputs(tmp_path)
    params = TINY.model_copy(update={"methods": ["fasttext"]})
    with pytest.raises(StageError, match="fasttext.parquet: input not found"):
        run(params, root=tmp_path, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
