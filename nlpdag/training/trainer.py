"""The one training loop of every neural model (minGPT-style): classifiers, auto-encoders, topic
auto-encoders and classifier pre-training.

A model exposes its loss on a batch: `model.batch_loss(batch) -> (objective, stats)`, where stats are
per-batch sums (a tensor or a number each; `n` counts the examples, `tokens` the real tokens) that
the Trainer adds up over the epoch and divides by `n` into `train_<stat>`. The training data is an
object with `epoch_batches(epoch, device, shard) -> iterator of (batch, weight)` and `__len__` (batches per epoch):
it owns the shuffling, so every epoch's order is a function of (seed, epoch) alone and a resumed run
replays it. Validation is the caller's `validate(model) -> {"val_<stat>": value}`.

The Trainer owns the rest: the device (CUDA when asked and present, each torch.distributed rank on
its own), the optimizer and its learning rate per step (warm-up, decay, parameter groups with their own
scale and frozen first epochs: nlpdag/training/schedule.py), mixed precision (autocast + GradScaler) on CUDA only, DistributedDataParallel
under torchrun (each rank steps its slice of every global batch, nlpdag/training/distributed.py),
gradient-norm clipping with the pre-clipping norms kept, and the callbacks: objects with optional
on_fit_start / on_epoch_start / on_batch_end / on_epoch_end / on_train_end(trainer) hooks
(nlpdag/training/callbacks.py: progress, DVCLive, early stopping, checkpoint/resume).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from nlpdag.training import distributed as dd
from nlpdag.training.devices import autocast, resolve_device
from nlpdag.training.schedule import ParamGroup, lr_factor, param_groups, set_lr


class TrainData(Protocol):
    def __len__(self) -> int: ...
    def epoch_batches(self, epoch: int, device: torch.device, shard: bool) -> Iterator[tuple[object, float]]: ...


@dataclass
class TrainerConfig:
    name: str = "model"
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 1e-3
    schedule: str = "constant"        # constant | cosine | linear, per step after the warm-up (schedule.py)
    warmup: float = 0.0               # share of all steps warming up linearly
    groups: tuple[ParamGroup, ...] = ()  # parameters with their own rate scale and frozen first epochs
    weight_decay: float = 0.0         # AdamW's, on the matrices outside the embedding
    optimizer: str = "adamw"          # adam | adamw
    fused: bool = False               # one optimizer kernel for all parameters (same update, less overhead)
    clip: float = 0.0                 # max global gradient norm; 0: no clipping
    record_grad_norms: bool = False   # keep every step's norm before clipping (`grad_norms_`)
    amp: bool = True                  # mixed precision, on CUDA only
    device: str = "cpu"               # auto | cpu | cuda
    device_param: str = "device"      # the params.yaml key named when CUDA is asked for and absent
    seed: int | None = 0              # the global generator (dropout, noise) is seeded at fit; None: the caller's
    patience: int | None = None       # early stopping: epochs without a better validation value; None: off
    checkpoint: str | None = None     # a file written after every epoch and resumed from when it exists
    verbose: bool = False             # progress: a bar on a terminal, a line per epoch
    data_parallel: bool = True        # under torchrun: DDP, each rank a slice of every batch; False: each rank alone


def make_optimizer(model: nn.Module, config: TrainerConfig) -> torch.optim.Optimizer:
    if config.optimizer not in ("adam", "adamw"):
        raise ValueError(f"optimizer={config.optimizer!r}: expected adam or adamw")
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    extra = {"fused": True} if config.fused else {}
    groups = param_groups(model, config.groups, config.weight_decay)
    return cls(groups, lr=config.learning_rate, **extra)


class _BatchLoss(nn.Module):
    """The model's batch loss as a forward pass, so that DistributedDataParallel sees it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.batch_loss(batch)


def to_device(batch, device: torch.device):
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    return batch.to(device) if hasattr(batch, "to") else batch  # e.g. SparseRows


def _total(values: list) -> float | int:
    if values and torch.is_tensor(values[0]):
        return torch.stack(values).sum().item()
    return sum(values)


