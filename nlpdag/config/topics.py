"""The `topics` group of params.yaml, read by `topics`; validated when the stage starts."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from nlpdag.config.base import Device, Group


class TopicsParams(Group):
    n_topics: int = Field(default=20, ge=2)
    top_words: int = Field(default=10, ge=1)
    max_features: int = Field(default=5000, ge=10)
    stop_words: Literal["english", "none"] = "english"
    max_df: float = Field(default=0.5, gt=0.0, le=1.0)
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    device: Device = "auto"
