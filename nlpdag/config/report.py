"""The `report` group of params.yaml, read by `report`; validated when the stage starts."""
from __future__ import annotations

from pydantic import Field

from nlpdag.config.base import Group


class ReportParams(Group):
    methods: list[str] = ["word2vec_cbow", "word2vec_skipgram", "glove", "fasttext", "doc2vec_dm", "doc2vec_dbow", "pretrained"]
    attention_model: str | None = None
    confusion_models: list[str] | None = None
    neighbours_shown: int = Field(default=5, ge=1)
    attention_docs: int = Field(default=6, ge=0, le=50)   # test documents shown with their attention weights
    tree_docs: int = Field(default=4, ge=0, le=50)        # short test sentences drawn with every node's prediction
