import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import stages.glove as glove
from nlpdag.catalog import embeddings as catalog
from nlpdag.embeddings.glove import GRAD_CLIP, Glove, adagrad_step, initial_state, weighting


def tiny_counts(vocab_size=12, seed=0):
    """A symmetric random co-occurrence matrix with a wide range of counts, as (i, j, x)."""
    rng = np.random.default_rng(seed)
    dense = rng.gamma(0.5, 30.0, size=(vocab_size, vocab_size)) * (rng.random((vocab_size, vocab_size)) < 0.6)
    dense = np.triu(dense) + np.triu(dense, 1).T
    i, j = np.nonzero(dense)
    return i.astype(np.int32), j.astype(np.int32), dense[i, j].astype(np.float32)


def test_weighting_below_and_above_x_max():
    x = torch.tensor([1.0, 50.0, 100.0, 250.0])
    got = weighting(x, x_max=100.0, alpha=0.75)
    assert got.tolist() == pytest.approx([0.01 ** 0.75, 0.5 ** 0.75, 1.0, 1.0])


def split(state):
    """(params, gradsq) views of a state matrix."""
    width = state.shape[1] // 2
    return state[:, :width], state[:, width:]


def test_step_matches_autograd_and_glove_c_rule():
    # Two pairs that share the word row 0: (0, 1) and (0, 0); V = 2, size 3.
    torch.manual_seed(0)
    size, eta = 3, 0.05
    state = initial_state(2, size, seed=1)
    params, gradsq = split(state)
    gradsq[:] = torch.rand_like(gradsq) + 1.0  # a used accumulator, not all ones
    rows = torch.tensor([[0, 2 + 1], [0, 2 + 0]])
    x = torch.tensor([3.0, 150.0])
    log_x, f_x = x.log(), weighting(x, 100.0, 0.75)

    # The loss written out by hand with separate tensors, differentiated by autograd.
    W, Wt = params[:2, :size].clone().requires_grad_(), params[2:, :size].clone().requires_grad_()
    b, bt = params[:2, size].clone().requires_grad_(), params[2:, size + 1].clone().requires_grad_()
    i, j = rows[:, 0], rows[:, 1] - 2
    diff = (W[i] * Wt[j]).sum(1) + b[i] + bt[j] - log_x
    per_pair = 0.5 * f_x * diff ** 2
    # Per-pair gradients (glove.c steps and accumulates per pair, not per summed gradient).
    grads = [torch.autograd.grad(per_pair[k], (W, Wt, b, bt), retain_graph=True) for k in range(2)]

    before_p, before_g = params.clone(), gradsq.clone()
    loss = adagrad_step(state, size, rows[:, 0], rows[:, 1], log_x, f_x, eta)
    assert loss.item() == pytest.approx(per_pair.sum().item(), rel=1e-6)

    for name, sl_w, sl_b, k in (("word", slice(0, 2), (slice(0, 2), size), 0),
                                ("context", slice(2, 4), (slice(2, 4), size + 1), 1)):
        g_vec = sum(g[k] for g in grads)  # (2, size)
        g_sq = sum((eta * g[k]) ** 2 for g in grads)
        want_vec = before_p[sl_w, :size] - eta * g_vec / before_g[sl_w, :size].sqrt()
        torch.testing.assert_close(params[sl_w, :size], want_vec, msg=name)
        torch.testing.assert_close(gradsq[sl_w, :size], before_g[sl_w, :size] + g_sq, msg=name)
        # Biases: unscaled by eta, as in glove.c.
        g_b = sum(g[2 + k] for g in grads)
        torch.testing.assert_close(params[sl_b], before_p[sl_b] - g_b / before_g[sl_b].sqrt(), msg=name)
        torch.testing.assert_close(gradsq[sl_b], before_g[sl_b] + sum(g[2 + k] ** 2 for g in grads), msg=name)
    # The constant 1 columns and the zero padding never move, nor do their accumulators.
    assert torch.all(params[:2, size + 1] == 1) and torch.all(params[2:, size] == 1)
    assert params.shape[1] == 8 and torch.all(params[:, size + 2:] == 0)
    assert torch.equal(gradsq[:2, size + 1], before_g[:2, size + 1])


def test_hand_computed_single_pair():
    # size 1: w = 0.5, w~ = -0.25, b = 0.1, b~ = 0.2, x = 1 (log 0), f = 1, eta = 0.1.
    state = torch.tensor([[0.5, 0.1, 1.0, 1.0, 1.0, 1.0],
                          [-0.25, 1.0, 0.2, 4.0, 1.0, 1.0]])  # unpadded rows: W = 3
    diff = 0.5 * -0.25 + 0.1 + 0.2  # 0.175
    loss = adagrad_step(state, 1, torch.tensor([0]), torch.tensor([1]), torch.zeros(1), torch.ones(1), 0.1)
    assert loss.item() == pytest.approx(0.5 * diff ** 2)
    # w: g = diff * w~ = -0.04375, scaled by eta, over sqrt(1); w~: g = diff * w = 0.0875, over sqrt(4).
    assert state[0, 0].item() == pytest.approx(0.5 + 0.1 * 0.04375)
    assert state[1, 0].item() == pytest.approx(-0.25 - 0.1 * 0.0875 / 2)
    assert state[0, 1].item() == pytest.approx(0.1 - diff)
    assert state[1, 2].item() == pytest.approx(0.2 - diff)
    assert state[0, 3].item() == pytest.approx(1 + (0.1 * 0.04375) ** 2)
    assert state[1, 3].item() == pytest.approx(4 + (0.1 * 0.0875) ** 2)
    assert state[0, 4].item() == pytest.approx(1 + diff ** 2)
    assert state[1, 5].item() == pytest.approx(1 + diff ** 2)


