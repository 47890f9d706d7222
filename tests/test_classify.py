"""The `classify` stage end to end on a tiny workspace (no DVC), and `predict` from what it saved."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from nlpdag.catalog import bow as _b, classify as _c, ingest as _i, tokenise as _t
import types; catalog = types.SimpleNamespace(**{k: v for m in (_b, _c, _i, _t) for k, v in vars(m).items() if k.isupper()})

import stages.classify as classify_stage
from nlpdag.config.params import load_params as load_all_params
from nlpdag.errors import StageError
from nlpdag.io.tables import read_frame, write_json, write_table
from nlpdag.config.params import parse_params
from nlpdag.classify.predict import load_classifier, predict_texts
from nlpdag.text.tokenise import build_vocab
from nlpdag.io.vectors import vectors_table

pytestmark = pytest.mark.usefixtures("one_thread")

CUES = {0: ["awful", "dull", "boring"], 1: ["great", "superb", "moving"], 2: ["odd", "strange", "weird"]}
FILLER = ["the", "film", "was", "a", "story", "of", "and", "it", "plot", "actor"]


def toy_corpus(n_classes: int, per_class: int = 40, seed: int = 0) -> pd.DataFrame:
    """Documents of filler words with one class cue word somewhere; sources imdb and rt alternate."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in range(n_classes):
        for k in range(per_class):
            words = list(rng.choice(FILLER, size=rng.integers(3, 25)))
            words.insert(int(rng.integers(0, len(words) + 1)), CUES[label][k % 3])
            rows.append((" ".join(words), label, "imdb" if k % 2 else "rt"))
    frame = pd.DataFrame(rows, columns=["text", "label", "source"])
    frame.insert(0, "doc_id", np.arange(len(frame), dtype=np.int64))
    frame["label_id"] = frame["label"].astype(np.int32)
    test = np.zeros(len(frame), bool)
    test[rng.permutation(len(frame))[: len(frame) // 4]] = True
    frame["split"] = np.where(test, "test", "train")
    validation = np.zeros(len(frame), bool)
    validation[rng.permutation(np.flatnonzero(~test))[: len(frame) // 8]] = True
    frame["validation"] = validation
    return frame


def make_workspace(root: Path, n_classes: int, models: list[str], baselines: list[str]) -> None:
    corpus = toy_corpus(n_classes)
    docs = [t.split() for t in corpus["text"]]
    write_table(corpus, root / catalog.CORPUS)
    write_table(pd.DataFrame({"doc_id": corpus["doc_id"], "split": corpus["split"], "tokens": docs}), root / catalog.TOKENS)
    vocab = build_vocab([d for d, s in zip(docs, corpus["split"]) if s == "train"], min_count=1)
    write_table(vocab, root / catalog.VOCAB)
    write_json(list(range(n_classes)), root / catalog.LABELS)
    rng = np.random.default_rng(1)
    tokens = vocab["token"].tolist()
    write_table(vectors_table(tokens, rng.normal(size=(len(tokens), 6))), root / "data/embeddings/word2vec_skipgram.parquet")
    for mode in ("dm", "dbow"):
        vec = rng.normal(size=(len(corpus), 4)).astype(np.float32)
        write_table(pa.table({"doc_id": corpus["doc_id"].to_numpy(), "split": corpus["split"].to_numpy(),
                              "vector": pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), 4),
                              "inferred": (corpus["split"] == "test").to_numpy()}),
                    root / f"data/docvecs/doc2vec_{mode}.parquet")
    test = corpus[corpus["split"] == "test"]
    write_table(pd.DataFrame({"doc_id": test["doc_id"], "label_id": test["label_id"],
                              "predicted": test["label_id"], "proba": 0.9}), root / catalog.BOW_PREDICTIONS)
    write_json({"models": {"tfidf_logreg": {"accuracy": 1.0, "train_seconds": 0.1}}}, root / catalog.BOW_METRICS)
    params = {"seed": 0, "classify": {
        "models": models, "baselines": baselines, "baseline_methods": ["word2vec_skipgram"], "hidden": 8,
        "embed_dim": 6, "epochs": 8, "batch_size": 8, "learning_rate": 0.02, "patience": 8, "max_len": 30,
        "attention_docs": 2, "device": "cpu"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    models = ["gru-bi-attention@word2vec_skipgram", "lstm-max@random"]
    baselines = ["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "idf_mean", "docvec"]
    make_workspace(root, 2, models, baselines)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        summary = classify_stage.run(load_all_params(), log=lambda *_: None)
    return root, summary, models


def test_metrics_cover_every_model_and_baseline(trained):
    root, summary, models = trained
    metrics = json.loads((root / catalog.CLASSIFY_METRICS).read_text())["models"]
    expected = {"tfidf_logreg", "nb_logreg", "nbsvm", "mean@word2vec_skipgram", "idf_mean@word2vec_skipgram",
                "docvec@doc2vec_dm", "docvec@doc2vec_dbow", "docvec@doc2vec_dm+doc2vec_dbow", *models}
    assert set(metrics) == expected
    for name, m in metrics.items():
        assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["roc_auc"] <= 1.0
        assert set(m["by_source"]) == {"imdb", "rt"} and m["n"] == 20
        assert m["kind"] == ("neural" if name in models else "baseline")
        assert ("tokens_per_second" in m) == (name in models)
    # The cue word decides the label: the NB features find it.
    assert metrics["nb_logreg"]["accuracy"] >= 0.9
    assert set(summary["winner"]) == {"overall", "imdb", "rt"}
    for scope, best in summary["best"].items():
        # 20 test documents: a winner only where McNemar separates the best row from the runner-up
        assert best in expected and summary["winner"][scope] in (best, None)
        assert (summary["winner"][scope] is None) == bool(summary["tied_with"][scope])
    assert metrics[summary["best_neural"]["overall"]]["kind"] == "neural"
    for name, m in metrics.items():
        for key in ("accuracy", "macro_f1"):
            lo, hi = m[f"{key}_ci"]
            assert lo <= m[key] <= hi
        assert m["transductive"] is False  # the toy docvecs infer every test document
        assert name == "tfidf_logreg" or m["trained_on"].startswith("train split")  # (bow's row is made up here)
        if m["kind"] == "baseline" and name != "tfidf_logreg":
            assert m["C"] in [float(c) for c in m["validation_accuracy"]]


def test_outputs_for_the_report(trained):
    root, _, models = trained
    pred = read_frame(root / catalog.CLASSIFY_PREDICTIONS)
    assert len(pred) == 20 * 10 and set(pred["model"]) >= set(models)
    assert np.allclose(pred.loc[pred["model"] == models[0], "confidence"] >= 0.5, True)
    states = read_frame(root / catalog.CLASSIFY_STATES)
    assert sorted(set(states["model"])) == sorted(models) and len(states) == 40
    assert len(states["vector"].iloc[0]) == 16 and len(states.loc[states["model"] == models[1], "vector"].iloc[0]) == 8
    attention = json.loads((root / catalog.ATTENTION).read_text())
    assert len(attention) == 2 and all(a["model"] == models[0] for a in attention)
    for a in attention:
        assert len(a["tokens"]) == len(a["weights"]) and abs(sum(a["weights"]) - 1) < 1e-3
    curve = pd.read_csv(root / catalog.CURVES_DIR / f"{models[0]}.csv")
    assert list(curve.columns) == ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"]
    assert len(curve) >= 1 and curve["epoch"].iloc[0] == 1
    confusion = pd.read_csv(root / catalog.CONFUSION_DIR / "nbsvm.csv")
    assert len(confusion) == 20 and set(confusion["actual"].astype(str)) <= {"0", "1"}
    assert (root / catalog.CLASSIFY_MODELS / models[0] / "model.pt").is_file()
    assert not list((root / catalog.CHECKPOINTS).glob("*.pt"))  # resumable checkpoints are removed when done


def test_predict_round_trip_matches_the_stage(trained):
    root, _, models = trained
    corpus = read_frame(root / catalog.CORPUS)
    test = corpus[corpus["split"] == "test"]
    pred = read_frame(root / catalog.CLASSIFY_PREDICTIONS)
    for name in models:
        clf = load_classifier(name, root)
        frame = predict_texts(clf, test["text"].tolist())
        stage = pred[pred["model"] == name]
        assert frame["label"].tolist() == [str(p) for p in stage["predicted"]]
        assert np.allclose(frame["confidence"], stage["confidence"], atol=1e-5)
        assert np.allclose(frame[["p_0", "p_1"]].sum(axis=1), 1.0, atol=1e-5)


def test_predict_bad_input(trained, tmp_path):
    root, _, models = trained
    clf = load_classifier(models[0], root)
    with pytest.raises(StageError, match="empty text"):
        predict_texts(clf, ["fine", "  "])
    with pytest.raises(StageError, match="no such classifier"):
        load_classifier("gru-max@glove", root)
    # Labels that changed since training.
    other = tmp_path / "other"
    (other / "data").mkdir(parents=True)
    (other / "data/models").symlink_to(root / "data/models", target_is_directory=True)
    (other / "data/labels.json").write_text(json.dumps(["neg", "pos"]))
    with pytest.raises(StageError, match="trained on labels"):
        load_classifier(models[0], other)


def test_predict_applies_the_phrases_of_training(trained, tmp_path):
    """A model trained with tokenise.phrases gets data/phrases.parquet applied to new texts, and says so
    when the file is missing."""
    import torch

    from nlpdag.text.tokenise import PHRASES, write_phrases

    root, _, models = trained
    other = tmp_path / "other"
    folder = other / catalog.CLASSIFY_MODELS / models[0]
    folder.mkdir(parents=True)
    state = torch.load(root / catalog.CLASSIFY_MODELS / models[0] / "model.pt", weights_only=False)
    state["extra"]["tokenise"] = {**state["extra"].get("tokenise", {}), "phrases": True}
    torch.save(state, folder / "model.pt")
    with pytest.raises(StageError, match=r"data/phrases.parquet: not found.*tokenise.phrases"):
        load_classifier(models[0], other)

    from gensim.models.phrases import Phrases

    learnt = Phrases([["a", "wonderful", "film"]] * 20 + [["a", "dull", "plot"]] * 20, min_count=1, threshold=0.1)
    write_phrases(learnt.freeze(), other / PHRASES)
    clf = load_classifier(models[0], other)   # read back from Parquet, no pickle
    assert clf.phrases[["a", "wonderful", "film"]] == ["a_wonderful", "film"]
    plain = load_classifier(models[0], root)
    assert plain.phrases is None
    got = predict_texts(clf, ["a wonderful film"])
    want = predict_texts(plain, ["qzxqzx film"])   # the joined token is out of vocabulary, as an unseen word is
    assert np.allclose(got["confidence"], want["confidence"]) and got["label"].tolist() == want["label"].tolist()


def test_three_classes(tmp_path, monkeypatch):
    make_workspace(tmp_path, 3, ["gru-bi-mean@random"], ["nb_logreg", "mean"])
    monkeypatch.chdir(tmp_path)
    classify_stage.run(load_all_params(), log=lambda *_: None)
    metrics = json.loads(Path(catalog.CLASSIFY_METRICS).read_text())["models"]
    assert set(metrics) == {"nb_logreg", "mean@word2vec_skipgram", "gru-bi-mean@random"}
    assert "roc_auc" not in metrics["nb_logreg"] and metrics["nb_logreg"]["accuracy"] >= 0.9
    pred = read_frame(catalog.CLASSIFY_PREDICTIONS)
    assert set(pred["predicted"]) <= {0, 1, 2} and pred["proba_1"].isna().all()
    frame = predict_texts(load_classifier(None, tmp_path), ["the plot was weird"])
    assert list(frame.columns[-3:]) == ["p_0", "p_1", "p_2"]


def test_bad_params():
    with pytest.raises(StageError, match="classify.max_len"):
        parse_params({"classify": {"max_len": 0}})
    with pytest.raises(StageError, match="classify.models"):
        parse_params({"classify": {"models": ["transformer@glove"]}})
    with pytest.raises(StageError, match="unknown embedding 'word2vec'"):
        classify.check_embedding("word2vec")


def test_truncation_and_validation_split():
    doc = [str(i) for i in range(10)]
    assert classify.truncate(doc, 4, "head") == ["0", "1", "2", "3"]
    assert classify.truncate(doc, 4, "tail") == ["6", "7", "8", "9"]
    assert classify.truncate(doc, 8, "head_tail") == ["0", "1", "4", "5", "6", "7", "8", "9"]
    frame = toy_corpus(2)
    train = (frame["split"] == "train").to_numpy()
    data = classify.Dataset(frame["doc_id"].to_numpy(), frame["label_id"].to_numpy(), frame["source"],
                            [t.split() for t in frame["text"]], train, ["0", "1"], frame["validation"].to_numpy())
    fit, val = classify.validation_split(data)
    assert len(set(fit) | set(val)) == data.train.sum() and not set(fit) & set(val)
    assert np.array_equal(np.flatnonzero(train)[val], np.flatnonzero(frame["validation"].to_numpy()))
    with pytest.raises(StageError, match="validation slice"):
        classify.validation_split(classify.Dataset(data.doc_ids, data.y, data.sources, data.docs, train, ["0", "1"],
                                                   np.zeros(len(train), bool)))


def test_no_neural_model_still_writes_every_declared_output(tmp_path, monkeypatch):
    """classify.models: [] (baselines only) leaves the folders dvc.yaml declares, empty, so DVC can
    commit the stage."""
    make_workspace(tmp_path, 2, [], ["nb_logreg"])
    monkeypatch.chdir(tmp_path)
    summary = classify_stage.run(load_all_params(), log=lambda *_: None)
    assert summary["best_neural"]["overall"] is None
    for folder in (catalog.CURVES_DIR, catalog.CONFUSION_DIR, catalog.LIVE_DIR / "classify/plots/custom"):
        assert (tmp_path / folder).is_dir(), folder
    for curve in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        assert json.loads((tmp_path / catalog.LIVE_DIR / f"classify/plots/custom/{curve}.json").read_text()) == []
    for folder in ():
        assert (tmp_path / folder).is_dir(), folder
    assert not list((tmp_path / catalog.CURVES_DIR).iterdir())
