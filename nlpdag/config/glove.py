"""The `glove` group of params.yaml, read by `glove`; validated when the stage starts."""
from __future__ import annotations

from pydantic import Field

from nlpdag.config.base import Device, Group


class GloveParams(Group):
    size: int = Field(default=100, ge=1)
    x_max: float = Field(default=100.0, gt=0.0)
    alpha: float = Field(default=0.75, gt=0.0)
    learning_rate: float = Field(default=0.05, gt=0.0)
    epochs: int = Field(default=15, ge=1)
    batch_size: int = Field(default=4096, ge=1)
    device: Device = "auto"
