"""The CUDA path of the classifiers (run where a GPU is present; skipped elsewhere): mixed precision,
packed sequences, the recipe's schedule, and the same predictions as the CPU up to float16 rounding.

Calibrated on an H200 (bench/gpu.sh): 512 toy documents and 10 epochs, as on the CPU, where 6 epochs
on 192 reached 0.69. Predictions compare at 2e-3: evaluation is float32, but cuDNN and cuBLAS use
TF32 by default on Ampere and later (seen: 7e-5 apart from the CPU's)."""
import numpy as np
import pytest
import torch

from nlpdag.models.rnn import RNNClassifier, RNNConfig
from nlpdag.models.sequences import fit_classifier, predict
from nlpdag.training.schedule import ParamGroup
from nlpdag.training.trainer import TrainerConfig

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def task(n=512, seed=0):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(2, 60, size=rng.integers(5, 40)) for _ in range(n)]
    return seqs, np.array([int((s >= 31).mean() > 0.5) for s in seqs])


def test_cuda_training_uses_amp_and_packed_sequences_and_learns():
    seqs, y = task()
    torch.manual_seed(0)
    model = RNNClassifier(RNNConfig(vocab_size=60, n_classes=2, embed_dim=16, hidden=16), torch.randn(60, 16))
    assert model.use_packed(torch.device("cuda")) and not model.use_packed(torch.device("cpu"))
    cfg = TrainerConfig(epochs=10, batch_size=32, learning_rate=0.01, schedule="cosine", warmup=0.1, device="cuda",
                        groups=(ParamGroup("embedding.", 0.1, 1),), patience=10)
    trainer = fit_classifier(model, cfg, seqs[:384], y[:384], seqs[384:], y[384:])
    assert trainer.device.type == "cuda" and trainer.scaler.is_enabled()
    assert next(model.parameters()).device.type == "cuda"
    assert max(h["val_accuracy"] for h in trainer.history_) > 0.7 and trainer.tokens_per_second_ > 0
    on_gpu = predict(model, seqs[384:], device="cuda")["proba"]
    on_cpu = predict(model.cpu(), seqs[384:], device="cpu")["proba"]
    assert np.allclose(on_gpu, on_cpu, atol=2e-3)  # eval runs in float32 (TF32 matmuls on the GPU): packed (GPU) = padded (CPU)


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
    cfg = TrainerConfig(epochs=10, batch_size=32, learning_rate=0.005, device="cuda", patience=10)
    trainer = fit_classifier(model, cfg, inputs[:384], y[:384], inputs[384:], y[384:])
    assert trainer.device.type == "cuda" and trainer.scaler.is_enabled()
    assert max(h["val_accuracy"] for h in trainer.history_) > 0.7
    on_gpu = predict(model, inputs[384:], device="cuda", with_states=True)
    on_cpu = predict(model.cpu(), inputs[384:], device="cpu", with_states=True)
    assert np.allclose(on_gpu["proba"], on_cpu["proba"], atol=2e-3)



def test_the_estimator_fits_on_cuda_and_what_it_saves_predicts_the_same_on_the_cpu(tmp_path):
    """NeuralClassifier with device cuda (classify.device) trains there under AMP; the folder it saves
    (weights alone) loads on the CPU, as `nlpdag predict` loads it, with the same predictions."""
    from nlpdag.models.classifier import NeuralClassifier

    seqs, y = task()
    docs = [[f"w{t}" for t in s] for s in seqs]
    clf = NeuralClassifier("lstm-bi-attention@random", embed_dim=16, hidden=16, epochs=10, batch_size=32,
                           learning_rate=0.01, patience=10, device="cuda", verbose=False, log=lambda *_: None)
    assert clf.fit(docs[:384], y[:384], docs[384:], y[384:]) is clf
    assert next(clf.model_.parameters()).device.type == "cuda"
    assert max(h["val_accuracy"] for h in clf.history_) > 0.7 and clf.tokens_per_second_ > 0
    on_gpu = clf.predict_proba(docs[384:])
    clf.save(tmp_path / "model")
    loaded = NeuralClassifier.load(tmp_path / "model")
    assert next(loaded.model_.parameters()).device.type == "cpu" and loaded.recipe.device == "cpu"
    assert np.allclose(loaded.predict_proba(docs[384:]), on_gpu, atol=2e-3)  # eval in float32 on both (TF32 on the GPU)
