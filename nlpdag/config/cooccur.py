"""The `cooccur` group of params.yaml, read by `cooccur`; validated when the stage starts."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from nlpdag.config.base import Group


class CooccurParams(Group):
    window: int = Field(default=10, ge=1, le=100)
    weighting: Literal["harmonic", "uniform"] = "harmonic"
    memory_mb: int = Field(default=512, ge=16)
