"""The Trainer's learning rate: a schedule over the steps of a fit, and parameter groups with their
own scale of it and their own frozen first epochs.

- `lr_factor(step, total, schedule, warmup)`: a pure function of the step, so a resumed run (which
  knows its epoch) sets the very rate an uninterrupted one would. `warmup` is the share of all steps
  that rises linearly from near 0 to 1 (Adam's moments are noisy at first, and a pre-initialised
  embedding is easily wrecked by the first large steps); after it `cosine` (Loshchilov & Hutter 2017)
  or `linear` (ULMFiT's slanted triangle, Howard & Ruder 2018) falls to 0 at the last step, `constant`
  stays at 1.
- `ParamGroup(prefix, lr_scale, frozen_epochs)`: the parameters whose name starts with `prefix` learn
  at `lr_scale` times the rate (discriminative fine-tuning: pre-initialised layers move less than the
  fresh ones above them) and not at all during the first `frozen_epochs` epochs (gradual unfreezing:
  the new layers first learn to use them as they are). Frozen means a learning rate of 0, not
  `requires_grad=False`, so DistributedDataParallel sees the same parameters in every epoch; AdamW's
  decay is scaled by the rate too, so a frozen parameter keeps its exact values.
- `param_groups`: the optimizer's groups; weight decay only on matrices outside the embedding (minGPT's
  rule: decaying biases, norms and embedding rows only shrinks them).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from torch import nn

SCHEDULES = ("constant", "cosine", "linear")


@dataclass(frozen=True)
class ParamGroup:
    prefix: str               # parameter names starting with it, e.g. "embedding." or "rnns."
    lr_scale: float = 1.0
    frozen_epochs: int = 0


def lr_factor(step: int, total: int, schedule: str = "constant", warmup: float = 0.0) -> float:
    """The learning rate's multiplier at `step` (0-based) of `total` steps."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r}: expected one of {list(SCHEDULES)}")
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup must be in [0, 1), got {warmup}")
    total = max(total, 1)
    warm = int(round(warmup * total))
    if step < warm:
        return (step + 1) / (warm + 1)  # never exactly 0: the first step already moves
    if schedule == "constant":
        return 1.0
    progress = min((step - warm) / max(total - warm, 1), 1.0)  # 0 at the first step after warm-up
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


def param_groups(model: nn.Module, groups: Sequence[ParamGroup], weight_decay: float) -> list[dict]:
    """Optimizer groups over the trainable parameters: one per (ParamGroup or the rest, decayed or
    not), each with its `lr_scale` and `frozen_epochs`; empty groups left out. The first matching
    prefix wins."""
    buckets: dict[tuple[int, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        k = next((i for i, g in enumerate(groups) if name.startswith(g.prefix)), len(groups))
        decay = param.ndim >= 2 and not isinstance(_owner(model, name), nn.Embedding)
        buckets.setdefault((k, decay), []).append(param)
    out = []
    for (k, decay), params in sorted(buckets.items()):
        group = groups[k] if k < len(groups) else ParamGroup("")
        out.append({"params": params, "weight_decay": weight_decay if decay else 0.0,
                    "lr_scale": group.lr_scale, "frozen_epochs": group.frozen_epochs})
    return out


def _owner(model: nn.Module, name: str) -> nn.Module:
    module_name = name.rpartition(".")[0]
    return model.get_submodule(module_name) if module_name else model


def set_lr(optimizer, base_lr: float, factor: float, epoch: int) -> None:
    """Every group's rate for a step of `epoch` (1-based): base x schedule x its scale, 0 while frozen."""
    for group in optimizer.param_groups:
        frozen = epoch <= group.get("frozen_epochs", 0)
        group["lr"] = 0.0 if frozen else base_lr * factor * group.get("lr_scale", 1.0)
