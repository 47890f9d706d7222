"""The `doc2vec` group of params.yaml, read by `doc2vec@dm/@dbow`; validated when the stage starts."""
from __future__ import annotations

from pydantic import Field

from nlpdag.config.base import Group, Threads


class Doc2VecParams(Group):
    size: int = Field(default=100, ge=1)
    window: int = Field(default=5, ge=1)
    min_count: int = Field(default=5, ge=1)
    negative: int = Field(default=5, ge=0)
    sample: float = Field(default=1e-3, ge=0.0)
    epochs: int = Field(default=10, ge=1)
    workers: Threads = "auto"
    dbow_words: bool = True
    label_tags: bool = False
    train_on_all: bool = True
    ngram_max: int = Field(default=3, ge=2)   # doc2vec@ngram: a document vector predicts its words and 2..n-grams
    ngram_epochs: int = Field(default=20, ge=1)   # doc2vec@ngram's epochs (the others': epochs)
