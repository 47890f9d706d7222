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