class Trainer:
    def __init__(self, model: nn.Module, config: TrainerConfig, callbacks: Sequence[object] = ()):
        self.model, self.config = model, config
        self.callbacks = list(callbacks)
        self.history_: list[dict] = []   # per epoch: epoch, train_<stat>, val_<stat> (with validation), seconds, tokens_per_second
        self.grad_norms_: list[float] = []
        self.best_epoch_ = 0             # the epoch whose weights the model ends with (early stopping moves it)
        self.tokens_per_second_ = math.nan
        self.epoch, self.stop, self.done = 0, False, False

    def trigger(self, event: str) -> None:
        for callback in self.callbacks:
            hook = getattr(callback, event, None)
            if hook is not None:
                hook(self)

    def callback(self, kind: type) -> object | None:
        return next((c for c in self.callbacks if isinstance(c, kind)), None)

    def fit(self, train: TrainData, validate: Callable[[nn.Module], dict] | None = None) -> "Trainer":
        cfg, model = self.config, self.model
        self.device = device = dd.local_device(resolve_device(cfg.device, cfg.device_param))
        use_amp = cfg.amp and device.type == "cuda"
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed)
        model.to(device)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(model, cfg)
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        self.n_batches = len(train)
        self.trigger("on_fit_start")  # a checkpoint resumes here: weights, optimizer, epoch, history
        parallel = dd.is_distributed() and cfg.data_parallel
        # After resuming: DDP starts every rank from rank 0's weights.
        net = dd.wrap(_BatchLoss(model), device) if parallel else _BatchLoss(model)
        max_norm = cfg.clip if cfg.clip > 0 else math.inf
        total_steps = cfg.epochs * self.n_batches
        total_tokens, total_seconds = 0, 0.0
        while not self.done and not self.stop and self.epoch < cfg.epochs:
            self.epoch += 1
            start = time.perf_counter()
            model.train()
            if parallel and cfg.seed is not None:
                torch.manual_seed(dd.rank_seed(cfg.seed, self.epoch))
            self.trigger("on_epoch_start")
            sums: dict[str, list] = {}
            norms = []
            step = (self.epoch - 1) * self.n_batches  # a function of the epoch: a resumed run continues it
            for batch, weight in train.epoch_batches(self.epoch, device, shard=parallel):
                set_lr(self.optimizer, cfg.learning_rate, lr_factor(step, total_steps, cfg.schedule, cfg.warmup),
                       self.epoch)
                step += 1
                batch = to_device(batch, device)
                self.optimizer.zero_grad(set_to_none=True)
                with autocast(device, use_amp):
                    objective, stats = net(batch)
                self.scaler.scale(objective if weight == 1.0 else objective * weight).backward()  # DDP: averaged
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
                if cfg.clip > 0 or cfg.record_grad_norms:
                    norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)  # the norm before clipping
                    if cfg.record_grad_norms:
                        norms.append(norm)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                for key, value in stats.items():
                    sums.setdefault(key, []).append(value if weight > 0 else value * 0)
                self.batch_stats = stats
                self.trigger("on_batch_end")
            train_seconds = time.perf_counter() - start
            if norms:
                self.grad_norms_.extend(torch.stack(norms).float().cpu().tolist())
            totals = {key: _total(values) for key, values in sums.items()}
            if parallel:
                totals = dict(zip(totals, dd.sum_over_ranks(list(totals.values()), device)))
            n, tokens = totals.pop("n"), totals.pop("tokens", None)
            row = {"epoch": self.epoch, **{f"train_{k}": float(v) / n for k, v in totals.items()}}
            self.has_validation = validate is not None
            if validate is not None:  # none: no val_<stat> at all (a NaN column in every log line said nothing)
                row |= validate(model)
            row["seconds"] = time.perf_counter() - start
            if tokens is not None:
                row["tokens_per_second"] = int(tokens) / train_seconds
                total_tokens, total_seconds = total_tokens + int(tokens), total_seconds + train_seconds
            self.history_.append(row)
            self.best_epoch_ = self.epoch
            self.trigger("on_epoch_end")
        if total_seconds > 0:
            self.tokens_per_second_ = total_tokens / total_seconds
        elif self.history_ and "tokens_per_second" in self.history_[-1]:
            self.tokens_per_second_ = float(np.mean([h["tokens_per_second"] for h in self.history_]))
        self.trigger("on_train_end")
        model.eval()
        return self
