"""The ensemble row (members' log-odds, fitted on the validation slice only) and the rule that
language-model pre-training reads training text only."""
import json

import numpy as np
import pytest
import torch
import yaml

from conftest import run_classifier_stages
from nlpdag.catalog.classify import CLASSIFY_SCORES, CONFUSION_DIR, neural_dir
from nlpdag.classify.dataset import Dataset, Result
from nlpdag.classify.ensemble import LogOddsStack, check_members, fit_ensemble, log_odds
from nlpdag.classify.neural import train_model
from nlpdag.config.classify import ClassifyParams
from nlpdag.errors import StageError
from test_classify import make_workspace, toy_corpus

pytestmark = pytest.mark.usefixtures("one_thread")


def toy_rows(seed=0, n=1200):
    """A Dataset of n documents (half test, a quarter validation) and two members: one informative on
    the validation slice and the test split, one noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    train = np.arange(n) < n // 2
    validation = train & (np.arange(n) % 2 == 0)
    data = Dataset(np.arange(n), y, None, [[] for _ in range(n)], train, ["neg", "pos"], validation)

    def member(name, signal):
        p1 = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
        proba = np.stack([1 - p1, p1], 1)
        return Result(name, "baseline", proba[data.test], 1.0, val_proba=proba[validation])

    return data, [member("good", 1.0), member("noise", 0.0)]


def test_log_odds_of_each_class_against_the_first():
    p = np.array([[0.5, 0.5], [0.2, 0.8]])
    assert np.allclose(log_odds(p), [[0.0], [np.log(4)]])
    assert log_odds(np.array([[0.2, 0.3, 0.5]])).shape == (1, 2)


def test_the_ensemble_never_reads_test_labels():
    data, members = toy_rows()
    first = fit_ensemble(members, data, [0.1, 1.0])
    flipped = Dataset(data.doc_ids, data.y.copy(), data.sources, data.docs, data.train, data.labels, data.validation)
    flipped.y[data.test] = 1 - flipped.y[data.test]  # every test label changed
    second = fit_ensemble(members, flipped, [0.1, 1.0])
    assert first.info["ensemble"]["weights"] == second.info["ensemble"]["weights"]
    assert np.array_equal(first.proba, second.proba) and first.info["C"] == second.info["C"]
    # ...while the validation labels do decide the weights.
    moved = Dataset(data.doc_ids, data.y.copy(), data.sources, data.docs, data.train, data.labels, data.validation)
    moved.y[data.validation] = 1 - moved.y[data.validation]
    assert fit_ensemble(members, moved, [0.1, 1.0]).info["ensemble"]["weights"] != first.info["ensemble"]["weights"]


def test_drop_one_says_which_member_adds():
    data, members = toy_rows()
    row = fit_ensemble(members, data, [0.1, 1.0])
    info = row.info["ensemble"]
    assert row.name == "ensemble" and row.kind == "ensemble"
    assert info["members"] == ["good", "noise"]
    assert info["drop_one"]["good"] > 0.1 and abs(info["drop_one"]["noise"]) < 0.03
    assert abs(info["weights"]["good"][0]) > 5 * abs(info["weights"]["noise"][0])
    assert row.val_proba.shape == (data.validation.sum(), 2)  # out-of-fold, so its validation accuracy is honest
    assert row.info["validation_accuracy"] == pytest.approx(np.mean(row.val_proba.argmax(1) == data.y[data.validation]), abs=1e-4)


def test_cv_picks_C_on_folds_of_the_slice():
    data, members = toy_rows()
    stack = LogOddsStack([0.001, 1.0]).fit([m.val_proba for m in members], data.y[data.validation])
    assert set(stack.cv_accuracy_) == {0.001, 1.0} and stack.C_ in (0.001, 1.0)
    assert stack.accuracy_ == max(stack.cv_accuracy_.values())


def test_members_are_checked_before_anything_trains():
    with pytest.raises(StageError, match=r"classify.ensemble: 'nbsvm' is not a row of this run"):
        check_members(["nbsvm", "nb_logreg"], ["nb_logreg"], [], [])
    with pytest.raises(StageError, match="tfidf_logreg has no validation predictions"):
        check_members(["tfidf_logreg", "nb_logreg"], ["tfidf_logreg", "nb_logreg"], [], [])
    with pytest.raises(StageError, match="'best_neural' is not a row"):
        check_members(["best_neural", "nb_logreg"], ["nb_logreg"], [], [])  # no neural model
    check_members(["best_neural", "mean@glove"], ["mean"], ["glove"], ["lstm-max@random"])
    with pytest.raises(StageError, match="two members"):
        from nlpdag.config.base import validate

        validate(ClassifyParams, {"ensemble": ["nbsvm"]}, "params.yaml: classify")


def test_the_stage_adds_the_ensemble_row(tmp_path, monkeypatch):
    make_workspace(tmp_path, 2, {"bigru_attention": "gru-bi-attention@word2vec_skipgram"}, ["nb_logreg", "nbsvm", "docvec"])
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["classify"].update(ensemble=["nbsvm", "best_neural", "docvec@doc2vec_dbow"], epochs=3)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    summary = run_classifier_stages(tmp_path)
    metrics = json.loads((tmp_path / CLASSIFY_SCORES).read_text())["models"]
    name = "ensemble"
    row = metrics[name]
    assert row["kind"] == "ensemble" and row["trained_on"].startswith("validation slice")
    assert set(row["ensemble"]["drop_one"]) == set(row["ensemble"]["members"]) == {
        "nbsvm", "gru-bi-attention@word2vec_skipgram", "docvec@doc2vec_dbow"}
    lo, hi = row["accuracy_ci"]
    assert lo <= row["accuracy"] <= hi and row["transductive"] is False
    assert summary["best_neural"]["overall"] == "gru-bi-attention@word2vec_skipgram"  # predict's default: a model
    assert summary["best_baseline"]["overall"] in ("nb_logreg", "nbsvm", "docvec@doc2vec_dm", "docvec@doc2vec_dbow",
                                                   "docvec@doc2vec_dm+doc2vec_dbow")
    assert (tmp_path / CONFUSION_DIR / f"{name}.csv").is_file()


def test_language_model_pretraining_reads_no_test_text(tmp_path, monkeypatch):
    """The only word of the test documents' own is in the vocabulary; pre-training must never see it."""
    corpus = toy_corpus(2)
    docs = [t.split() for t in corpus["text"]]
    train = (corpus["split"] == "train").to_numpy()
    for i in np.flatnonzero(~train):
        docs[i] = docs[i] + ["testonly"]
    data = Dataset(corpus["doc_id"].to_numpy(), corpus["label_id"].to_numpy(), corpus["source"], docs, train,
                   ["0", "1"], corpus["validation"].to_numpy() & train)
    vocab = sorted({w for d in docs for w in d})
    marker = vocab.index("testonly") + 2
    seen = []
    import nlpdag.models.pretraining as pretraining

    real = pretraining.pretrain_encoder

    def spy(model, seqs, *args, **kwargs):
        seen.extend(seqs)
        return real(model, seqs, *args, **kwargs)

    monkeypatch.setattr(pretraining, "pretrain_encoder", spy)
    monkeypatch.chdir(tmp_path)  # the stage's outputs and resumable checkpoint go under the working directory
    recipe = ClassifyParams(models={"bilstm_attention": "lstm-bi-attention@random"}, pretraining="lm",
                            pretraining_epochs=1, epochs=2, hidden=6, embed_dim=5, batch_size=16, max_len=30,
                            pretrained_lr=0.5, frozen_epochs=1, device="cpu").recipe()
    # What the neural@<key> stage runs, given every document of the corpus, test ones included.
    info = train_model("bilstm_attention", "lstm-bi-attention@random", data, vocab, recipe, 0, {}, log=lambda *_: None)
    assert len(seen) == train.sum() and not any((s == marker).any() for s in seen)
    assert info["pretrain_history"] and info["pretrain_history"][0]["loss"] > 0
    assert json.loads((tmp_path / neural_dir("bilstm_attention") / "info.json").read_text())["pretrain_history"] \
        == info["pretrain_history"]


