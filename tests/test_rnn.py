"""The recurrent classifiers (nlpdag/models/rnn.py) and their data, trainer and pre-training (nlpdag/models/sequences.py),
on tiny synthetic data."""
import itertools

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlpdag.errors import StageError
from nlpdag.models.rnn import PAD, UNK, RNNClassifier, RNNConfig, TokenOutput, flip_index
from nlpdag.models.pretraining import pretrain_encoder
from nlpdag.models.checkpoints import load_checkpoint, save_checkpoint
from nlpdag.models.sequences import Batches, encode_docs, evaluate, fit_classifier, predict, validation_split, vocab_index
from nlpdag.training.trainer import TrainerConfig

pytestmark = pytest.mark.usefixtures("one_thread")

CELLS, POOLINGS = ("rnn", "lstm", "gru"), ("last", "max", "mean", "attention")
V = 30


def model_for(seed=0, **kw) -> RNNClassifier:
    torch.manual_seed(seed)
    settings = dict(vocab_size=V, n_classes=3, embed_dim=8, hidden=6, dropout=0.0)
    return RNNClassifier(RNNConfig(**{**settings, **kw})).eval()


def toy(n: int, seed: int = 0, min_len: int = 3, max_len: int = 20) -> tuple[list[np.ndarray], np.ndarray]:
    """Three classes; a document of class c holds the word 2 + c once among noise words 5..29."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        c, length = i % 3, int(rng.integers(min_len, max_len))
        s = rng.integers(5, V, size=length)
        s[rng.integers(0, length)] = 2 + c
        seqs.append(s.astype(np.int64))
        labels.append(c)
    return seqs, np.array(labels)


def pad(seqs: list[np.ndarray], T: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [len(s) for s in seqs]
    ids = torch.zeros(len(seqs), T or max(lengths), dtype=torch.long)
    for k, s in enumerate(seqs):
        ids[k, :len(s)] = torch.from_numpy(s)
    return ids, torch.tensor(lengths)


def small_config(**kw) -> TrainerConfig:
    return TrainerConfig(**{**dict(epochs=3, batch_size=16, device="cpu", learning_rate=1e-2, clip=1.0, patience=2), **kw})


# ------------------------------------------------------------------------------------------ model

@pytest.mark.parametrize("cell,bidirectional,pooling", list(itertools.product(CELLS, (False, True), POOLINGS)))
def test_shapes(cell, bidirectional, pooling):
    model = model_for(cell=cell, bidirectional=bidirectional, pooling=pooling, layers=2)
    ids, lengths = pad(toy(4)[0])
    pooled, weights = model.encode(ids, lengths)
    assert pooled.shape == (4, 6 * (2 if bidirectional else 1)) == (4, model.config.out_dim)
    assert (weights is None) == (pooling != "attention")
    if weights is not None:
        assert weights.shape == ids.shape
    logits = model(ids, lengths)
    assert logits.shape == (4, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("cell,bidirectional,pooling,layers",
                         [(c, b, p, 1) for c in CELLS for b in (False, True) for p in POOLINGS]
                         + [("lstm", True, p, 2) for p in POOLINGS])
def test_padding_never_changes_the_output(cell, bidirectional, pooling, layers, packed):
    model = model_for(cell=cell, bidirectional=bidirectional, pooling=pooling, layers=layers, packed=packed)
    seqs = toy(5, seed=1)[0]
    with torch.no_grad():
        batch = model(*pad(seqs, T=30))  # every document padded, to beyond the longest
        for k, s in enumerate(seqs):
            alone = model(*pad([s]))
            assert torch.allclose(alone[0], batch[k], atol=1e-5), (k, alone, batch[k])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_padded_and_packed_agree(cell, pooling):
    padded = model_for(cell=cell, pooling=pooling, layers=2, packed=False)
    packed = model_for(cell=cell, pooling=pooling, layers=2, packed=True)
    ids, lengths = pad(toy(6, seed=2)[0])
    with torch.no_grad():
        assert torch.allclose(padded(ids, lengths), packed(ids, lengths), atol=1e-5)


def test_bidirectional_states_match_pytorchs_packed_bidirectional_lstm():
    """Our per-direction modules with the per-sequence flip = PyTorch's packed bidirectional LSTM."""
    model = model_for(cell="lstm", pooling="max", packed=False)
    ref = nn.LSTM(8, 6, batch_first=True, bidirectional=True)
    fwd, bwd = model.rnns[0]
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(ref, name).copy_(getattr(fwd, name))
            getattr(ref, name + "_reverse").copy_(getattr(bwd, name))
        ids, lengths = pad(toy(5, seed=3)[0])
        ours = model.states(ids, lengths)
        x = model.embedding(ids)
        theirs = pad_packed_sequence(ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))[0],
                                     batch_first=True)[0]
        mask = torch.arange(ids.shape[1])[None] < lengths[:, None]
        assert torch.allclose(ours[mask], theirs[mask], atol=1e-6)