def test_gradient_is_clipped_like_glove_c():
    state = torch.tensor([[1000.0, 0.0, 1.0, 1.0, 1.0, 1.0], [1000.0, 1.0, 0.0, 1.0, 1.0, 1.0]])
    adagrad_step(state, 1, torch.tensor([0]), torch.tensor([1]), torch.zeros(1), torch.ones(1), 0.05)
    assert state[0, 0].item() == pytest.approx(1000.0 - 0.05 * GRAD_CLIP)
    assert state[0, 3].item() == pytest.approx(1 + (0.05 * GRAD_CLIP) ** 2)


def test_loss_decreases_and_shapes():
    i, j, x = tiny_counts()
    model = Glove(size=5, epochs=30, batch_size=16, learning_rate=0.05, x_max=10.0, device="cpu").fit(i, j, x)
    assert len(model.loss_) == 30
    assert model.loss_[-1] < 0.5 * model.loss_[0]
    assert all(b <= a * 1.05 for a, b in zip(model.loss_, model.loss_[1:]))
    assert model.vectors_.shape == (12, 5) and model.W_.shape == (12, 5)
    np.testing.assert_array_equal(model.vectors_, model.W_ + model.W_tilde_)
    assert model.bias_.shape == model.bias_tilde_.shape == (12,)


def test_deterministic_for_a_seed():
    i, j, x = tiny_counts(seed=3)
    fit = lambda seed: Glove(size=4, epochs=3, batch_size=8, device="cpu", seed=seed).fit(i, j, x)
    a, b, c = fit(7), fit(7), fit(8)
    np.testing.assert_array_equal(a.vectors_, b.vectors_)
    assert a.loss_ == b.loss_
    assert not np.array_equal(a.vectors_, c.vectors_)


def test_two_threads_give_the_one_thread_result():
    i, j, x = tiny_counts(vocab_size=40, seed=5)
    fit = lambda threads: Glove(size=6, epochs=3, batch_size=32, device="cpu", threads=threads).fit(i, j, x)
    one, two = fit(1), fit(2)
    np.testing.assert_array_equal(one.vectors_, two.vectors_)
    np.testing.assert_array_equal(one.state_.numpy(), two.state_.numpy())
    assert one.loss_ == two.loss_


def test_callback_can_stop_training():
    i, j, x = tiny_counts()
    seen = []
    model = Glove(size=3, epochs=10, device="cpu",
                  callbacks=[lambda epoch, loss, m: seen.append((epoch, loss, m)) or epoch == 4]).fit(i, j, x)
    assert [e for e, _, _ in seen] == [1, 2, 3, 4] and len(model.loss_) == 4
    assert seen[0][2] is model and seen[0][1] == model.loss_[0]


def test_initialisation_like_glove_c():
    params, gradsq = split(initial_state(50, 10, seed=0))
    assert params.shape == (100, 16) and torch.all(gradsq == 1)  # 10 + 2 padded to 16
    free = torch.cat([params[:50, :11], params[50:, :10], params[50:, 11:12]], dim=1)
    assert free.abs().max() <= 0.05 and free.std() > 0.02
    assert torch.all(params[:50, 11] == 1) and torch.all(params[50:, 10] == 1) and torch.all(params[:, 12:] == 0)


# ---- the stage: main() in a scratch repository -------------------------------------------------

def write_inputs(root, i, j, x, tokens, size=4, device="cpu"):
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(f"seed: 0\nglove:\n  size: {size}\n  epochs: 2\n  batch_size: 64\n"
                                      f"  device: {device}\n")
    pq.write_table(pa.table({"i": pa.array(i, pa.int32()), "j": pa.array(j, pa.int32()),
                             "x": pa.array(x, pa.float32())}), root / "data/cooccur.parquet")
    pq.write_table(pa.table({"token": tokens}), root / "data/vocab.parquet")


def run_main(capsys):
    with pytest.raises(SystemExit) as exc:
        glove.main()
    return exc.value.code, capsys.readouterr().err


def test_main_writes_outputs(tmp_path, monkeypatch):
    i, j, x = tiny_counts()
    write_inputs(tmp_path, i, j, x, [f"w{k}" for k in range(12)])
    monkeypatch.chdir(tmp_path)
    glove.main()
    lines = (tmp_path / catalog.GLOVE_LOSS).read_text().splitlines()
    assert lines[0] == "epoch,loss" and len(lines) == 3
    assert (tmp_path / "data/embeddings/glove.txt").read_text().startswith("12 4\n")
    assert pq.read_table(tmp_path / "data/embeddings/glove.parquet").num_rows == 12
    assert '"device": "cpu"' in (tmp_path / "reports/train/glove.json").read_text()


def test_main_empty_cooccurrences(tmp_path, monkeypatch, capsys):
    empty = np.array([], dtype=np.int32)
    write_inputs(tmp_path, empty, empty, empty.astype(np.float32), [f"w{k}" for k in range(12)])
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys)
    assert code == 2 and "no entries" in err and err.count("\n") == 1


def test_main_vocabulary_smaller_than_size(tmp_path, monkeypatch, capsys):
    i, j, x = tiny_counts()
    write_inputs(tmp_path, i, j, x, [f"w{k}" for k in range(12)], size=20)
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys)
    assert code == 2 and "glove.size=20" in err and err.count("\n") == 1


def test_main_cuda_requested_without_cuda(tmp_path, monkeypatch, capsys):
    i, j, x = tiny_counts()
    write_inputs(tmp_path, i, j, x, [f"w{k}" for k in range(12)], device="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys)
    assert code == 2 and "glove.device=cuda but CUDA is not available" in err and err.count("\n") == 1