def test_the_ensemble_scores_the_test_split_with_the_models_that_made_its_validation_features():
    data, members = toy_rows()
    refit = Result("good", "baseline", 1 - members[0].proba, 1.0, extra={"fit_part_proba": members[0].proba},
                   val_proba=members[0].val_proba)  # the row's own (refitted) proba says the opposite
    a = fit_ensemble(members, data, [1.0])
    b = fit_ensemble([refit, members[1]], data, [1.0])
    assert np.array_equal(a.proba, b.proba)


def test_language_model_pretraining_penalises_saturated_states():
    from nlpdag.models.rnn import PretrainHead, RNNClassifier, RNNConfig

    torch.manual_seed(0)
    config = RNNConfig(vocab_size=20, n_classes=2, embed_dim=4, hidden=3, dropout=0.0)
    model, head = RNNClassifier(config), PretrainHead(config, "lm")
    ids, lengths = torch.randint(2, 20, (4, 7)), torch.tensor([7, 5, 3, 2])
    ids[1, 5:], ids[2, 3:], ids[3, 2:] = 0, 0, 0
    with_penalty = head.loss(model, ids, lengths)
    h = model.states(ids, lengths, layers=1)
    real = torch.arange(7)[None] < lengths[:, None]
    head.ACTIVATION_PENALTY = 0.0
    assert with_penalty.item() == pytest.approx(head.loss(model, ids, lengths).item() + 2.0 * h[real].pow(2).mean().item(),
                                                rel=1e-5)