def test_last_pooling_is_the_forward_final_state_and_the_backward_first_state():
    model = model_for(cell="gru", pooling="last")
    seqs = toy(4, seed=4)[0]
    fwd, bwd = model.rnns[0]
    with torch.no_grad():
        pooled = model.encode(*pad(seqs, T=25))[0]
        for k, s in enumerate(seqs):
            x = model.embedding(torch.from_numpy(s))[None]  # (1, L, E)
            assert torch.allclose(pooled[k, :6], fwd(x)[1][0, 0], atol=1e-6)
            assert torch.allclose(pooled[k, 6:], bwd(x.flip(1))[1][0, 0], atol=1e-6)


def test_flip_index_reverses_within_each_length():
    index = flip_index(torch.tensor([3, 1, 4]), 4)
    assert index.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_attention_weights_sum_to_one_and_are_zero_on_pads(bidirectional):
    model = model_for(pooling="attention", bidirectional=bidirectional)
    ids, lengths = pad(toy(6, seed=5)[0], T=25)
    with torch.no_grad():
        weights = model.encode(ids, lengths)[1]
    mask = torch.arange(25)[None] < lengths[:, None]
    assert torch.allclose(weights.sum(1), torch.ones(6), atol=1e-6)
    assert (weights[~mask] == 0).all() and (weights[mask] > 0).all()


def test_pretrained_embeddings_and_freezing():
    vectors = torch.randn(V, 8)
    torch.manual_seed(0)
    model = RNNClassifier(RNNConfig(V, 3, embed_dim=8, hidden=6, freeze_embeddings=True, pooling="max"), vectors)
    assert torch.equal(model.embedding.weight[2:], vectors[2:]) and (model.embedding.weight[PAD] == 0).all()
    seqs, y = toy(60)
    fit_classifier(model, small_config(epochs=1), seqs, y)
    assert torch.equal(model.embedding.weight[2:], vectors[2:])
    with pytest.raises(ValueError, match="embeddings have shape"):
        RNNClassifier(RNNConfig(V, 3, embed_dim=8), torch.zeros(V, 9))
    with pytest.raises(ValueError, match="pooling"):
        RNNConfig(V, 3, pooling="sum")


# ------------------------------------------------------------------------------------------- data

def test_encode_docs_truncation_and_unknowns():
    index = vocab_index([f"w{k}" for k in range(20)])  # w0 -> 2, w1 -> 3, ...
    doc = [f"w{k}" for k in range(10)]
    assert encode_docs([doc], index, 4, "head")[0].tolist() == [2, 3, 4, 5]
    assert encode_docs([doc], index, 4, "tail")[0].tolist() == [8, 9, 10, 11]
    # head_tail: the first max_len // 4 = 2 tokens and the last 6
    assert encode_docs([doc], index, 8, "head_tail")[0].tolist() == [2, 3, 6, 7, 8, 9, 10, 11]
    assert encode_docs([doc], index, 3, "head_tail")[0].tolist() == [9, 10, 11]  # 3 // 4 = 0 from the head
    assert encode_docs([doc[:3]], index, 8, "head_tail")[0].tolist() == [2, 3, 4]  # short: untouched
    out = encode_docs([["w0", "nope"], []], index, 5)
    assert out[0].tolist() == [2, UNK] and out[1].tolist() == [UNK] and out[0].dtype == np.int64
    with pytest.raises(ValueError, match="max_len"):
        encode_docs([doc], index, 0)
    with pytest.raises(ValueError, match="truncation"):
        encode_docs([doc], index, 4, "middle")


