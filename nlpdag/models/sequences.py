"""Data and training for the classifiers of nlpdag/models/rnn.py, recursive.py (trees) and transformer.py.

- `encode_docs`: token lists -> id arrays (PAD 0, UNK 1, words from 2), truncated to `max_len` from the
  head, the tail, or both (Sun et al. 2019: the first quarter and the last three quarters).
- `Batches`: padded mini-batches. Training batches are length-bucketed: the epoch's shuffled documents are
  cut into chunks of ~50 batches, each chunk sorted by length and cut into batches, and the batch order
  shuffled, so a batch pads little while every epoch still sees new batches. The shuffle of epoch e is
  drawn from (seed, e) alone, so a resumed run replays it exactly.
- `fit_classifier`: the shared Trainer (nlpdag/training/trainer.py) on cross-entropy, with early
  stopping on the *validation loss* (the best epoch's weights restored at the end), every step's
  gradient norm before clipping kept, and a checkpoint after every epoch from which an interrupted run
  resumes and ends with the same weights as an uninterrupted one. The validation split is the
  caller's (see `validation_split`); without one it trains all epochs and keeps the last weights.
- `predict`. Checkpoints are nlpdag/models/checkpoints.py's, pre-training nlpdag/models/pretraining.py's.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nlpdag.models.rnn import PAD, UNK
from nlpdag.models.trees import make_forest
from nlpdag.training import distributed as dd
from nlpdag.training.callbacks import Checkpoint, EarlyStopping
from nlpdag.training.progress import Progress
from nlpdag.training.devices import resolve_device
from nlpdag.training.trainer import Trainer, TrainerConfig

__all__ = ["PAD", "UNK", "encode_docs", "vocab_index", "Batches", "TreeBatches", "make_batches", "fit_classifier",
           "predict", "evaluate", "validation_split"]

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

    def epoch_batches(self, epoch: int, device=None, shard: bool = True) -> Iterator[tuple[Batch, float]]:
        """The Trainer's batches of one epoch: with `shard` under torch.distributed, this rank's slice of each."""
        self.set_epoch(epoch)
        for index in self.order():
            index, weight = dd.shard(index) if shard else (index, 1.0)  # a single process: the whole batch
            yield self.collate(index), weight


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


def make_batches(model: nn.Module, seqs: Sequence, labels=None, batch_size: int = 64, **kw) -> "Batches":
    """The model family's batches: a tree model's own (`TreeBatches`), else padded id sequences."""
    own = getattr(model, "batches", None)
    return own(seqs, labels, batch_size, **kw) if own is not None else Batches(seqs, labels, batch_size, **kw)


def encode_batch(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, D) pooled document vectors and attention weights (B, T) or None, for every family."""
    own = getattr(model, "encode_batch", None)
    return own(batch) if own is not None else model.encode(batch[0], batch[1])


@torch.no_grad()
def evaluate(model: nn.Module, seqs: Sequence, labels: Sequence[int] | np.ndarray,
             batch_size: int = 256, device: torch.device | str = "cpu") -> tuple[float, float]:
    """(mean cross-entropy, accuracy) in eval mode."""
    from nlpdag.training.trainer import to_device

    was_training = model.training
    model.eval()
    loss, correct = torch.zeros((), device=device), torch.zeros((), device=device)
    for batch in make_batches(model, seqs, labels, batch_size, by_length=True):
        batch = to_device(batch, device)
        logits = model.out(encode_batch(model, batch)[0]).float()
        y = batch[-2]
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    n = max(len(seqs), 1)
    return float(loss) / n, float(correct) / n


def fit_classifier(model: nn.Module, config: TrainerConfig, train_seqs: Sequence,
                   y_train: Sequence[int] | np.ndarray, val_seqs: Sequence | None = None,
                   y_val: Sequence[int] | np.ndarray | None = None, callbacks: Sequence[object] = ()) -> Trainer:
    """Train with early stopping on the validation loss (`config.patience`), a checkpoint after every
    epoch (`config.checkpoint`), then `callbacks`, then progress when `config.verbose`."""
    has_val = val_seqs is not None and len(val_seqs) > 0

    def validate(net: nn.Module) -> dict:
        loss, accuracy = dd.sharded_mean(evaluate, net, val_seqs, y_val, trainer.device)
        return {"val_loss": loss, "val_accuracy": accuracy}

    hooks = [EarlyStopping(config.patience or 1, "val_loss")]
    if config.checkpoint:
        hooks.append(Checkpoint(config.checkpoint))
    hooks += list(callbacks) + ([Progress()] if config.verbose else [])
    # Every step's norm is kept: the evidence of the report's claim on exploding gradients.
    trainer = Trainer(model, replace(config, record_grad_norms=True), hooks)
    batches = make_batches(model, train_seqs, y_train, config.batch_size, shuffle=True, seed=config.seed or 0)
    return trainer.fit(batches, validate if has_val else None)


@torch.no_grad()
def predict(model: nn.Module, seqs: Sequence, batch_size: int = 256,
            device: torch.device | str = "cpu", with_states: bool = False, with_attention: bool = False) -> dict:
    """{"proba": (N, C) float32} and optionally "states" (N, D) float32 (the pooled document vectors) and
    "attention" (a (len_i,) float32 array per document; needs a model that attends), in the input order.
    `seqs`: id arrays, or what the model's `prepare` made of them (a tree model's TreeDocs)."""
    from nlpdag.training.trainer import to_device

    if with_attention and not getattr(model, "attends", False):
        raise ValueError("with_attention needs a model that attends (attention pooling or a Transformer)")
    if isinstance(device, str):
        device = resolve_device(device, DEVICE_PARAM)
    model.to(device).eval()
    n = len(seqs)
    proba = np.zeros((n, model.config.n_classes), dtype=np.float32)
    states = np.zeros((n, model.config.out_dim), dtype=np.float32) if with_states else None
    attention: list[np.ndarray | None] = [None] * n
    for batch in make_batches(model, seqs, None, batch_size, by_length=True):
        index = batch[-1]
        batch = to_device(batch, device)
        pooled, weights = encode_batch(model, batch)
        idx = index.numpy()
        proba[idx] = torch.softmax(model.out(pooled).float(), dim=1).cpu().numpy()
        if with_states:
            states[idx] = pooled.float().cpu().numpy()
        if with_attention:
            for row, i in zip(weights.float().cpu().numpy(), idx):
                attention[i] = row[:len(seqs[i])]
    out = {"proba": proba}
    if with_states:
        out["states"] = states
    if with_attention:
        out["attention"] = attention
    return out


class TreeBatches(Batches):
    """A tree model's batches (Forest, labels (B,) or None, index (B,)): `Batches`' order (length
    buckets by token count), each batch's trees laid out level by level (nlpdag/models/trees.py)."""

    def collate(self, index: np.ndarray):
        labels = None if self.labels is None else torch.from_numpy(self.labels[index])
        return make_forest([self.seqs[i] for i in index]), labels, torch.from_numpy(index)
