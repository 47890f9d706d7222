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
every auto-encoder; for `stacked_ae` the fine-tuning epochs); `reports/scores/reduce.json`
{method: {reducer: {analogy_accuracy, wordsim353_spearman, simlex999_spearman, reconstruction_mse,
analogy_questions, wordsim353_pairs, simlex999_pairs}}}, reducer `none` being the unreduced vectors.
A score is null where the evaluation had too little evidence (the counts say how much: the rule is
nlpdag/embeddings/evaluate.py's, on the same words, so the same for every reducer of a method). reconstruction_mse is the mean squared error per element
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
from nlpdag.io.tables import atomic_path, write_json
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.config.base import StageParams
from nlpdag.config.reduce import ReduceParams
from nlpdag.io.vectors import Timer, read_vectors, write_vectors
from nlpdag.catalog.embeddings import EMBEDDINGS_DIR
from nlpdag.catalog.reduce import check_methods, REDUCE_LOSS, REDUCE_SCORES, REDUCED_DIR
from nlpdag.training.progress import LIVE_DIR
from nlpdag.training.progress import live
from nlpdag.training.devices import resolve_device

SCORES = ("analogy_accuracy", "wordsim353_spearman", "simlex999_spearman")
EVIDENCE = ("analogy_questions", "wordsim353_pairs", "simlex999_pairs")  # what each score (or its null) rests on
CURVES = ("train_loss", "val_loss", "val_objective")  # the auto-encoders' DVCLive charts


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


def split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows), a seeded random split of range(n)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def reconstruction_mse(x: np.ndarray, recon: np.ndarray) -> float:
    return float(np.mean(np.square(x.astype(np.float64) - recon)))


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


