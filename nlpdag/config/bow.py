"""The `bow` group of params.yaml, read by `bow`; validated when the stage starts."""
from __future__ import annotations

from pydantic import Field

from nlpdag.config.base import CGrid, Group


class BowParams(Group):
    ngram_max: int = Field(default=2, ge=1, le=5)
    min_df: int = Field(default=2, ge=1)
    sublinear_tf: bool = True
    C: CGrid = [4.0, 16.0, 64.0]
