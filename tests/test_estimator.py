"""`NeuralClassifier` (nlpdag/models/classifier.py) as an estimator: it learns, the params reach the
Trainer, save/load, every family on every kind of embedding, checkpoint/resume."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nlpdag.config.classify import ClassifyParams
from nlpdag.io.tables import write_table
from nlpdag.io.vectors import vectors_table
from nlpdag.models.classifier import CONFIG_FILE, MODEL_FILE, VOCAB_FILE, NeuralClassifier
from nlpdag.names import parse_model

pytestmark = pytest.mark.usefixtures("one_thread")

FILLER = [f"w{i}" for i in range(16)]
CUES = {1: "good", 0: "bad"}


def make_docs(n: int, seed: int, length: tuple[int, int] = (4, 10)) -> tuple[list[list[str]], np.ndarray]:
    """Two classes; one cue word (among the first three tokens) decides the label, the rest is filler."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    rng.shuffle(y)
    docs = []
    for label in y:
        doc = list(rng.choice(FILLER, size=int(rng.integers(*length))))
        doc.insert(int(rng.integers(0, 3)), CUES[int(label)])
        docs.append(doc)
    return docs, y.astype(np.int64)


TRAIN = make_docs(60, seed=1)
VAL = make_docs(20, seed=2)
LABELS = ["neg", "pos"]
QUIET = {"verbose": False, "log": lambda *a, **k: None}
SMALL = {"embed_dim": 8, "hidden": 8, "batch_size": 8, "device": "cpu", "transformer_heads": 2, "transformer_ff": 16,
         "rae_epochs": 1, "rae_sample": 200, "tree_segment": 8}


def fit(spec: str, epochs: int = 1, **kw) -> NeuralClassifier:
    recipe = {**SMALL, "epochs": epochs, **kw}
    extra = {k: recipe.pop(k) for k in ("vectors", "checkpoint_dir", "callbacks", "seed") if k in recipe}
    clf = NeuralClassifier(spec, **extra, **QUIET, **recipe)
    return clf.fit(TRAIN[0], TRAIN[1], VAL[0], VAL[1], labels=LABELS)


def accuracy(clf: NeuralClassifier, docs, y) -> float:
    return float((clf.predict_proba(docs).argmax(1) == y).mean())


# ---- (a) it learns ----------------------------------------------------------------------------------------

def test_fit_returns_self_and_learns():
    clf = NeuralClassifier("lstm-max@random", hidden=8, embed_dim=8, epochs=8, learning_rate=0.02, batch_size=8,
                           patience=8, device="cpu", **QUIET)
    assert not hasattr(clf, "model_")   # settings only until fit
    assert clf.fit(TRAIN[0], TRAIN[1], VAL[0], VAL[1], labels=LABELS) is clf
    assert accuracy(clf, *VAL) >= 0.8, clf.history_
    assert clf.labels_ == LABELS
    assert set(clf.words_) == set(FILLER) | set(CUES.values())
    assert clf.index_ == {w: i + 2 for i, w in enumerate(clf.words_)}
    assert 1 <= len(clf.history_) <= 8 and 1 <= clf.best_epoch_ <= len(clf.history_)
    assert {"epoch", "train_loss", "val_loss", "val_accuracy"} <= set(clf.history_[-1])
    assert clf.seconds_ > 0 and clf.tokens_per_second_ > 0
    assert clf.gradients_["steps"] == len(clf.history_) * 8   # 60 documents in batches of 8
    assert clf.pretrain_history_ == []


# ---- (b) one parameter from params.yaml's classify group to the Trainer ---------------------------------

def test_epochs_travel_from_params_to_the_trainer(monkeypatch):
    from nlpdag.training import trainer

    configs = []
    original = trainer.Trainer.__init__

    def spy(self, model, config, callbacks=()):
        configs.append(config)
        original(self, model, config, callbacks)

    monkeypatch.setattr(trainer.Trainer, "__init__", spy)
    params = ClassifyParams(epochs=2, patience=5, embed_dim=8, hidden=8, batch_size=8, device="cpu")
    clf = NeuralClassifier("gru-max@random", **QUIET, **params.recipe())
    clf.fit(TRAIN[0], TRAIN[1], VAL[0], VAL[1], labels=LABELS)
    assert len(configs) == 1
    assert configs[0].epochs == 2 and configs[0].patience == 5 and configs[0].batch_size == 8
    assert len(clf.history_) == 2


# ---- (c) save / load ----------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    clf = fit("lstm-bi-attention@random", epochs=2)
    clf.save(tmp_path, corpus="toy", n=3)
    state = torch.load(tmp_path / MODEL_FILE, weights_only=True)
    assert isinstance(state, dict) and state
    assert all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items())
    config = json.loads((tmp_path / CONFIG_FILE).read_text(encoding="utf-8"))
    assert config["spec"] == "lstm-bi-attention@random" and config["labels"] == LABELS
    assert config["recipe"]["hidden"] == 8 and config["meta"] == {"corpus": "toy", "n": 3}
    assert (tmp_path / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1] == clf.words_

    back = NeuralClassifier.load(tmp_path)
    assert back.spec == clf.spec and back.labels_ == LABELS and back.words_ == clf.words_
    assert back.meta_ == {"corpus": "toy", "n": 3} and back.best_epoch_ == clf.best_epoch_
    assert len(back.history_) == len(clf.history_)
    np.testing.assert_array_equal(back.predict_proba(VAL[0]), clf.predict_proba(VAL[0]))
    np.testing.assert_array_equal(back.transform(VAL[0]), clf.transform(VAL[0]))
    for a, b in zip(back.attention(VAL[0]), clf.attention(VAL[0])):
        np.testing.assert_array_equal(a, b)


