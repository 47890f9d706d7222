"""The Trainer's callbacks that hold training state (nlpdag/training/trainer.py): early stopping and
checkpoint/resume. Progress and DVCLive are nlpdag/training/progress.py's."""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import torch

from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path
from nlpdag.training import distributed as dd


class EarlyStopping:
    """Keep the weights of the best `monitor` value (lowest); stop after `patience` epochs without a
    better one; at the end, the model gets the best epoch's weights back."""

    def __init__(self, patience: int, monitor: str = "val_loss"):
        self.patience, self.monitor = patience, monitor
        self.best, self.best_epoch, self.best_state, self.wait = math.inf, 0, None, 0

    def on_epoch_end(self, trainer) -> None:
        if not getattr(trainer, "has_validation", True):  # nothing to judge by: the last epoch counts
            return
        value = trainer.history_[-1].get(self.monitor, math.nan)
        if value < self.best:  # a NaN (a diverged model) is no improvement
            self.best, self.best_epoch, self.wait = value, trainer.epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        else:
            self.wait += 1
            trainer.stop = self.wait >= self.patience
        trainer.best_epoch_ = self.best_epoch

    def on_train_end(self, trainer) -> None:
        if self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)
            trainer.best_epoch_ = self.best_epoch

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "best_state": self.best_state, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.best_state, self.wait = (state["best"], state["best_epoch"],
                                                                  state["best_state"], state["wait"])


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a truncated or foreign file
        raise StageError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None


class Checkpoint:
    """After every epoch, everything a resumed run needs to end with the same weights as an uninterrupted
    one (model, optimizer, scaler, RNG state, history, early stopping), written atomically by rank 0; at
    the start of `fit`, resumed from when the file exists (rank 0 reads it and sends it to the others)."""

    def __init__(self, path: str | Path, extra: dict | None = None):
        self.path, self.extra = Path(path), extra or {}

    def state(self, trainer, done: bool) -> dict:
        stopper = trainer.callback(EarlyStopping)
        return {"model_config": asdict(trainer.model.config), "state_dict": trainer.model.state_dict(),
                "train_config": asdict(trainer.config), "optimizer": trainer.optimizer.state_dict(),
                "scaler": trainer.scaler.state_dict(), "epoch": trainer.epoch, "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "history": trainer.history_, "grad_norms": trainer.grad_norms_, "best_epoch": trainer.best_epoch_,
                "early_stopping": stopper.state_dict() if stopper else None, "stop": trainer.stop, "done": done,
                "extra": {"name": trainer.config.name, **self.extra}}

    def save(self, trainer, done: bool = False) -> None:
        if dd.is_main():
            with atomic_path(self.path) as tmp:
                torch.save(self.state(trainer, done), tmp)

    def on_fit_start(self, trainer) -> None:
        state = dd.broadcast(read_checkpoint(self.path) if dd.is_main() and self.path.exists() else None)
        if state is None:
            return
        try:
            trainer.model.load_state_dict(state["state_dict"])
            trainer.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise StageError(f"{self.path}: checkpoint does not match this model ({exc}); delete it to retrain") from None
        trainer.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        trainer.epoch, trainer.history_, trainer.grad_norms_ = state["epoch"], state["history"], state["grad_norms"]
        trainer.best_epoch_, trainer.stop, trainer.done = state["best_epoch"], state["stop"], state["done"]
        stopper = trainer.callback(EarlyStopping)
        if stopper is not None and state["early_stopping"] is not None:
            stopper.load_state_dict(state["early_stopping"])

    def on_epoch_end(self, trainer) -> None:
        self.save(trainer)

    def on_train_end(self, trainer) -> None:
        self.save(trainer, done=True)
