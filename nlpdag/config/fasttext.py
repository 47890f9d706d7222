"""The `fasttext` group of params.yaml, read by `fasttext`; validated when the stage starts."""
from __future__ import annotations

from pydantic import Field

from nlpdag.config.base import Group, Threads


class FasttextParams(Group):
    size: int = Field(default=100, ge=1)
    window: int = Field(default=5, ge=1)
    min_count: int = Field(default=5, ge=1)
    min_n: int = Field(default=3, ge=1)
    max_n: int = Field(default=6, ge=0)
    bucket: int = Field(default=2_000_000, ge=1)
    negative: int = Field(default=5, ge=0)
    sample: float = Field(default=1e-3, ge=0.0)
    epochs: int = Field(default=5, ge=1)
    workers: Threads = "auto"