# ---- (d) every family on every kind of embedding ------------------------------------------------------------

FAMILIES = ["gru-bi-attention", "lstm-max", "treelstm-rae", "recnn-balanced", "transformer-1x8"]
FILES = {"word2vec_skipgram": "data/embeddings/word2vec_skipgram.parquet",
         "doc2vec_dbow": "data/embeddings/doc2vec_dbow.parquet",
         "glove__vae": "data/reduced/glove__vae.parquet",
         "pretrained": "data/embeddings/pretrained.parquet"}
SPECS = [f"{f}@{e}" for e in ["random", *FILES] for f in FAMILIES]   # 1 epoch each: a few seconds in all
VECTOR_DIM = 6   # not embed_dim: the vectors set the embedding's size


def write_vectors_file(root, embedding: str) -> None:
    """The pipeline's file of an embedding: every word but one filler word (an unknown word)."""
    tokens = [w for w in FILLER + list(CUES.values()) if w != "w0"]
    matrix = np.random.default_rng(len(embedding)).normal(size=(len(tokens), VECTOR_DIM)).astype(np.float32)
    path = root / FILES[embedding]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(vectors_table(tokens, matrix), path)


@pytest.mark.parametrize("spec", SPECS)
def test_every_family_on_every_embedding(spec, tmp_path, monkeypatch):
    model = parse_model(spec)
    monkeypatch.chdir(tmp_path)
    if not model.embedding.random:
        write_vectors_file(tmp_path, model.embedding.name)
        assert model.embedding.path() is not None and model.embedding.path().exists()
    clf = fit(spec, max_len=8)
    docs = VAL[0]
    if not model.embedding.random:
        assert "w0" not in clf.words_ and clf.model_.config.embed_dim == VECTOR_DIM

    proba = clf.predict_proba(docs)
    assert proba.shape == (len(docs), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    states = clf.transform(docs)
    assert states.shape == (len(docs), clf.model_.config.out_dim)
    assert np.isfinite(states).all()

    if model.attends:
        weights = clf.attention(docs)
        assert len(weights) == len(docs)
        for doc, w in zip(docs, weights):
            assert len(w) == len(clf.read_tokens(doc)) and len(clf.read_tokens(doc)) <= 8
            assert np.isfinite(w).all()
    else:
        with pytest.raises(ValueError, match="no attention"):
            clf.attention(docs)
    everything = clf.predict_all(docs)
    np.testing.assert_array_equal(everything["proba"], proba)
    np.testing.assert_array_equal(everything["states"], states)
    assert ("attention" in everything) == model.attends

    if model.family == "tree":
        nodes = clf.tree_nodes(docs[:2])
        assert len(nodes) == 2
        np.testing.assert_allclose(nodes[0]["proba"].sum(axis=1), 1.0, rtol=1e-5)

    clf.save(tmp_path / "model")
    back = NeuralClassifier.load(tmp_path / "model")
    np.testing.assert_allclose(back.predict_proba(docs), proba, rtol=1e-6, atol=1e-7)


def test_missing_vectors_file_names_its_stage(tmp_path, monkeypatch):
    from nlpdag.errors import StageError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(StageError, match=r"dvc repro word2vec@skipgram"):
        fit("lstm-max@word2vec_skipgram")


# ---- (e) checkpoint / resume --------------------------------------------------------------------------------

class Interrupt(Exception):
    pass


class Epochs:
    def __init__(self):
        self.seen = []

    def on_epoch_start(self, trainer) -> None:
        self.seen.append(trainer.epoch)


class StopAfter:
    """Kills the fit at the end of an epoch (after the checkpoint was written: callbacks run after it)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer) -> None:
        if trainer.epoch == self.epoch:
            raise Interrupt


def test_interrupted_fit_resumes_to_the_same_weights(tmp_path):
    settings = {"epochs": 3, "patience": 3, "learning_rate": 0.01, "seed": 7}
    whole = fit("lstm-max@random", checkpoint_dir=tmp_path / "whole", **settings)
    assert list((tmp_path / "whole").iterdir()) == []       # the checkpoint goes once the fit is done

    with pytest.raises(Interrupt):
        fit("lstm-max@random", checkpoint_dir=tmp_path / "cut", callbacks=[StopAfter(1)], **settings)
    left = list((tmp_path / "cut").iterdir())
    assert len(left) == 1 and left[0].suffix == ".pt"

    epochs = Epochs()
    resumed = fit("lstm-max@random", checkpoint_dir=tmp_path / "cut", callbacks=[epochs], **settings)
    assert epochs.seen == [2, 3]                              # it resumed after epoch 1
    assert list((tmp_path / "cut").iterdir()) == []
    assert [h["epoch"] for h in resumed.history_] == [h["epoch"] for h in whole.history_] == [1, 2, 3]
    assert [h["train_loss"] for h in resumed.history_] == [h["train_loss"] for h in whole.history_]
    assert resumed.best_epoch_ == whole.best_epoch_
    a, b = whole.model_.state_dict(), resumed.model_.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    np.testing.assert_array_equal(resumed.predict_proba(VAL[0]), whole.predict_proba(VAL[0]))

    fresh = fit("lstm-max@random", **{**settings, "seed": 8})   # a different run does differ
    assert not np.array_equal(fresh.predict_proba(VAL[0]), whole.predict_proba(VAL[0]))