class Reducer:
    """One reducer as an estimator (scikit-learn's shape): `fit(x)` learns the per-dimension
    standardisation (`mean_`, `scale_`; identity without `reduce.standardise`) and the model (`pca_`
    or the auto-encoder `model_`, with its `history_`); `transform(x)` reduces any vectors, a word
    the reducer never saw included (FastText's vector of a typo, say); `reconstruct(x)` maps them
    back, in the standardised space the reducer sees."""

    def __init__(self, kind: str, params: ReduceParams, seed: int = 0, device: str = "cpu", name: str | None = None,
                 verbose: bool = False, callbacks: Sequence[object] = ()):
        self.kind, self.params, self.seed, self.device = kind, params, seed, device
        self.name, self.verbose, self.callbacks = name or kind, verbose, callbacks

    def fit(self, x: np.ndarray) -> "Reducer":
        x = np.asarray(x, dtype=np.float32)
        if self.params.standardise:
            std = x.std(axis=0)
            self.mean_, self.scale_ = x.mean(axis=0), np.where(std > 0, std, 1.0)  # constant columns: only centred
        else:
            self.mean_, self.scale_ = None, None
        z = self.standardised(x)
        self.history_: list[dict] = []
        if self.kind == "pca":
            self.pca_ = PCA(n_components=self.params.dim, random_state=self.seed).fit(z)
            return self
        train_rows, val_rows = split(len(z), self.params.val_fraction, self.seed)
        data = torch.from_numpy(np.ascontiguousarray(z))
        x_train, x_val = data[train_rows], data[val_rows]
        config = train_config(self.params, self.seed, self.device, self.name, self.verbose)
        torch.manual_seed(self.seed)
        self.model_ = build_model(self.kind, z.shape[1], self.params)
        if self.kind == "stacked_ae" and self.params.stacked_pretrain:
            pretrain_stacked(self.model_, x_train, x_val, config, epochs=pretrain_epochs(self.params.epochs))
        self.history_ = train(self.model_, x_train, x_val, config, self.callbacks).history_
        return self

    def standardised(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return x if self.mean_ is None else ((x - self.mean_) / self.scale_).astype(np.float32)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, dim) float32 codes of vectors (N, D)."""
        z = self.standardised(x)
        if self.kind == "pca":
            return self.pca_.transform(z).astype(np.float32)
        return transform(self.model_, torch.from_numpy(np.ascontiguousarray(z)), device=self.device, reconstruct=False)[0]

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """(N, D) reconstructions of vectors (N, D), standardised as the reducer sees them."""
        z = self.standardised(x)
        if self.kind == "pca":
            return self.pca_.inverse_transform(self.pca_.transform(z))
        return transform(self.model_, torch.from_numpy(np.ascontiguousarray(z)), device=self.device)[1]


def scores(tokens: list[str], vectors: np.ndarray, params: EvaluateParams) -> dict:
    """The intrinsic scores of reduced (or unreduced) vectors, each None without enough evidence, and the counts."""
    out = evaluate_vectors(keyed_vectors(tokens, vectors), params)
    return {k: out[k] for k in (*SCORES, *EVIDENCE)}


def reduce_method(method: str, tokens: list[str], matrix: np.ndarray, params: ReduceParams,
                  evaluate_params: EvaluateParams, seed: int = 0, device: str = "cpu",
                  folder: Path | None = REDUCED_DIR, verbose: bool = False, live=None) -> tuple[dict, list[tuple]]:
    """Every reducer on one method: ({reducer: metrics}, loss rows (model, epoch, train, val)).
    Writes `<folder>/<method>__<reducer>` unless folder is None."""
    check_dim(method, matrix.shape[1], len(tokens), params)
    metrics = {"none": {**scores(tokens, matrix, evaluate_params), "reconstruction_mse": 0.0}}
    rows: list[tuple] = []
    for reducer in params.reducers:
        name = f"{method}__{reducer}"
        epochs = ""
        # A bar per model on a terminal (one line per model below, not per epoch); epochs into DVCLive.
        hooks = [] if reducer == "pca" else [DVCLiveLogger(live, name), Progress(lines=False)]
        with Timer() as timer:
            fitted = Reducer(reducer, params, seed, device, name, verbose, hooks).fit(matrix)
            codes = fitted.transform(matrix)
            recon = fitted.reconstruct(matrix)
        if fitted.history_:
            rows += [(name, h["epoch"], h["train_loss"], h["val_loss"]) for h in fitted.history_]
            epochs = f"  {len(fitted.history_)} epochs"
        if not np.isfinite(codes).all():
            raise StageError(f"{name}: training produced NaN vectors (lower reduce.learning_rate)")
        metrics[reducer] = {**scores(tokens, codes, evaluate_params),
                            "reconstruction_mse": round(reconstruction_mse(fitted.standardised(matrix), recon), 6)}
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


def run_on(params: StageParams, device: torch.device) -> dict:
    config = params.reduce
    inputs = {}
    for method in config.methods:  # every input checked before anything is trained or written
        loaded = load_inputs(method)
        if loaded is None:
            print(f"reduce: {method} skipped (no vectors)")
            continue
        check_dim(method, loaded[1].shape[1], len(loaded[0]), config)
        inputs[method] = loaded
    metrics, rows = {}, []
    with live("reduce") as logger, Timer() as timer:
        for curve in CURVES:  # declared in dvc.yaml: present (empty) when no auto-encoder trains
            write_json([], LIVE_DIR / "reduce/plots/custom" / f"{curve}.json")
        for method, (tokens, matrix) in inputs.items():
            metrics[method], method_rows = reduce_method(method, tokens, matrix, config, params.evaluate,
                                                         params.seed, str(device), live=logger)
            rows += method_rows
    write_loss_csv(rows)
    write_json(metrics, REDUCE_SCORES)
    print(f"reduce: {len(metrics)} methods x {len(config.reducers)} reducers on {device} in {timer.seconds:.1f} s")
    return metrics


def run(params: StageParams) -> dict:
    """The `reduce` stage, on the device its params ask for, single-threaded on the CPU."""
    logging.getLogger("gensim").setLevel(logging.WARNING)
    check_methods(params.reduce.methods, "reduce.methods", reduced=False)
    device = resolve_device(params.reduce.device, "reduce.device")
    if device.type == "cpu":
        # The models are small: one thread spares the synchronisation at every tiny operation, which
        # on a busy 2-core machine made two threads up to 20x slower than one.
        torch.set_num_threads(1)
    with threadpool_limits(1):  # the evaluation's BLAS products too (faster single-threaded here)
        return run_on(params, device)
