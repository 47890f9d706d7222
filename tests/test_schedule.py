"""The training recipe: the learning-rate schedule, parameter groups with their own rate, frozen first
epochs (gradual unfreezing), and how classify maps its params onto them."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from nlpdag.config.base import validate
from nlpdag.config.classify import ClassifyParams
from nlpdag.errors import StageError
from nlpdag.models.classifier import Recipe, pretrained_groups
from nlpdag.models.rnn import RNNClassifier, RNNConfig
from nlpdag.models.sequences import Batches, fit_classifier
from nlpdag.training.schedule import ParamGroup, lr_factor, param_groups
from nlpdag.training.trainer import Trainer, TrainerConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def test_warmup_rises_linearly_then_cosine_falls_to_zero():
    total = 100
    f = [lr_factor(s, total, "cosine", 0.1) for s in range(total)]
    assert f[:10] == pytest.approx([(s + 1) / 11 for s in range(10)])  # warm-up: 10 steps, never 0
    assert f[10] == pytest.approx(1.0) and all(a >= b for a, b in zip(f[10:], f[11:]))
    assert f[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert 0 < f[-1] < 0.001


def test_linear_decay_and_constant():
    assert [lr_factor(s, 4, "linear") for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert {lr_factor(s, 10, "constant", 0.2) for s in range(2, 10)} == {1.0}
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(0, 10, "step")


def test_weight_decay_skips_biases_and_the_embedding_and_groups_take_their_scale():
    model = RNNClassifier(RNNConfig(vocab_size=20, n_classes=2, embed_dim=4, hidden=3))
    groups = param_groups(model, [ParamGroup("embedding.", 0.1, 1)], weight_decay=0.01)
    by_id = {id(p): g for g in groups for p in g["params"]}
    emb = by_id[id(model.embedding.weight)]
    assert (emb["lr_scale"], emb["frozen_epochs"], emb["weight_decay"]) == (0.1, 1, 0.0)
    assert by_id[id(model.out.weight)]["weight_decay"] == 0.01 and by_id[id(model.out.bias)]["weight_decay"] == 0.0
    assert by_id[id(model.out.weight)]["lr_scale"] == 1.0
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_the_trainer_sets_the_scheduled_rate_on_every_step():
    class Line(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def batch_loss(self, batch):
            loss = ((self.w - 1.0) ** 2).sum()
            return loss, {"loss": loss.detach(), "n": 1}

    class Steps:
        def __len__(self):
            return 5

        def epoch_batches(self, epoch, device, shard=True):
            for _ in range(5):
                yield None, 1.0

    rates = []

    class Spy:
        def on_batch_end(self, trainer):
            rates.append(trainer.optimizer.param_groups[0]["lr"])

    cfg = TrainerConfig(epochs=2, learning_rate=0.1, schedule="cosine", warmup=0.2)
    Trainer(Line(), cfg, [Spy()]).fit(Steps())
    assert rates == pytest.approx([0.1 * lr_factor(s, 10, "cosine", 0.2) for s in range(10)])


def tiny_task(seed=0, n=48):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(2, 30, size=rng.integers(3, 9)) for _ in range(n)]
    y = np.array([int((s >= 16).mean() > 0.5) for s in seqs])
    return seqs, y


def test_a_frozen_embedding_keeps_its_exact_values_then_learns_at_its_scale():
    """Epoch 1: the embedding's rate is 0 (weights bit-identical, even with weight decay) while the
    rest learns; epoch 2: it moves."""
    seqs, y = tiny_task()
    torch.manual_seed(0)
    init = torch.randn(30, 6)
    model = RNNClassifier(RNNConfig(vocab_size=30, n_classes=2, embed_dim=6, hidden=5, dropout=0.0), init)
    start = model.embedding.weight.detach().clone()
    snapshots = []

    class Snap:
        def on_epoch_end(self, trainer):
            snapshots.append((trainer.model.embedding.weight.detach().clone(), trainer.model.out.weight.detach().clone()))

    cfg = TrainerConfig(epochs=2, batch_size=8, learning_rate=0.01, weight_decay=0.1,
                        groups=(ParamGroup("embedding.", 0.5, frozen_epochs=1),))
    Trainer(model, cfg, [Snap()]).fit(Batches(seqs, y, 8, shuffle=True))
    (emb1, out1), (emb2, out2) = snapshots
    assert torch.equal(emb1, start)
    assert not torch.equal(out1, out2) and not torch.equal(emb2, emb1)


def recipe(**params) -> Recipe:
    """The estimator's recipe from classify params, as the neural@<key> stage makes it."""
    return Recipe(**ClassifyParams(**params).recipe())


