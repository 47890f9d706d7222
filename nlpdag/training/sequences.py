"""Data and training for the recurrent classifiers of stages/rnn.py.

- `encode_docs`: token lists -> id arrays (PAD 0, UNK 1, words from 2), truncated to `max_len` from the
  head, the tail, or both (Sun et al. 2019: the first quarter and the last three quarters).
- `Batches`: padded mini-batches. Training batches are length-bucketed: the epoch's shuffled documents are
  cut into chunks of ~50 batches, each chunk sorted by length and cut into batches, and the batch order
  shuffled, so a batch pads little while every epoch still sees new batches. The shuffle of epoch e is
  drawn from (seed, e) alone, so a resumed run replays it exactly.
- `Trainer`: Adam/AdamW on cross-entropy, gradient-norm clipping (the pre-clipping norms are kept), AMP
  (autocast + GradScaler) on CUDA only, early stopping on the *validation loss* with the best epoch's
  weights restored at the end, and a checkpoint after every epoch (model, optimizer, scaler, RNG state,
  history, early-stopping state; written atomically) from which an interrupted run resumes and ends with
  the same weights as an uninterrupted one. The validation split is the caller's: `fit` takes it (see
  `validation_split`); without one it trains all epochs and keeps the last weights. Callbacks follow
  stages/autoencoders.py: objects with optional on_batch_end / on_epoch_end / on_train_end(trainer).
  Under torchrun: DistributedDataParallel, each rank training on its slice of every global batch
  (stages/distributed.py); rank 0 alone writes the checkpoint, and sends it to the others on resume.
- `predict`, `save_checkpoint` / `load_checkpoint`. Pre-training is nlpdag/training/pretraining.py's.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nlpdag.training import distributed as dd
from nlpdag.models.autoencoders import resolve_device
from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path
from nlpdag.models.rnn import PAD, UNK, RNNClassifier, RNNConfig

__all__ = ["PAD", "UNK", "encode_docs", "vocab_index", "Batches", "TrainConfig", "Trainer", "Progress",
           "predict", "evaluate", "validation_split", "save_checkpoint", "load_checkpoint"]

TRUNCATIONS = ("head", "tail", "head_tail")
DEVICE_PARAM = "classify.device"


def vocab_index(tokens: Sequence[str]) -> dict[str, int]:
    """The id of each vocabulary token (in vocabulary order, most frequent first): 2, 3, ..."""
    return {token: k + 2 for k, token in enumerate(tokens)}


def encode_docs(docs: Sequence[Sequence[str]], index: Mapping[str, int], max_len: int,
                truncation: str = "head") -> list[np.ndarray]:
    """int64 id arrays, tokens missing from `index` as UNK; an empty document becomes one UNK, so every
    length is >= 1. truncation: head (first max_len), tail (last max_len), head_tail (first max_len // 4
    and the last max_len - max_len // 4)."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation={truncation!r}: expected one of {list(TRUNCATIONS)}")
    head = max_len // 4
    out = []
    for doc in docs:
        ids = np.fromiter((index.get(t, UNK) for t in doc), dtype=np.int64, count=len(doc))
        if len(ids) > max_len:
            if truncation == "head":
                ids = ids[:max_len]
            elif truncation == "tail":
                ids = ids[-max_len:]
            else:
                ids = np.concatenate([ids[:head], ids[len(ids) - (max_len - head):]])
        out.append(ids if len(ids) else np.array([UNK], dtype=np.int64))
    return out


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]