def test_batches_bucket_shuffle_and_cover_every_document():
    seqs, y = toy(203, seed=6, min_len=1, max_len=60)
    batches = Batches(seqs, y, batch_size=8, shuffle=True, seed=3, bucket=5)
    batches.set_epoch(1)
    first = list(batches)
    seen = np.concatenate([index.numpy() for *_, index in first])
    assert sorted(seen.tolist()) == list(range(203)) and len(first) == len(batches) == 26
    for ids, lengths, labels, index in first:
        assert ids.shape == (len(index), lengths.max()) and ids.dtype == torch.int64
        assert lengths.tolist() == [len(seqs[i]) for i in index] and labels.tolist() == y[index.numpy()].tolist()
        for row, i in zip(ids, index):
            assert row[:len(seqs[i])].tolist() == seqs[i].tolist() and (row[len(seqs[i]):] == PAD).all()
    # bucketing: padding far below that of random batches
    pads = sum(int((ids == PAD).sum()) for ids, *_ in first)
    assert pads < 0.2 * sum(len(s) for s in seqs)
    again = [index.tolist() for *_, index in batches]
    batches.set_epoch(2)
    assert again == [index.tolist() for *_, index in first] != [index.tolist() for *_, index in batches]
    plain = Batches(seqs, None, batch_size=50)
    assert np.concatenate([i.numpy() for *_, i in plain]).tolist() == list(range(203))
    assert all(labels is None for _, _, labels, _ in plain)


def test_validation_split_is_stratified_and_disjoint():
    y = np.array([0] * 50 + [1] * 30 + [2] * 20)
    train, val = validation_split(y, 0.1, seed=1)
    assert np.bincount(y[val]).tolist() == [5, 3, 2]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))


# ---------------------------------------------------------------------------------------- training

def test_learns_a_three_class_toy_problem():
    seqs, y = toy(600)
    test_seqs, test_y = toy(150, seed=9)
    model = model_for(pooling="max", dropout=0.1)
    trainer = fit_classifier(model, small_config(epochs=6, batch_size=32), seqs, y, *toy(90, seed=8))
    accuracy = evaluate(model, test_seqs, test_y)[1]
    assert accuracy > 0.9, trainer.history_
    assert [h["epoch"] for h in trainer.history_] == list(range(1, len(trainer.history_) + 1))
    assert set(trainer.history_[0]) == {"epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy",
                                        "seconds", "tokens_per_second"}
    assert trainer.tokens_per_second_ > 0
    proba = predict(model, test_seqs)["proba"]
    assert proba.shape == (150, 3) and proba.dtype == np.float32 and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert (proba.argmax(1) == test_y).mean() == pytest.approx(accuracy)


def test_clipping_records_norms_and_bounds_the_step():
    seqs, y = toy(64)
    after = []

    class PostClip:
        def on_batch_end(self, trainer):
            grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
            after.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    trainer = fit_classifier(model_for(), small_config(epochs=2, clip=0.05), seqs, y, callbacks=[PostClip()])
    assert len(trainer.grad_norms_) == len(after) == 2 * 4
    assert all(n > 0.05 for n in trainer.grad_norms_)  # the threshold is small enough to bite
    assert all(a <= 0.05 * (1 + 1e-4) for a in after)
    unclipped = fit_classifier(model_for(), small_config(epochs=1, clip=0.0), seqs, y)
    assert len(unclipped.grad_norms_) == 4 and unclipped.grad_norms_[0] == pytest.approx(trainer.grad_norms_[0])


