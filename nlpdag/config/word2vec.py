"""The `word2vec` group of params.yaml, read by `word2vec@cbow/@skipgram`; validated when the stage starts."""
from __future__ import annotations

from pydantic import Field

from nlpdag.config.base import Group, Threads


class Word2VecParams(Group):
    size: int = Field(default=100, ge=1)
    window: int = Field(default=5, ge=1)
    min_count: int = Field(default=5, ge=1)
    negative: int = Field(default=5, ge=0)
    hs: bool = False
    sample: float = Field(default=1e-3, ge=0.0)
    epochs: int = Field(default=5, ge=1)
    workers: Threads = "auto"
