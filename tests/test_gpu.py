"""The CUDA path of the classifiers (run where a GPU is present; skipped elsewhere): mixed precision,
packed sequences, the recipe's schedule, and the same predictions as the CPU up to float16 rounding."""
import numpy as np
import pytest
import torch

from nlpdag.models.rnn import RNNClassifier, RNNConfig
from nlpdag.models.sequences import fit_classifier, predict
from nlpdag.training.schedule import ParamGroup
from nlpdag.training.trainer import TrainerConfig

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def task(n=256, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(2, 60, size=rng.integers(5, 40)) for _ in range(n)]
    return seqs, np.array([int((s >= 31).mean() > 0.5) for s in seqs])


def test_cuda_training_uses_amp_and_packed_sequences_and_learns():
    seqs, y = task()
    torch.manual_seed(0)
    model = RNNClassifier(RNNConfig(vocab_size=60, n_classes=2, embed_dim=16, hidden=16), torch.randn(60, 16))
    assert model.use_packed(torch.device("cuda")) and not model.use_packed(torch.device("cpu"))
    cfg = TrainerConfig(epochs=6, batch_size=32, learning_rate=0.01, schedule="cosine", warmup=0.1, device="cuda",
                        groups=(ParamGroup("embedding.", 0.1, 1),), patience=6)
    trainer = fit_classifier(model, cfg, seqs[:192], y[:192], seqs[192:], y[192:])
    assert trainer.device.type == "cuda" and trainer.scaler.is_enabled()
    assert next(model.parameters()).device.type == "cuda"
    assert trainer.history_[-1]["val_accuracy"] > 0.7 and trainer.tokens_per_second_ > 0
    on_gpu = predict(model, seqs[192:], device="cuda")["proba"]
    on_cpu = predict(model.cpu(), seqs[192:], device="cpu")["proba"]
    assert np.allclose(on_gpu, on_cpu, atol=1e-4)  # eval runs in float32: packed (GPU) = padded (CPU)


@pytest.mark.parametrize("family", ["treelstm-rae", "transformer"])
def test_cuda_trains_the_tree_and_transformer_families_under_amp(family):
    from nlpdag.models.recursive import TreeClassifier, TreeConfig, train_rae
    from nlpdag.models.transformer import TransformerClassifier, TransformerConfig

    seqs, y = task()
    torch.manual_seed(0)
    if family == "transformer":
        model = TransformerClassifier(TransformerConfig(60, 2, embed_dim=16, layers=2, d_model=32, heads=4, ff=64))
        inputs = seqs
    else:
        rae = train_rae(np.random.default_rng(0).normal(size=(60, 16)).astype(np.float32), seqs, 12, epochs=1,
                        sample=200, log=lambda *_: None)
        model = TreeClassifier(TreeConfig(60, 2, embed_dim=16, tree="rae", hidden=16, segment=12), rae=rae)
        inputs = model.prepare(seqs)
    cfg = TrainerConfig(epochs=8, batch_size=32, learning_rate=0.005, device="cuda", patience=8)
    trainer = fit_classifier(model, cfg, inputs[:192], y[:192], inputs[192:], y[192:])
    assert trainer.device.type == "cuda" and trainer.scaler.is_enabled()
    assert trainer.history_[-1]["val_accuracy"] > 0.7
    on_gpu = predict(model, inputs[192:], device="cuda", with_states=True)
    on_cpu = predict(model.cpu(), inputs[192:], device="cpu", with_states=True)
    assert np.allclose(on_gpu["proba"], on_cpu["proba"], atol=1e-3)
