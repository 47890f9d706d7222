"""Saved classifiers of every family (`nlpdag/classify/outputs.py` writes them, `nlpdag predict` reads them):
the family, its config and weights in one torch file, written atomically; a tree model over `rae` trees
carries its recursive auto-encoder (and the word vectors it reads), so it builds the same trees again."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path
from nlpdag.models.recursive import RAE, TreeClassifier, TreeConfig
from nlpdag.models.rnn import RNNClassifier, RNNConfig
from nlpdag.models.transformer import TransformerClassifier, TransformerConfig
from nlpdag.training.callbacks import read_checkpoint
from nlpdag.training.trainer import TrainerConfig


FAMILIES = {"RNNClassifier": "rnn", "TreeClassifier": "tree", "TransformerClassifier": "transformer"}


def build_model(family: str, config: dict, rae_dim: int | None = None) -> nn.Module:
    """An untrained model of a family from its config's fields (a checkpoint's)."""
    if family == "rnn":
        return RNNClassifier(RNNConfig(**config))
    if family == "tree":
        c = TreeConfig(**config)
        rae = RAE(torch.zeros(c.vocab_size, rae_dim or c.embed_dim)) if c.tree == "rae" else None
        return TreeClassifier(c, rae=rae)
    if family == "transformer":
        return TransformerClassifier(TransformerConfig(**config))
    raise ValueError(f"unknown model family {family!r}")


def save_checkpoint(path: str | Path, model: nn.Module, config: TrainerConfig | None, extra: dict) -> None:
    """The model (family, config + weights), the training config and `extra` (plain Python values), atomically."""
    rae = getattr(model, "rae", None)
    state = {"family": FAMILIES[type(model).__name__], "model_config": asdict(model.config),
             "rae_dim": None if rae is None else int(rae.leaves.shape[1]), "state_dict": model.state_dict(),
             "train_config": asdict(config) if config is not None else None, "extra": extra, "done": True}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """(model in eval mode on the CPU, extra) from `save_checkpoint` or a finished `Trainer` checkpoint."""
    state = read_checkpoint(path)
    try:
        model = build_model(state.get("family", "rnn"), state["model_config"], state.get("rae_dim"))
        model.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        raise StageError(f"{path}: checkpoint does not hold a classifier nlpdag can rebuild ({exc})") from None
    return model.eval(), state.get("extra") or {}
