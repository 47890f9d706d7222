"""The auto-encoders, their trainer and the `reduce` stage on tiny data; the vectorised analogy evaluation
against gensim's."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from nlpdag.models.autoencoders import (AutoEncoder, ModelConfig, Noise, VariationalAutoEncoder,
                                 evaluate, linears, train)
from nlpdag.training.callbacks import EarlyStopping
from nlpdag.training.devices import resolve_device
from nlpdag.errors import StageError
from nlpdag.embeddings.evaluate import analogy_scores, keyed_vectors
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.config.reduce import ReduceParams
from nlpdag.catalog.reduce import check_methods
from nlpdag.embeddings.reduce import Reducer, build_model, check_dim, load_inputs, reduce_method, split, write_loss_csv
from nlpdag.io.vectors import read_vectors, write_vectors
from nlpdag.training.trainer import TrainerConfig


def ae_config(**kw) -> TrainerConfig:
    """The auto-encoders' settings in the stages: Adam (fused), float32."""
    return TrainerConfig(**{**dict(optimizer="adam", fused=True, amp=False, batch_size=256), **kw})



def standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column, as `reduce.standardise` has it (the reducer's own fit)."""
    return Reducer("pca", ReduceParams(dim=1)).fit(x).standardised(x)


pytestmark = pytest.mark.usefixtures("one_thread")


TINY = ReduceParams(dim=3, stacked_sizes=[5], epochs=3, batch_size=32, patience=2)


def low_rank(n=400, d=8, rank=3, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) + noise * rng.normal(size=(n, d))
    return x.astype(np.float32)


@pytest.mark.parametrize("reducer", ["ae", "dae", "stacked_ae", "vae"])
def test_forward_backward_shapes(reducer):
    torch.manual_seed(0)
    model = build_model(reducer, 8, TINY)
    x = torch.randn(4, 8)
    out = model(x)
    assert out[0].shape == (4, 8) and out[1].shape == (4, 3)
    assert model.encode(x).shape == (4, 3)
    objective, mse = model.loss(x)
    assert objective.shape == () and mse.shape == ()
    objective.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_stacked_layers_and_pretraining_sizes():
    model = build_model("stacked_ae", 8, TINY)
    assert [(m.in_features, m.out_features) for m in linears(model.encoder)] == [(8, 5), (5, 3)]
    assert [(m.in_features, m.out_features) for m in linears(model.decoder)] == [(3, 5), (5, 8)]


@pytest.mark.parametrize("reducer", ["ae", "dae", "stacked_ae", "vae"])
def test_training_lowers_the_reconstruction_loss(reducer):
    x = torch.from_numpy(standardise(low_rank()))
    torch.manual_seed(0)
    model = build_model(reducer, 8, TINY)
    before = evaluate(model, x)[1]
    trainer = train(model, x[:320], x[320:], ae_config(epochs=15, batch_size=32, learning_rate=1e-2, patience=None))
    assert evaluate(model, x)[1] < 0.7 * before
    assert trainer.history_[-1]["train_loss"] < trainer.history_[0]["train_loss"]


@pytest.mark.parametrize("kind", ["masking", "gaussian"])
def test_denoising_noise_only_in_training(kind):
    torch.manual_seed(0)
    model = AutoEncoder(ModelConfig(8, 3, noise=kind, noise_level=0.5))
    x = torch.randn(64, 8)
    model.eval()
    clean = model(x)[0]
    torch.testing.assert_close(model(x)[0], clean)
    torch.testing.assert_close(model.encode(x), model.encoder(x))
    model.train()
    assert not torch.allclose(model(x)[0], clean)
    noisy = Noise(kind, 0.5).train()(torch.ones(1000, 10))
    if kind == "masking":
        assert set(noisy.unique().tolist()) == {0.0, 1.0} and 0.4 < (noisy == 0).float().mean() < 0.6
    else:
        assert 0.45 < (noisy - 1).std() < 0.55
    assert torch.equal(Noise(kind, 0.5).eval()(x), x)


def test_vae_kl_sign_shape_and_mean_code():
    torch.manual_seed(0)
    model = VariationalAutoEncoder(ModelConfig(8, 3, beta=1.0))
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    kl = model.kl(mu, logvar)
    assert kl.shape == (5,) and (kl >= 0).all()
    assert model.kl(torch.zeros(2, 3), torch.zeros(2, 3)).tolist() == [0.0, 0.0]
    # Closed form against a Monte Carlo estimate of E_q[log q - log p] for one row.
    q = torch.distributions.Normal(mu[0], (0.5 * logvar[0]).exp())
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(1).mean()
    assert kl[0].item() == pytest.approx(mc.item(), rel=0.05, abs=0.02)
    x = torch.randn(6, 8)
    model.eval()
    recon, mean, _ = model(x)
    torch.testing.assert_close(model.encode(x), model.mu(x))
    torch.testing.assert_close(model.encode(x), mean)
    torch.testing.assert_close(model(x)[0], recon)  # eval: decodes the mean, no sampling
    model.train()
    assert not torch.allclose(model(x)[0], recon)


def test_linear_autoencoder_finds_the_pca_subspace():
    x = standardise(low_rank(n=600, d=10, rank=3, noise=0.05, seed=1))
    params = ReduceParams(dim=3, activation="linear", epochs=60, batch_size=32, learning_rate=1e-2, patience=60)
    torch.manual_seed(0)
    model = build_model("ae", 10, params)
    data = torch.from_numpy(x)
    train(model, data, data[:100], ae_config(epochs=60, batch_size=32, learning_rate=1e-2, patience=None))
    pca = PCA(n_components=3).fit(x)
    decoder = linears(model.decoder)[0].weight.detach().numpy()  # (10, 3): spans the reconstructions
    assert np.degrees(subspace_angles(decoder, pca.components_.T)).max() < 3.0
    pca = Reducer("pca", params.model_copy(update={"standardise": False})).fit(x)
    codes, recon = pca.transform(x), pca.reconstruct(x)
    assert codes.shape == (600, 3) and codes.dtype == np.float32 and np.mean((x - recon) ** 2) < 0.01


def test_early_stopping_stops_and_restores_the_best_weights():
    model = torch.nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=2, monitor="val_objective")
    trainer = SimpleNamespace(model=model, stop=False, history_=[])
    for epoch, value in enumerate([5.0, 3.0, 4.0, 2.0, 2.5, 2.1, 1.0], start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        trainer.epoch, trainer.history_ = epoch, trainer.history_ + [{"epoch": epoch, "val_objective": value}]
        stopper.on_epoch_end(trainer)
        if trainer.stop:
            break
    assert epoch == 6 and stopper.best_epoch == 4
    stopper.on_train_end(trainer)
    assert model.weight.item() == 4.0


def test_trainer_early_stopping_end_to_end():
    # Learning rate far too high: validation loss goes up, so training stops early with the best weights.
    x = torch.from_numpy(standardise(low_rank()))
    torch.manual_seed(0)
    model = build_model("ae", 8, TINY)
    trainer = train(model, x[:320], x[320:], ae_config(epochs=40, batch_size=32, learning_rate=1.0, patience=2))
    history = trainer.history_
    best = min(h["val_objective"] for h in history)
    assert len(history) < 40 and history[-1]["val_objective"] > best
    assert evaluate(model, x[320:])[0] == pytest.approx(best, rel=1e-5)


def test_reduction_is_seeded_and_deterministic():
    x = standardise(low_rank())
    for reducer in ("dae", "vae"):
        a, b = (Reducer(reducer, TINY, seed=3).fit(x) for _ in range(2))
        np.testing.assert_array_equal(a.transform(x), b.transform(x))
        assert [{k: v for k, v in h.items() if k != "seconds"} for h in a.history_] == \
            [{k: v for k, v in h.items() if k != "seconds"} for h in b.history_]
    train_rows, val_rows = split(400, 0.1, seed=3)
    assert len(val_rows) == 40 and not set(train_rows) & set(val_rows)


@pytest.mark.parametrize("kind", ["pca", "ae", "stacked_ae", "vae"])
def test_a_fitted_reducer_reduces_words_it_never_saw(kind):
    """fit/transform: the standardisation and the model are learnt once; a new word's vector (a
    FastText typo, say) is reduced as it would be inside the fitted vocabulary."""
    x = low_rank() * 3 + 1
    fitted = Reducer(kind, TINY, seed=0).fit(x[:-5])
    assert fitted.mean_.shape == (x.shape[1],) and fitted.scale_.shape == (x.shape[1],)
    new = fitted.transform(x[-5:])
    assert new.shape == (5, TINY.dim) and np.isfinite(new).all()
    np.testing.assert_allclose(new, fitted.transform(x)[-5:], rtol=1e-5, atol=1e-6)
    assert fitted.reconstruct(x[-5:]).shape == (5, x.shape[1])


def test_reduce_method_outputs(tmp_path):
    # The words of WordSim353's first 14 pairs (enough for a correlation), of a few SimLex-999 pairs (too
    # few: null) and of no analogy question: each score defined only where its evidence suffices.
    tokens = [f"w{i}" for i in range(300)] + ("love sex tiger cat book paper computer keyboard internet plane car "
                                             "train telephone communication television radio media drug abuse "
                                             "bread butter cucumber potato old new smart intelligent").split()
    matrix = low_rank(n=len(tokens)) * 3 + 1
    metrics, rows = reduce_method("toy", tokens, matrix, TINY.model_copy(update={"reducers": ["pca", "ae", "stacked_ae"]}),
                                  EvaluateParams(), seed=0, folder=tmp_path)
    assert list(metrics) == ["none", "pca", "ae", "stacked_ae"]
    assert metrics["none"]["reconstruction_mse"] == 0.0
    assert set(metrics["ae"]) == {"analogy_accuracy", "wordsim353_spearman", "simlex999_spearman",
                                  "reconstruction_mse", "analogy_questions", "wordsim353_pairs", "simlex999_pairs"}
    for reducer, m in metrics.items():  # the same words behind every reducer: the same evidence, the same nulls
        assert (m["analogy_questions"], m["wordsim353_pairs"]) == (0, 14) and 2 <= m["simlex999_pairs"] < 10, reducer
        assert m["analogy_accuracy"] is None and m["simlex999_spearman"] is None
        assert -1 < m["wordsim353_spearman"] < 1
    assert 0 < metrics["pca"]["reconstruction_mse"] < 0.01  # rank 3 data, 3 components
    got_tokens, got = read_vectors(tmp_path / "toy__ae.parquet")
    assert got_tokens == tokens and got.shape == (len(tokens), 3)
    assert {r[0] for r in rows} == {"toy__ae", "toy__stacked_ae"} and rows[0][1] == 1
    write_loss_csv(rows, tmp_path / "loss.csv")
    lines = (tmp_path / "loss.csv").read_text().splitlines()
    assert lines[0] == "model,epoch,train_loss,val_loss" and lines[1].startswith("toy__ae,1,")
    assert len(lines) == len(rows) + 1


def test_bad_inputs_stop_with_one_line(tmp_path):
    with pytest.raises(StageError, match=r"reduce\.dim=50 is not smaller than the 16-dimensional vectors of word2vec_cbow"):
        check_dim("word2vec_cbow", 16, 100, ReduceParams(dim=50))
    with pytest.raises(StageError, match=r"reduce\.methods: unknown method 'word2vec'"):
        check_methods(["word2vec_cbow", "word2vec"], "reduce.methods", reduced=False)
    write_vectors("pretrained", [], np.zeros((0, 1), dtype=np.float32), folder=tmp_path)
    assert load_inputs("pretrained", tmp_path) is None
    write_vectors("glove", [], np.zeros((0, 1), dtype=np.float32), folder=tmp_path)
    with pytest.raises(StageError, match=r"glove\.parquet: the vectors table is empty"):
        load_inputs("glove", tmp_path)
    from nlpdag.io.tables import write_table
    from nlpdag.io.vectors import vectors_table
    write_table(vectors_table(["a", "b"], np.array([[1.0, np.nan], [0.0, 1.0]], dtype=np.float32)),
                tmp_path / "fasttext.parquet")
    with pytest.raises(StageError, match=r"fasttext\.parquet: vectors contain NaN"):
        load_inputs("fasttext", tmp_path)
    with pytest.raises(StageError, match="not found"):
        load_inputs("doc2vec_dm", tmp_path)
    if not torch.cuda.is_available():
        with pytest.raises(StageError, match=r"reduce\.device=cuda but CUDA is not available"):
            resolve_device("cuda", "reduce.device")
    assert resolve_device("cpu", "reduce.device") == torch.device("cpu")


# ------------------------------------------------------------------ analogies: vectorised vs gensim

def gensim_analogy_scores(kv, questions, restrict):
    """The former implementation: gensim's own loop."""
    total = sum(1 for line in open(questions, encoding="utf-8") if line.strip() and not line.startswith(":"))
    score, sections = kv.evaluate_word_analogies(str(questions), restrict_vocab=restrict, case_insensitive=True)
    overall = sections[-1]
    answered = len(overall["correct"]) + len(overall["incorrect"])
    return {"analogy_accuracy": round(float(score), 4) if answered else 0.0,
            "analogy_coverage": round(answered / total, 4) if total else 0.0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_analogies_equal_gensim(tmp_path, seed):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(60)] + ["W3", "w7", "Queen", "queen", "king"]  # case variants; "w7" repeated
    words = list(dict.fromkeys(words))
    # Clustered vectors, so that some analogies are right and some wrong.
    centres = rng.normal(size=(6, 10))
    matrix = (centres[rng.integers(0, 6, len(words))] + 0.7 * rng.normal(size=(len(words), 10))).astype(np.float32)
    kv = keyed_vectors(words, matrix)
    vocab = ["w%d" % i for i in range(70)] + ["QUEEN", "King", "w3", "unknown"]
    lines = [": section-one"]
    for _ in range(150 if seed else 1200):  # seed 0: more than one batch of 512 questions
        lines.append(" ".join(rng.choice(vocab[:64] if rng.random() < 0.8 else vocab, size=4, replace=False)))
    lines += [": section-two", "w1 w2 w3 w4", "w1 w2", "", "queen king w1 w2"]
    # Plant solvable analogies: d = b - a + c exactly.
    for a, b, c, d in rng.choice(40, size=(30, 4)):
        matrix[d] = matrix[b] - matrix[a] + matrix[c]
        lines.append(f"w{a} w{b} w{c} w{d}")
    kv = keyed_vectors(words, matrix)
    path = tmp_path / "questions.txt"
    path.write_text("\n".join(lines) + "\n")
    for restrict in (50, 1000):
        got = analogy_scores(kv, path, restrict, min_questions=1)  # any number of questions: gensim's protocol
        want = gensim_analogy_scores(kv, path, restrict)
        halves = {k: got.pop(k) for k in ("analogy_semantic", "analogy_syntactic")}
        assert got.pop("analogy_questions") == halves["analogy_semantic"]["n"]
        assert got == want, restrict
        assert halves["analogy_syntactic"] is None and halves["analogy_semantic"]["accuracy"] == got["analogy_accuracy"]
        assert 0 < got["analogy_accuracy"] < 1 and 0 < got["analogy_coverage"] < 1