class Batches:
    """Padded batches (ids (B, T) int64, lengths (B,), labels (B,) or None, index (B,) into `seqs`).

    shuffle: length-bucketed and shuffled as the module docstring says, epoch by `set_epoch`;
    otherwise in the input order, or sorted by length with `by_length` (prediction: fewer pads, the
    index puts the results back)."""

    def __init__(self, seqs: Sequence[np.ndarray], labels: Sequence[int] | np.ndarray | None = None,
                 batch_size: int = 64, shuffle: bool = False, seed: int = 0, by_length: bool = False,
                 bucket: int = 50):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.seqs = seqs
        self.lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        if len(seqs) and self.lengths.min() < 1:
            raise ValueError("every sequence needs at least one token (encode_docs gives an empty document one UNK)")
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and len(self.labels) != len(seqs):
            raise ValueError(f"{len(seqs)} sequences but {len(self.labels)} labels")
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.by_length, self.bucket, self.epoch = by_length, bucket, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.seqs) / self.batch_size)

    def order(self) -> list[np.ndarray]:
        """The batches' document indices."""
        n, bs = len(self.seqs), self.batch_size
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable") if self.by_length else np.arange(n)
            return [order[lo:lo + bs] for lo in range(0, n, bs)]
        rng = np.random.default_rng([self.seed, self.epoch])
        perm, chunk, batches = rng.permutation(n), self.bucket * bs, []
        for lo in range(0, n, chunk):
            part = perm[lo:lo + chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches.extend(part[k:k + bs] for k in range(0, len(part), bs))
        return [batches[k] for k in rng.permutation(len(batches))]

    def collate(self, index: np.ndarray) -> Batch:
        lengths = self.lengths[index]
        ids = np.zeros((len(index), lengths.max()), dtype=np.int64)  # (B, T), PAD = 0
        ids[np.arange(ids.shape[1])[None, :] < lengths[:, None]] = np.concatenate([self.seqs[i] for i in index])
        labels = None if self.labels is None else torch.from_numpy(self.labels[index])
        return torch.from_numpy(ids), torch.from_numpy(lengths), labels, torch.from_numpy(index)

    def __iter__(self) -> Iterator[Batch]:
        for index in self.order():
            yield self.collate(index)


def validation_split(labels: Sequence[int] | np.ndarray, fraction: float, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions: `fraction` of each class (at least one where it has two or more)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        val.append(members[:k])
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    return np.setdiff1d(np.arange(len(labels)), val), val


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    optimizer: str = "adamw"          # adam | adamw
    clip: float = 1.0                 # max gradient norm; 0 = off (norms are still recorded)
    patience: int = 2                 # epochs without a lower validation loss before stopping
    val_fraction: float = 0.1         # for the caller's `validation_split`; `fit` takes the split it is given
    device: str = "auto"              # auto | cpu | cuda
    amp: bool = True                  # mixed precision, on CUDA only
    seed: int = 0
    checkpoint: str | None = None     # path: written after every epoch; resumed from when it exists
    verbose: bool = False
    name: str = "model"


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer not in ("adam", "adamw"):
        raise ValueError(f"optimizer={config.optimizer!r}: expected adam or adamw")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def autocast(device: torch.device, enabled: bool):
    on = enabled and device.type == "cuda"
    return torch.autocast("cuda", dtype=torch.float16) if on else contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: RNNClassifier, seqs: Sequence[np.ndarray], labels: Sequence[int] | np.ndarray,
             batch_size: int = 256, device: torch.device | str = "cpu") -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode."""
    was_training = model.training
    model.eval()
    loss, correct = torch.zeros((), device=device), torch.zeros((), device=device)
    for ids, lengths, y, _ in Batches(seqs, labels, batch_size, by_length=True):
        logits = model(ids.to(device), lengths.to(device)).float()
        y = y.to(device)
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = max(len(seqs), 1)
    return float(loss) / n, float(correct) / n


class Trainer:
    def __init__(self, model: RNNClassifier, config: TrainConfig, callbacks: Sequence[object] = ()):
        self.model, self.config = model, config
        self.callbacks = list(callbacks) + ([Progress()] if config.verbose and dd.is_main() else [])
        # per epoch: epoch, train_loss / train_accuracy (training mode, over the epoch's batches),
        # val_loss / val_accuracy (eval mode, after the epoch; NaN without validation data), seconds (the
        # whole epoch, validation included), tokens_per_second (real tokens / training-loop seconds)
        self.history_: list[dict] = []
        self.grad_norms_: list[float] = []  # the global gradient norm of every step, before clipping
        self.best_epoch_ = 0
        self.tokens_per_second_ = math.nan
        self.stop, self.epoch = False, 0

    def trigger(self, event: str) -> None:
        for callback in self.callbacks:
            hook = getattr(callback, event, None)
            if hook is not None:
                hook(self)

    # ------------------------------------------------------------------------------ checkpoints
    def state(self, done: bool) -> dict:
        return {"model_config": asdict(self.model.config), "state_dict": self.model.state_dict(),
                "train_config": asdict(self.config), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "epoch": self.epoch, "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "history": self.history_, "grad_norms": self.grad_norms_, "best_loss": self.best_loss,
                "best_epoch": self.best_epoch_, "best_state": self.best_state, "wait": self.wait,
                "stop": self.stop, "done": done, "extra": {"name": self.config.name}}

    def save(self, done: bool = False) -> None:
        if self.config.checkpoint and dd.is_main():
            with atomic_path(self.config.checkpoint) as tmp:
                torch.save(self.state(done), tmp)

    def resume(self, path: Path, state: dict) -> bool:
        """Load a checkpoint (`state`, read from `path`) of this run; True when it had finished."""
        try:
            self.model.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise StageError(f"{path}: checkpoint does not match this model ({exc}); delete it to retrain") from None
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch, self.history_, self.grad_norms_ = state["epoch"], state["history"], state["grad_norms"]
        self.best_loss, self.best_epoch_, self.best_state = state["best_loss"], state["best_epoch"], state["best_state"]
        self.wait, self.stop = state["wait"], state["stop"]
        return state["done"]

    # ------------------------------------------------------------------------------ training
    def fit(self, train_seqs: Sequence[np.ndarray], y_train: Sequence[int] | np.ndarray,
            val_seqs: Sequence[np.ndarray] | None = None, y_val: Sequence[int] | np.ndarray | None = None
            ) -> "Trainer":
        cfg, model = self.config, self.model
        device = dd.local_device(resolve_device(cfg.device, DEVICE_PARAM))
        use_amp = cfg.amp and device.type == "cuda"
        torch.manual_seed(cfg.seed)  # dropout draws from the global generator
        model.to(device)
        self.device = device
        self.optimizer = make_optimizer(model, cfg)
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        self.best_loss, self.best_state, self.wait = math.inf, None, 0
        has_val = val_seqs is not None and len(val_seqs) > 0
        done = False
        path = Path(cfg.checkpoint) if cfg.checkpoint else None
        # Rank 0 reads the checkpoint and sends it: the other ranks may not share its disk.
        state = dd.broadcast(read_checkpoint(path) if path and dd.is_main() and path.exists() else None)
        if state is not None:
            done = self.resume(path, state)
        net = dd.wrap(model, device)  # after resuming: DDP starts every rank from rank 0's weights
        batches = Batches(train_seqs, y_train, cfg.batch_size, shuffle=True, seed=cfg.seed)
        params = [p for p in model.parameters() if p.requires_grad]
        max_norm = cfg.clip if cfg.clip > 0 else math.inf
        total_tokens, total_seconds = 0, 0.0
        while not done and not self.stop and self.epoch < cfg.epochs:
            self.epoch += 1
            start = time.perf_counter()
            model.train()
            batches.set_epoch(self.epoch)
            if dd.is_distributed():
                torch.manual_seed(dd.rank_seed(cfg.seed, self.epoch))
            loss_sum, correct, norms = torch.zeros((), device=device), torch.zeros((), device=device), []
            tokens = 0
            for index in batches.order():
                index, weight = dd.shard(index)  # the whole batch at weight 1 in a single process
                ids, lengths, y, _ = batches.collate(index)
                keep = weight > 0
                tokens += int(lengths.sum()) * keep  # real tokens, counted on the CPU copy
                ids, lengths, y = ids.to(device, non_blocking=True), lengths.to(device), y.to(device)
                self.optimizer.zero_grad(set_to_none=True)
                with autocast(device, use_amp):
                    logits = net(ids, lengths)
                loss = F.cross_entropy(logits.float(), y)
                self.scaler.scale(loss if weight == 1.0 else loss * weight).backward()  # DDP: grads averaged
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
                norms.append(torch.nn.utils.clip_grad_norm_(params, max_norm))  # the norm before clipping
                self.scaler.step(self.optimizer)
                self.scaler.update()
                loss_sum += loss.detach() * (len(y) * keep)
                correct += (logits.detach().argmax(1) == y).sum() * keep
                self.trigger("on_batch_end")
            train_seconds = time.perf_counter() - start
            self.grad_norms_.extend(torch.stack(norms).float().cpu().tolist())
            if dd.is_distributed():
                loss_sum, correct, tokens = dd.sum_over_ranks([loss_sum, correct, tokens], device)
                tokens = int(tokens)
            n = len(train_seqs)
            self.train_loss, self.train_accuracy = float(loss_sum) / n, float(correct) / n
            self.val_loss, self.val_accuracy = (dd.sharded_mean(evaluate, model, val_seqs, y_val, device)
                                                if has_val else (math.nan, math.nan))
            total_tokens, total_seconds = total_tokens + tokens, total_seconds + train_seconds
            self.history_.append({"epoch": self.epoch, "train_loss": self.train_loss, "val_loss": self.val_loss,
                                  "train_accuracy": self.train_accuracy, "val_accuracy": self.val_accuracy,
                                  "seconds": time.perf_counter() - start,
                                  "tokens_per_second": tokens / train_seconds})
            self.early_stopping(has_val)
            self.save()
            self.trigger("on_epoch_end")
        if total_seconds > 0:
            self.tokens_per_second_ = total_tokens / total_seconds
        elif self.history_:
            self.tokens_per_second_ = float(np.mean([h["tokens_per_second"] for h in self.history_]))
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        self.save(done=True)
        self.trigger("on_train_end")
        model.eval()
        return self

    def early_stopping(self, has_val: bool) -> None:
        """Keep the weights of the lowest validation loss; stop after `patience` epochs without a lower one."""
        if not has_val:
            self.best_epoch_ = self.epoch
            return
        if self.val_loss < self.best_loss:
            self.best_loss, self.best_epoch_, self.wait = self.val_loss, self.epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.wait += 1
            self.stop = self.wait >= self.config.patience


class Progress:
    def on_epoch_end(self, trainer: Trainer) -> None:
        h = trainer.history_[-1]
        print(f"{trainer.config.name}: epoch {h['epoch']}/{trainer.config.epochs}  train loss {h['train_loss']:.4f} "
              f"acc {h['train_accuracy']:.3f}  val loss {h['val_loss']:.4f} acc {h['val_accuracy']:.3f}  "
              f"{h['seconds']:.1f} s  {h['tokens_per_second']:,.0f} tokens/s", flush=True)


@torch.no_grad()
def predict(model: RNNClassifier, seqs: Sequence[np.ndarray], batch_size: int = 256,
            device: torch.device | str = "cpu", with_states: bool = False, with_attention: bool = False) -> dict:
    """{"proba": (N, C) float32} and optionally "states" (N, D) float32 (the pooled document vectors) and
    "attention" (a (len_i,) float32 array per document; needs attention pooling), in the input order."""
    if with_attention and model.config.pooling != "attention":
        raise ValueError(f"with_attention needs pooling=attention, the model has pooling={model.config.pooling}")
    if isinstance(device, str):
        device = resolve_device(device, DEVICE_PARAM)
    model.to(device).eval()
    n = len(seqs)
    proba = np.zeros((n, model.config.n_classes), dtype=np.float32)
    states = np.zeros((n, model.config.out_dim), dtype=np.float32) if with_states else None
    attention: list[np.ndarray | None] = [None] * n
    for ids, lengths, _, index in Batches(seqs, None, batch_size, by_length=True):
        ids, lengths = ids.to(device), lengths.to(device)
        pooled, weights = model.encode(ids, lengths)
        idx = index.numpy()
        proba[idx] = torch.softmax(model.out(pooled).float(), dim=1).cpu().numpy()
        if with_states:
            states[idx] = pooled.float().cpu().numpy()
        if with_attention:
            for row, i, length in zip(weights.float().cpu().numpy(), idx, lengths.tolist()):
                attention[i] = row[:length]
    out = {"proba": proba}
    if with_states:
        out["states"] = states
    if with_attention:
        out["attention"] = attention
    return out


# ---------------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str | Path, model: RNNClassifier, config: TrainConfig | None, extra: dict) -> None:
    """The model (config + weights), the training config and `extra` (plain Python values), atomically."""
    state = {"model_config": asdict(model.config), "state_dict": model.state_dict(),
             "train_config": asdict(config) if config is not None else None, "extra": extra, "done": True}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a truncated or foreign file
        raise StageError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None


def load_checkpoint(path: str | Path) -> tuple[RNNClassifier, dict]:
    """(model in eval mode on the CPU, extra) from `save_checkpoint` or a finished `Trainer` checkpoint."""
    state = read_checkpoint(path)
    try:
        model = RNNClassifier(RNNConfig(**state["model_config"]))
        model.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise StageError(f"{path}: checkpoint does not hold an RNNClassifier ({exc})") from None
    return model.eval(), state.get("extra") or {}