def test_early_stopping_stops_and_restores_the_best_weights():
    seqs, y = toy(300)
    val_seqs, val_y = toy(60, seed=1)
    snapshots = {}

    class Snapshot:
        def on_epoch_end(self, trainer):
            snapshots[trainer.epoch] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    # Validation labels shifted by one: the better the model learns, the worse the validation loss.
    trainer = fit_classifier(model_for(pooling="max"), small_config(epochs=10, patience=2), seqs, y, val_seqs,
                             (val_y + 1) % 3, callbacks=[Snapshot()])
    best = trainer.best_epoch_
    assert len(trainer.history_) == best + 2 < 10
    losses = [h["val_loss"] for h in trainer.history_]
    assert losses[best - 1] == min(losses)
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], snapshots[best][k]) for k in state)
    assert evaluate(trainer.model, val_seqs, (val_y + 1) % 3)[0] == pytest.approx(losses[best - 1], abs=1e-6)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_is_deterministic():
    seqs, y = toy(120)
    runs = [weights(fit_classifier(model_for(dropout=0.3), small_config(epochs=2), seqs, y, *toy(30, 1)).model)
            for _ in range(2)]
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    seqs, y = toy(120)
    val = toy(30, seed=1)
    config = small_config(epochs=4, patience=10)
    full = fit_classifier(model_for(dropout=0.3), config, seqs, y, *val)

    class Crash:
        def on_epoch_end(self, trainer):
            if trainer.epoch == 2:
                raise KeyboardInterrupt

    path = tmp_path / "run.pt"
    resumable = small_config(epochs=4, patience=10, checkpoint=str(path))
    with pytest.raises(KeyboardInterrupt):
        fit_classifier(model_for(dropout=0.3), resumable, seqs, y, *val, callbacks=[Crash()])
    assert path.exists() and not list(tmp_path.glob(".*tmp"))
    epochs_run = []

    class Epochs:
        def on_epoch_end(self, trainer):
            epochs_run.append(trainer.epoch)

    resumed = fit_classifier(model_for(seed=123, dropout=0.3), resumable, seqs, y, *val, callbacks=[Epochs()])
    assert epochs_run == [3, 4]
    assert [h["val_loss"] for h in resumed.history_] == [h["val_loss"] for h in full.history_]
    assert resumed.grad_norms_ == full.grad_norms_ and resumed.best_epoch_ == full.best_epoch_
    a, b = weights(full.model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # A finished run's checkpoint loads for prediction, and a rerun trains nothing.
    model, extra = load_checkpoint(path)
    assert np.array_equal(predict(model, val[0])["proba"], predict(full.model, val[0])["proba"])
    epochs_run.clear()
    fit_classifier(model_for(seed=5, dropout=0.3), resumable, seqs, y, *val, callbacks=[Epochs()])
    assert epochs_run == []


def test_predict_keeps_the_input_order_and_checkpoints_round_trip(tmp_path):
    model = model_for(pooling="attention")
    seqs = toy(37, seed=2, min_len=1, max_len=40)[0]
    out = predict(model, seqs, batch_size=8, with_states=True, with_attention=True)
    with torch.no_grad():
        for k in (0, 5, 36):
            ids, lengths = pad([seqs[k]])
            pooled, weights = model.encode(ids, lengths)
            assert np.allclose(out["proba"][k], torch.softmax(model.out(pooled), 1)[0].numpy(), atol=1e-5)
            assert np.allclose(out["states"][k], pooled[0].numpy(), atol=1e-5)
            assert np.allclose(out["attention"][k], weights[0].numpy(), atol=1e-5)
    assert out["states"].shape == (37, 12) and [len(a) for a in out["attention"]] == [len(s) for s in seqs]
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, small_config(), {"labels": ["a", "b", "c"]})
    loaded, extra = load_checkpoint(path)
    assert extra == {"labels": ["a", "b", "c"]} and loaded.config == model.config
    assert np.array_equal(predict(loaded, seqs)["proba"], predict(model, seqs)["proba"])
    with pytest.raises(ValueError, match="a model that attends"):
        predict(model_for(pooling="max"), seqs, with_attention=True)
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(StageError, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(StageError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------------- pre-training

def patterned(n: int, seed: int = 0) -> list[np.ndarray]:
    """Predictable sequences (counting up from a random start): a language model can learn them."""
    rng = np.random.default_rng(seed)
    return [(2 + (rng.integers(0, V - 2) + np.arange(rng.integers(4, 16))) % (V - 2)).astype(np.int64)
            for _ in range(n)]


@pytest.mark.parametrize("kind,bidirectional", [("lm", False), ("lm", True), ("autoencoder", True)])
def test_pretraining_lowers_its_loss_and_changes_the_encoder(kind, bidirectional):
    model = model_for(bidirectional=bidirectional, pooling="max", layers=2 if kind == "lm" else 1)
    before = weights(model)
    history = pretrain_encoder(model, patterned(200), kind, epochs=4,
                               config=small_config(batch_size=20, learning_rate=3e-2), max_len=10)
    assert len(history) == 4 and history[-1]["loss"] < 0.7 * history[0]["loss"]
    after = weights(model)
    assert not torch.equal(before["embedding.weight"], after["embedding.weight"])
    assert not torch.equal(before["rnns.0.0.weight_hh_l0"], after["rnns.0.0.weight_hh_l0"])
    if bidirectional:
        assert not torch.equal(before["rnns.0.1.weight_hh_l0"], after["rnns.0.1.weight_hh_l0"])
    assert torch.equal(before["out.weight"], after["out.weight"])  # the classifier's own layer is untouched


def test_large_vocabularies_use_an_adaptive_softmax():
    head = TokenOutput(6, 5000)
    assert head.adaptive is not None and head.adaptive.cutoffs == [2000, 5000]
    loss = head(torch.randn(7, 6), torch.randint(0, 5000, (7,)))
    assert loss.shape == () and torch.isfinite(loss)
    with pytest.raises(ValueError, match="pretrain"):
        pretrain_encoder(model_for(), patterned(5), "mlm", 1, small_config())
