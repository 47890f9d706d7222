"""The `pretrained` group of params.yaml, read by `pretrained`; validated when the stage starts."""
from __future__ import annotations

from typing import Literal

from nlpdag.config.base import Group


class PretrainedParams(Group):
    path: str | None = None
    format: Literal["auto", "word2vec", "word2vec_binary", "glove", "fasttext_bin"] = "auto"
