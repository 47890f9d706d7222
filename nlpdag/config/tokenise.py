"""The `tokenise` group of params.yaml, read by `tokenise`; validated when the stage starts."""
from __future__ import annotations

from pydantic import Field

from nlpdag.config.base import Group


class TokeniseParams(Group):
    lowercase: bool = True
    strip_html: bool = True
    stopwords: bool = False
    phrases: bool = False
    phrases_min_count: int = Field(default=5, ge=1)
    phrases_threshold: float = Field(default=10.0, gt=0.0)
    min_count: int = Field(default=5, ge=1)
    max_vocab: int | None = Field(default=None, ge=1)
