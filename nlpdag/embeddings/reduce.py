"""Stage `reduce`: each method's word vectors reduced from their size to `reduce.dim`, by PCA (the
reference) and four PyTorch auto-encoders, all scored by the same intrinsic evaluation as `evaluate`.

Reducers (nlpdag/models/autoencoders.py), all on inputs standardised per dimension when `reduce.standardise`:
- `pca`: scikit-learn PCA; the reduced vectors are the principal-component scores.
- `ae`: one code layer, Linear + `reduce.activation`, linear decoder.
- `dae`: the same, trained to reconstruct clean inputs from corrupted ones (`reduce.noise`: masking
  zeroes each input with probability `noise_level`, gaussian adds N(0, noise_level^2)); no corruption
  when encoding.
- `stacked_ae`: stacked, hidden layers `reduce.stacked_sizes` then the code. With `stacked_pretrain: true`
  each layer is first pre-trained greedily as a one-layer auto-encoder of the previous layer's codes,
  then the whole stack is fine-tuned end to end; with `false` it is trained end to end only.
- `vae`: variational; loss = squared error summed over dimensions + vae_beta * KL(q(z|x) || N(0, I));
  the reduced vector is the code mean.
Auto-encoders train with Adam on mini-batches, early stopping on a held-out, seeded `val_fraction`
slice of the vocabulary (the best epoch's weights are kept); seeded, deterministic on the CPU.

Outputs: `data/reduced/<method>__<reducer>.{parquet,txt}` (the embeddings format);
`reports/plots/reduce_loss.csv` (model, epoch, train_loss, val_loss: per-epoch reconstruction MSE of
every auto-encoder; for `stacked_ae` the fine-tuning epochs); `reports/metrics/reduce.json`
{method: {reducer: {analogy_accuracy, wordsim353_spearman, simlex999_spearman, reconstruction_mse}}},
reducer `none` being the unreduced vectors. reconstruction_mse is the mean squared error per element
over all words, in the space the reducers see (standardised when `standardise`), for PCA too.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from nlpdag.models.autoencoders import AutoEncoder, ModelConfig, VariationalAutoEncoder, pretrain_stacked, train, transform
from nlpdag.training.progress import DVCLiveLogger, Progress
from nlpdag.training.trainer import TrainerConfig
from nlpdag.errors import StageError
from nlpdag.embeddings.evaluate import evaluate_vectors, keyed_vectors
from nlpdag.catalog import METHODS
from nlpdag.io.tables import atomic_path, write_json
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.config.base import StageParams
from nlpdag.config.reduce import ReduceParams
from nlpdag.io.vectors import Timer, read_vectors, write_vectors
from nlpdag.catalog import EMBEDDINGS_DIR
from nlpdag.catalog import REDUCED_DIR, REDUCE_LOSS, REDUCE_METRICS

SCORES = ("analogy_accuracy", "wordsim353_spearman", "simlex999_spearman")


def load_inputs(method: str, folder: Path = EMBEDDINGS_DIR) -> tuple[list[str], np.ndarray] | None:
    """(tokens, vectors) of a method, or None for an empty `pretrained` table (not set)."""
    path = Path(folder) / f"{method}.parquet"
    tokens, matrix = read_vectors(path)
    if not tokens:
        if method == "pretrained":
            return None
        raise StageError(f"{path}: the vectors table is empty (rerun its stage or drop {method} from reduce.methods)")
    if not np.isfinite(matrix).all():
        raise StageError(f"{path}: vectors contain NaN or infinite values")
    return tokens, matrix


def check_dim(method: str, size: int, n_words: int, params: ReduceParams) -> None:
    if params.dim >= size:
        raise StageError(f"params.yaml: reduce.dim={params.dim} is not smaller than the {size}-dimensional "
                         f"vectors of {method} (lower reduce.dim)")
    if "stacked_ae" in params.reducers and any(s < 1 for s in params.stacked_sizes):
        raise StageError(f"params.yaml: reduce.stacked_sizes: layer sizes must be at least 1 "
                         f"(got {params.stacked_sizes})")
    if n_words < 2 or round(n_words * params.val_fraction) < 1 or round(n_words * params.val_fraction) >= n_words:
        raise StageError(f"{method}: {n_words} words are too few to hold out reduce.val_fraction="
                         f"{params.val_fraction} of them for validation")


def standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column (constant columns only centred)."""
    std = x.std(axis=0)
    return ((x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows), a seeded random split of range(n)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def reconstruction_mse(x: np.ndarray, recon: np.ndarray) -> float:
    return float(np.mean(np.square(x.astype(np.float64) - recon)))


def reduce_pca(x: np.ndarray, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N, dim), reconstruction (N, D))."""
    pca = PCA(n_components=dim, random_state=seed).fit(x)
    codes = pca.transform(x)
    return codes.astype(np.float32), pca.inverse_transform(codes)


def build_model(reducer: str, n_in: int, params: ReduceParams) -> torch.nn.Module:
    common = dict(n_in=n_in, dim=params.dim, activation=params.activation)
    if reducer == "ae":
        return AutoEncoder(ModelConfig(**common))
    if reducer == "dae":
        return AutoEncoder(ModelConfig(**common, noise=params.noise, noise_level=params.noise_level))
    if reducer == "stacked_ae":
        return AutoEncoder(ModelConfig(**common, hidden=tuple(params.stacked_sizes)))
    if reducer == "vae":
        return VariationalAutoEncoder(ModelConfig(**common, beta=params.vae_beta))
    raise ValueError(f"not an auto-encoder: {reducer}")


def pretrain_epochs(epochs: int) -> int:
    """Epochs of each greedy pre-training step of the stacked auto-encoder: a third of the fine-tuning's."""
    return max(1, epochs // 3)


def train_config(params: ReduceParams, seed: int, device: str, name: str, verbose: bool) -> TrainerConfig:
    return TrainerConfig(name=name, epochs=params.epochs, batch_size=params.batch_size, learning_rate=params.learning_rate,
                         optimizer="adam", fused=True, amp=False, patience=params.patience, seed=seed, device=device,
                         device_param="reduce.device", verbose=verbose)


def reduce_autoencoder(x: np.ndarray, reducer: str, params: ReduceParams, seed: int = 0, device: str = "cpu",
                       name: str = "ae", verbose: bool = False, callbacks: Sequence[object] = ()
                       ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(codes (N, dim), reconstruction (N, D), per-epoch history) of one auto-encoder on x (N, D)."""
    train_rows, val_rows = split(len(x), params.val_fraction, seed)
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    x_train, x_val = data[train_rows], data[val_rows]
    config = train_config(params, seed, device, name, verbose)
    torch.manual_seed(seed)
    model = build_model(reducer, x.shape[1], params)
    if reducer == "stacked_ae" and params.stacked_pretrain:
        pretrain_stacked(model, x_train, x_val, config, epochs=pretrain_epochs(params.epochs))
    trainer = train(model, x_train, x_val, config, callbacks)
    codes, recon = transform(model, data, device=device)
    return codes, recon, trainer.history_


def scores(tokens: list[str], vectors: np.ndarray, params: EvaluateParams) -> dict:
    out = evaluate_vectors(keyed_vectors(tokens, vectors), params)
    return {k: out[k] for k in SCORES}


def reduce_method(method: str, tokens: list[str], matrix: np.ndarray, params: ReduceParams,
                  evaluate_params: EvaluateParams, seed: int = 0, device: str = "cpu",
                  folder: Path | None = REDUCED_DIR, verbose: bool = False, live=None) -> tuple[dict, list[tuple]]:
    """Every reducer on one method: ({reducer: metrics}, loss rows (model, epoch, train, val)).
    Writes `<folder>/<method>__<reducer>` unless folder is None."""
    check_dim(method, matrix.shape[1], len(tokens), params)
    x = standardise(matrix) if params.standardise else np.asarray(matrix, dtype=np.float32)
    metrics = {"none": {**scores(tokens, matrix, evaluate_params), "reconstruction_mse": 0.0}}
    rows: list[tuple] = []
    for reducer in params.reducers:
        name = f"{method}__{reducer}"
        epochs = ""
        with Timer() as timer:
            if reducer == "pca":
                codes, recon = reduce_pca(x, params.dim, seed)
            else:
                # A bar per model on a terminal (one line per model below, not per epoch); epochs into DVCLive.
                hooks = [DVCLiveLogger(live, name), Progress(lines=False)]
                codes, recon, history = reduce_autoencoder(x, reducer, params, seed, device, name, verbose, hooks)
                rows += [(name, h["epoch"], h["train_loss"], h["val_loss"]) for h in history]
                epochs = f"  {len(history)} epochs"
        if not np.isfinite(codes).all():
            raise StageError(f"{name}: training produced NaN vectors (lower reduce.learning_rate)")
        metrics[reducer] = {**scores(tokens, codes, evaluate_params),
                            "reconstruction_mse": round(reconstruction_mse(x, recon), 6)}
        if folder is not None:
            write_vectors(name, tokens, codes, folder=folder)
        m = metrics[reducer]
        shown = {k: "n/a" if m[k] is None else f"{m[k]:.3f}" for k in SCORES}  # null: undefined on this vocabulary
        print(f"reduce: {name:<24} analogy {shown['analogy_accuracy']}  WS353 {shown['wordsim353_spearman']}  "
              f"SimLex {shown['simlex999_spearman']}  mse {m['reconstruction_mse']:.4f}  {timer.seconds:.1f} s{epochs}",
              flush=True)
    return metrics, rows


def write_loss_csv(rows: Sequence[tuple], path: str | Path = REDUCE_LOSS) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("model,epoch,train_loss,val_loss\n")
        for model, epoch, train_loss, val_loss in rows:
            f.write(f"{model},{epoch},{train_loss:.8g},{val_loss:.8g}\n")
