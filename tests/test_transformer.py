"""The Transformer encoder: padding never changes a document's output, attention weights, training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nlpdag.models.checkpoints import load_checkpoint, save_checkpoint
from nlpdag.models.sequences import fit_classifier, predict
from nlpdag.models.transformer import TransformerClassifier, TransformerConfig, sinusoid
from nlpdag.training.trainer import TrainerConfig


def model_for(pooling: str = "cls", seed: int = 0, **kw) -> TransformerClassifier:
    torch.manual_seed(seed)
    return TransformerClassifier(TransformerConfig(30, 3, embed_dim=8, layers=2, d_model=16, heads=4, ff=32,
                                                   pooling=pooling, dropout=0.0, **kw)).eval()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_padding_and_batch_company_never_change_a_document(pooling):
    model = model_for(pooling)
    short, long_ = torch.tensor([[5, 6, 7]]), torch.tensor([[9, 3, 4, 8, 2, 11, 12]])
    with torch.no_grad():
        alone, w_alone = model.encode(short, torch.tensor([3]))
        padded = torch.cat([short, torch.zeros(1, 4, dtype=torch.int64)], dim=1)
        together, w_together = model.encode(torch.cat([padded, long_]), torch.tensor([3, 7]))
        # the pads' ids do not matter either: any token behind the length is masked
        junk = torch.cat([short, torch.tensor([[13, 14, 15, 16]])], dim=1)
        masked, _ = model.encode(junk, torch.tensor([3]))
    torch.testing.assert_close(together[0], alone[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(masked[0], alone[0], rtol=1e-5, atol=1e-6)
    assert w_together.shape == (2, 7)
    torch.testing.assert_close(w_together[0, :3], w_alone[0], rtol=1e-5, atol=1e-6)
    assert (w_together[0, 3:] == 0).all()  # no weight on a pad


def test_attention_path_equals_fused_path():
    model = model_for()
    ids, lengths = torch.tensor([[5, 6, 7, 0], [1, 2, 3, 4]]), torch.tensor([3, 4])
    with torch.no_grad():
        explicit, weights = model.encode(ids, lengths, with_weights=True)
        fused, none = model.encode(ids, lengths, with_weights=False)
    assert none is None
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-5)
    assert ((weights.sum(1) > 0) & (weights.sum(1) <= 1 + 1e-6)).all()  # the class token's share on the tokens


def test_sinusoid_positions():
    enc = sinusoid(5, 6)
    assert enc.shape == (5, 6)
    torch.testing.assert_close(enc[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    assert not torch.allclose(enc[1], enc[2])


def test_config_errors():
    with pytest.raises(ValueError, match="multiple of heads"):
        TransformerConfig(30, 2, d_model=10, heads=4)
    with pytest.raises(ValueError, match="pooling"):
        TransformerConfig(30, 2, pooling="max")


def test_transformer_learns_order_and_round_trips(tmp_path):
    """The label says whether word 2 comes before word 3: bag-of-words features cannot tell, positions can."""
    rng = np.random.default_rng(0)
    seqs, y = [], []
    for k in range(300):
        body = list(rng.integers(4, 30, rng.integers(3, 8)))
        a, b = sorted(rng.choice(len(body) + 1, 2, replace=False))
        first, second = (2, 3) if k % 2 else (3, 2)
        body.insert(a, first)
        body.insert(b + 1, second)
        seqs.append(np.array(body, dtype=np.int64))
        y.append(k % 2)
    y = np.array(y)
    torch.manual_seed(0)
    model = TransformerClassifier(TransformerConfig(30, 2, embed_dim=16, layers=2, d_model=32, heads=4, ff=64, dropout=0.0))
    fit_classifier(model, TrainerConfig(epochs=40, batch_size=32, learning_rate=3e-3, seed=0), seqs[:240], y[:240])
    out = predict(model, seqs[240:], with_states=True, with_attention=True)
    assert (out["proba"].argmax(1) == y[240:]).mean() >= 0.85
    assert out["states"].shape == (60, 32) and [len(w) for w in out["attention"]] == [len(s) for s in seqs[240:]]
    save_checkpoint(tmp_path / "t.pt", model, None, {})
    loaded, _ = load_checkpoint(tmp_path / "t.pt")
    np.testing.assert_allclose(predict(loaded, seqs[240:])["proba"], out["proba"], rtol=1e-5, atol=1e-6)
