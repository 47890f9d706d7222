"""The `evaluate` group of params.yaml, read by `evaluate`; validated when the stage starts."""
from __future__ import annotations

from pydantic import Field

from nlpdag.config.base import Group


class EvaluateParams(Group):
    analogy_restrict: int = Field(default=30000, ge=1)
    probe_words: list[str] = ["good", "bad", "movie", "actor", "boring", "brilliant"]
    neighbours: int = Field(default=8, ge=1)