def test_classify_maps_its_params_onto_groups():
    bi = RNNConfig(vocab_size=10, n_classes=2, bidirectional=True)
    p = recipe(pretrained_lr=0.1, frozen_epochs=1, epochs=3)
    assert ClassifyParams().frozen_epochs == 1 and ClassifyParams().schedule == "cosine"  # the shipped recipe
    assert Recipe().frozen_epochs == 1 and Recipe().schedule == "cosine"                   # the estimator's default
    assert pretrained_groups(p, True, "none", bi) == (ParamGroup("embedding.", 0.1, 1),)
    assert pretrained_groups(p, False, "none", bi) == ()  # a random embedding learns at the full rate
    lm = recipe(pretrained_lr=0.1, pretraining="lm", epochs=3)
    assert [g.prefix for g in pretrained_groups(lm, False, "lm", bi)] == ["embedding.", "rnns.0."]
    assert [g.prefix for g in pretrained_groups(lm, False, "lm", RNNConfig(vocab_size=10, n_classes=2, bidirectional=False))] == \
        ["embedding.", "rnns."]
    assert [g.prefix for g in pretrained_groups(lm, False, "autoencoder", bi)] == ["embedding.", "rnns.", "att_"]
    assert pretrained_groups(recipe(frozen_epochs=0), True, "none", bi) == ()  # 1.0x, never frozen: one group


def test_frozen_epochs_leave_an_epoch_to_learn_and_bad_values_are_one_line():
    bi = RNNConfig(vocab_size=10, n_classes=2)
    assert pretrained_groups(recipe(epochs=1, frozen_epochs=1), True, "none", bi) == (ParamGroup("embedding.", 1.0, 0),)
    assert pretrained_groups(recipe(epochs=3, frozen_epochs=5), True, "none", bi)[0].frozen_epochs == 2
    with pytest.raises(StageError, match="frozen_epochs"):
        validate(ClassifyParams, {"frozen_epochs": -1}, "params.yaml: classify")
    with pytest.raises(StageError, match="schedule"):
        validate(ClassifyParams, {"schedule": "step"}, "params.yaml: classify")


def test_the_estimator_hands_its_groups_to_the_trainer(monkeypatch):
    """NeuralClassifier.fit builds the Trainer's groups from its recipe: the embedding of a method's
    vectors at pretrained_lr, frozen for frozen_epochs; a Transformer never pre-trains (pretraining
    applies to the recurrent models only)."""
    import nlpdag.models.sequences as sequences
    from nlpdag.models.classifier import NeuralClassifier

    seen = {}
    real = sequences.fit_classifier

    def spy(model, config, *args, **kwargs):
        seen[type(model).__name__] = config.groups
        return real(model, config, *args, **kwargs)

    monkeypatch.setattr(sequences, "fit_classifier", spy)
    docs = [["good", "film"], ["bad", "film"]] * 8
    y = np.array([1, 0] * 8)
    vectors = (["good", "bad", "film"], np.eye(3, 4, dtype=np.float32))
    settings = dict(vectors=vectors, verbose=False, log=lambda *_: None, epochs=2, hidden=4, batch_size=8,
                    pretrained_lr=0.25, frozen_epochs=1, device="cpu")
    NeuralClassifier("lstm-max@word2vec_skipgram", **settings).fit(docs, y, docs[:4], y[:4])
    NeuralClassifier("transformer-1x4@word2vec_skipgram", transformer_heads=2, pretraining="lm", transformer_ff=8,
                     **settings).fit(docs, y, docs[:4], y[:4])
    assert seen == {"RNNClassifier": (ParamGroup("embedding.", 0.25, 1),),
                    "TransformerClassifier": (ParamGroup("embedding.", 0.25, 1),)}


def test_fit_classifier_with_the_recipe_learns_and_resumes_to_the_same_weights(tmp_path):
    seqs, y = tiny_task(n=64)
    cfg = TrainerConfig(epochs=3, batch_size=8, learning_rate=0.02, schedule="cosine", warmup=0.1,
                        groups=(ParamGroup("embedding.", 0.3, 1),), patience=5)

    def model():
        torch.manual_seed(1)
        return RNNClassifier(RNNConfig(vocab_size=30, n_classes=2, embed_dim=6, hidden=5, dropout=0.1), torch.randn(30, 6))

    whole = fit_classifier(model(), cfg, seqs[:48], y[:48], seqs[48:], y[48:])
    ckpt = tmp_path / "c.pt"

    class Interrupt:
        def on_epoch_end(self, trainer):  # after the checkpoint of epoch 2 is written
            if trainer.epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_classifier(model(), replace(cfg, checkpoint=str(ckpt)), seqs[:48], y[:48], seqs[48:], y[48:], [Interrupt()])
    resumed = fit_classifier(model(), replace(cfg, checkpoint=str(ckpt)), seqs[:48], y[:48], seqs[48:], y[48:])
    assert [h["train_loss"] for h in resumed.history_] == pytest.approx([h["train_loss"] for h in whole.history_])
    for k, v in whole.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert whole.history_[-1]["train_loss"] < whole.history_[0]["train_loss"]
