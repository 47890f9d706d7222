"""The classifier stages end to end on a tiny workspace (no DVC): every `neural@<key>` stage, then the
`classify` join; and `predict` from what the neural stages saved."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

import stages.classify as classify_stage
import stages.neural as neural_stage
from conftest import ROOT, run_classifier_stages
from nlpdag.catalog.bow import BOW_SCORES, BOW_PREDICTIONS
from nlpdag.catalog.classify import (ATTENTION, CHECKPOINTS, CLASSIFY_SCORES, CLASSIFY_PREDICTIONS, CLASSIFY_STATES,
                                     CONFUSION_DIR, CURVES_DIR, NEURAL_DIR, NEURAL_MODELS, SUMMARY, TREES, model_dir,
                                     neural_dir)
from nlpdag.catalog.ingest import CORPUS, LABELS
from nlpdag.catalog.tokenise import TOKENS, VOCAB
from nlpdag.classify.dataset import validation_split
from nlpdag.classify.predict import load_classifier, predict_texts
from nlpdag.config.params import load_params as load_all_params
from nlpdag.config.params import parse_params
from nlpdag.errors import StageError
from nlpdag.evaluation.rows import Dataset
from nlpdag.io.tables import read_frame, write_json, write_table
from nlpdag.io.vectors import vectors_table
from nlpdag.models.classifier import CONFIG_FILE, MODEL_FILE, VOCAB_FILE, NeuralClassifier
from nlpdag.names import parse_embedding
from nlpdag.report.build import pick_examples
from nlpdag.text.tokenise import build_vocab
from nlpdag.training.progress import LIVE_DIR

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


def make_workspace(root: Path, n_classes: int, models: dict[str, str], baselines: list[str]) -> None:
    """The inputs of the classifier stages under root; params.yaml's classify.models is `models`
    ({key: spec}, each key a stage neural@<key>)."""
    corpus = toy_corpus(n_classes)
    docs = [t.split() for t in corpus["text"]]
    write_table(corpus, root / CORPUS)
    write_table(pd.DataFrame({"doc_id": corpus["doc_id"], "split": corpus["split"], "tokens": docs}), root / TOKENS)
    vocab = build_vocab([d for d, s in zip(docs, corpus["split"]) if s == "train"], min_count=1)
    write_table(vocab, root / VOCAB)
    write_json(list(range(n_classes)), root / LABELS)
    rng = np.random.default_rng(1)
    tokens = vocab["token"].tolist()
    write_table(vectors_table(tokens, rng.normal(size=(len(tokens), 6))), root / parse_embedding("word2vec_skipgram").path())
    for mode in ("dm", "dbow", "ngram"):
        vec = rng.normal(size=(len(corpus), 4)).astype(np.float32)
        write_table(pa.table({"doc_id": corpus["doc_id"].to_numpy(), "split": corpus["split"].to_numpy(),
                              "vector": pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), 4),
                              "inferred": (corpus["split"] == "test").to_numpy()}),
                    root / f"data/docvecs/doc2vec_{mode}.parquet")
    test = corpus[corpus["split"] == "test"]
    write_table(pd.DataFrame({"doc_id": test["doc_id"], "label_id": test["label_id"],
                              "predicted": test["label_id"], "proba": 0.9}), root / BOW_PREDICTIONS)
    write_json({"models": {"tfidf_logreg": {"accuracy": 1.0, "train_seconds": 0.1}}}, root / BOW_SCORES)
    params = {"seed": 0, "classify": {
        "models": dict(models), "baselines": baselines, "baseline_methods": ["word2vec_skipgram"], "hidden": 8,
        "embed_dim": 6, "epochs": 8, "batch_size": 8, "learning_rate": 0.02, "patience": 8, "max_len": 30,
        "device": "cpu"}, "report": {"attention_docs": 2}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


MODELS = {"bigru_attention": "gru-bi-attention@word2vec_skipgram", "lstm_max": "lstm-max@random"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    baselines = ["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "idf_mean", "docvec", "nb_docvec"]
    make_workspace(root, 2, MODELS, baselines)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        summary = run_classifier_stages(root)
    return root, summary, list(MODELS.values())


def test_metrics_cover_every_model_and_baseline(trained):
    root, summary, models = trained
    metrics = json.loads((root / CLASSIFY_SCORES).read_text())["models"]
    expected = {"tfidf_logreg", "nb_logreg", "nbsvm", "mean@word2vec_skipgram", "idf_mean@word2vec_skipgram",
                "docvec@doc2vec_dm", "docvec@doc2vec_dbow", "docvec@doc2vec_dm+doc2vec_dbow", "docvec@doc2vec_ngram",
                "nb_docvec@doc2vec_ngram", "nb_docvec@doc2vec_dbow", *models}
    assert set(metrics) == expected
    # the course's question, learned against pure n-grams, paired on the same test documents
    versus = summary["versus"]
    assert versus["learned_vs_ngrams"]["b"] in ("tfidf_logreg", "nb_logreg", "nbsvm")
    assert set(versus["learned_vs_ngrams"]["by_docvec"]) == {"doc2vec_ngram", "doc2vec_dbow"}
    assert (versus["ngram_vs_word_docvecs"]["a"], versus["ngram_vs_word_docvecs"]["b"]) == (
        "docvec@doc2vec_ngram", "docvec@doc2vec_dbow")
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
    assert json.loads((root / SUMMARY).read_text()) == summary
    for name, m in metrics.items():
        for key in ("accuracy", "macro_f1"):
            lo, hi = m[f"{key}_ci"]
            assert lo <= m[key] <= hi
        assert m["transductive"] is False  # the toy docvecs infer every test document
        assert name == "tfidf_logreg" or m["trained_on"].startswith("train split")  # (bow's row is made up here)
        if m["kind"] == "baseline" and name != "tfidf_logreg":
            assert m["C"] in [float(c) for c in m["validation_accuracy"]]
    # A neural row's numbers are what its own stage wrote.
    for key, spec in MODELS.items():
        info = json.loads((root / neural_dir(key) / "info.json").read_text())
        assert info["spec"] == spec and metrics[spec]["epochs"] == info["epochs"]
        assert metrics[spec]["tokens_per_second"] == round(info["tokens_per_second"])


def test_outputs_for_the_report(trained):
    import torch

    root, _, models = trained
    pred = read_frame(root / CLASSIFY_PREDICTIONS)
    assert len(pred) == 20 * 13 and set(pred["model"]) >= set(models)
    assert np.allclose(pred.loc[pred["model"] == models[0], "confidence"] >= 0.5, True)
    states = read_frame(root / CLASSIFY_STATES)
    assert sorted(set(states["model"])) == sorted(models) and len(states) == 40
    assert len(states["vector"].iloc[0]) == 16 and len(states.loc[states["model"] == models[1], "vector"].iloc[0]) == 8
    # The attention candidates: the only attending model's view of every short test document (all 20
    # here), misclassified ones first; the report shows report.attention_docs of them.
    attention = json.loads((root / ATTENTION).read_text())
    assert len(attention) == 20 and all(a["model"] == models[0] for a in attention)
    mine = pred[pred["model"] == models[0]].set_index("doc_id")
    assert {a["doc_id"] for a in attention} == set(mine.index)
    for a in attention:
        assert len(a["tokens"]) == len(a["weights"]) and abs(sum(a["weights"]) - 1) < 1e-3
        assert a["wrong"] == (a["predicted"] != a["label"])
        assert a["wrong"] == bool(mine.loc[a["doc_id"], "predicted"] != mine.loc[a["doc_id"], "label_id"])
    flags = [a["wrong"] for a in attention]
    assert flags == sorted(flags, reverse=True)  # misclassified first
    shown = pick_examples(attention, 2)
    wrong, right = [a for a in attention if a["wrong"]], [a for a in attention if not a["wrong"]]
    assert shown == (wrong[:1] + right[:1] if wrong else right[:2])
    assert json.loads((root / TREES).read_text()) == []  # no tree model
    curve = pd.read_csv(root / CURVES_DIR / f"{models[0]}.csv")
    assert list(curve.columns) == ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"]
    assert len(curve) >= 1 and curve["epoch"].iloc[0] == 1
    assert curve.equals(pd.read_csv(root / neural_dir("bigru_attention") / "curves.csv"))
    confusion = pd.read_csv(root / CONFUSION_DIR / "nbsvm.csv")
    assert len(confusion) == 20 and set(confusion["actual"].astype(str)) <= {"0", "1"}
    # Each neural@<key> stage's outputs: the model folder (weights alone), its predictions, DVCLive.
    for key in MODELS:
        folder = root / model_dir(key)
        assert sorted(p.name for p in folder.iterdir()) == sorted([MODEL_FILE, CONFIG_FILE, VOCAB_FILE])
        state = torch.load(folder / MODEL_FILE, weights_only=True)   # a bare state_dict: no pickle
        assert state and all(isinstance(v, torch.Tensor) for v in state.values())
        files = {p.name for p in (root / neural_dir(key)).iterdir()}
        assert files == {"proba.parquet", "states.parquet", "curves.csv", "info.json"} | (
            {"attention.parquet"} if key == "bigru_attention" else set())
        assert (root / LIVE_DIR / "neural" / key / "metrics.json").is_file()
    assert sorted(p.name for p in (root / NEURAL_MODELS).iterdir()) == sorted(MODELS)
    assert not list((root / CHECKPOINTS).glob("*.pt"))  # resumable checkpoints are removed when done
    assert not list(root.rglob(".*.tmp"))


def test_predict_round_trip_matches_the_stage(trained):
    root, _, models = trained
    corpus = read_frame(root / CORPUS)
    test = corpus[corpus["split"] == "test"]
    pred = read_frame(root / CLASSIFY_PREDICTIONS)
    for key, name in MODELS.items():
        clf = load_classifier(name, root)
        assert (clf.key, clf.name, clf.labels) == (key, name, ["0", "1"])
        frame = predict_texts(clf, test["text"].tolist())
        stage = pred[pred["model"] == name]
        assert frame["label"].tolist() == [str(p) for p in stage["predicted"]]
        assert np.allclose(frame["confidence"], stage["confidence"], atol=1e-5)
        assert np.allclose(frame[["p_0", "p_1"]].sum(axis=1), 1.0, atol=1e-5)
        by_key = predict_texts(load_classifier(key, root), test["text"].tolist())   # a model named by its key
        assert by_key.equals(frame)


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
    with pytest.raises(StageError, match=r"trained on labels .*retrain: dvc repro neural@bigru_attention"):
        load_classifier(models[0], other)


def test_predict_applies_the_phrases_of_training(trained, tmp_path):
    """A model trained with tokenise.phrases gets data/phrases.parquet applied to new texts, and says so
    when the file is missing."""
    from nlpdag.text.tokenise import PHRASES, write_phrases

    root, _, models = trained
    other = tmp_path / "other"
    folder = other / model_dir("bigru_attention")
    shutil.copytree(root / model_dir("bigru_attention"), folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["meta"]["tokenise"] = {**config["meta"].get("tokenise", {}), "phrases": True}
    (folder / CONFIG_FILE).write_text(json.dumps(config))
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
    make_workspace(tmp_path, 3, {"bigru_mean": "gru-bi-mean@random"}, ["nb_logreg", "mean"])
    monkeypatch.chdir(tmp_path)
    run_classifier_stages(tmp_path)
    metrics = json.loads(Path(CLASSIFY_SCORES).read_text())["models"]
    assert set(metrics) == {"nb_logreg", "mean@word2vec_skipgram", "gru-bi-mean@random"}
    assert "roc_auc" not in metrics["nb_logreg"] and metrics["nb_logreg"]["accuracy"] >= 0.9
    pred = read_frame(CLASSIFY_PREDICTIONS)
    assert set(pred["predicted"]) <= {0, 1, 2} and pred["proba_1"].isna().all()
    frame = predict_texts(load_classifier(None, tmp_path), ["the plot was weird"])
    assert list(frame.columns[-3:]) == ["p_0", "p_1", "p_2"]


def test_bad_params():
    with pytest.raises(StageError, match="classify.max_len"):
        parse_params({"classify": {"max_len": 0}})
    with pytest.raises(StageError, match="classify.models"):
        parse_params({"classify": {"models": {"t": "transformer@glove"}}})
    with pytest.raises(StageError, match=r"classify.models.*mapping"):   # the list of before
        parse_params({"classify": {"models": ["gru-max@glove"]}})
    with pytest.raises(StageError, match="classify.models.*unknown embedding 'word2vec'"):
        parse_params({"classify": {"models": {"a": "gru-max@word2vec"}}})
    with pytest.raises(ValueError, match="unknown embedding 'word2vec'"):
        parse_embedding("word2vec")


def test_truncation_and_validation_split():
    from nlpdag.models.sequences import encode_docs

    doc = [str(i) for i in range(10)]
    cut = lambda n, how: NeuralClassifier("lstm-max@random", max_len=n, truncation=how).read_tokens(doc)  # noqa: E731
    assert cut(4, "head") == ["0", "1", "2", "3"]
    assert cut(4, "tail") == ["6", "7", "8", "9"]
    assert cut(8, "head_tail") == ["0", "1", "4", "5", "6", "7", "8", "9"]
    assert cut(10, "head") == doc and cut(30, "head_tail") == doc
    index = {t: 2 + int(t) for t in doc}
    for n, how in ((4, "head"), (4, "tail"), (8, "head_tail"), (7, "head_tail")):  # what the model reads, shown
        assert encode_docs([doc], index, n, how)[0].tolist() == [index[t] for t in cut(n, how)]
    frame = toy_corpus(2)
    train = (frame["split"] == "train").to_numpy()
    data = Dataset(frame["doc_id"].to_numpy(), frame["label_id"].to_numpy(), frame["source"],
                   [t.split() for t in frame["text"]], train, ["0", "1"], frame["validation"].to_numpy())
    fit, val = validation_split(data)
    assert len(set(fit) | set(val)) == data.train.sum() and not set(fit) & set(val)
    assert np.array_equal(np.flatnonzero(train)[val], np.flatnonzero(frame["validation"].to_numpy()))
    with pytest.raises(StageError, match="validation slice"):
        validation_split(Dataset(data.doc_ids, data.y, data.sources, data.docs, train, ["0", "1"],
                                 np.zeros(len(train), bool)))


def test_the_join_reads_only_what_the_neural_stages_trained(trained, tmp_path, monkeypatch):
    """`classify` trains nothing: a model of classify.models that its neural@<key> stage has not trained
    (or trained for another spec) stops it with the command to run."""
    root, _, _ = trained
    shutil.copytree(root, tmp_path / "copy")
    monkeypatch.chdir(tmp_path / "copy")
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["classify"]["models"] = {**MODELS, "gru_max": "gru-max@random"}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(StageError, match=r"model 'gru_max' \(gru-max@random\) has not been trained "
                                         r"\(run: dvc repro neural@gru_max\)"):
        classify_stage.run(load_all_params(), log=lambda *_: None)
    params["classify"]["models"] = {"bigru_attention": "gru-bi-max@word2vec_skipgram"}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(StageError, match=r"holds 'gru-bi-attention@word2vec_skipgram', but "
                                         r"classify.models.bigru_attention is 'gru-bi-max@word2vec_skipgram'"):
        classify_stage.run(load_all_params(), log=lambda *_: None)
    with pytest.raises(StageError, match="classify.models: no model 'nope'; keys: bigru_attention"):
        neural_stage.run(load_all_params(), "nope", log=lambda *_: None)


def test_no_neural_model_still_writes_every_declared_output(tmp_path, monkeypatch):
    """classify.models: {} (baselines only) leaves every output dvc.yaml declares for the `classify`
    stage, the folders empty, so DVC can commit the stage."""
    make_workspace(tmp_path, 2, {}, ["nb_logreg"])
    monkeypatch.chdir(tmp_path)
    summary = run_classifier_stages(tmp_path)
    assert summary["best_neural"]["overall"] is None
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["classify"]
    declared = [next(iter(o)) if isinstance(o, dict) else o for key in ("outs", "metrics", "plots")
                for o in stage.get(key, [])]
    assert {str(p) for p in (CURVES_DIR, CONFUSION_DIR, CLASSIFY_SCORES)} <= set(declared)
    for path in declared:
        assert (tmp_path / path).exists(), path
    for folder in (CURVES_DIR, CONFUSION_DIR):
        assert (tmp_path / folder).is_dir(), folder
    assert not list((tmp_path / CURVES_DIR).iterdir())
    assert [p.name for p in (tmp_path / CONFUSION_DIR).iterdir()] == ["nb_logreg.csv"]
    assert len(read_frame(tmp_path / CLASSIFY_STATES)) == 0
    assert json.loads((tmp_path / ATTENTION).read_text()) == [] and json.loads((tmp_path / TREES).read_text()) == []
    assert not (tmp_path / NEURAL_DIR).exists() and not (tmp_path / LIVE_DIR).exists()  # the join trains nothing
