"""The `tsne` group of params.yaml, read by `tsne`; validated when the stage starts."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from nlpdag.config.base import Group, Threads


class TsneParams(Group):
    # Embedding methods or reduced vectors (<method>__<reducer>) whose word vectors are mapped.
    methods: list[str] = ["word2vec_cbow", "word2vec_skipgram", "glove", "fasttext", "doc2vec_dm", "doc2vec_dbow", "pretrained"]
    words: int = Field(default=2000, ge=10)
    docs: int = Field(default=2000, ge=10)
    doc_vectors: list[Literal["doc2vec_dm", "doc2vec_dbow", "classify"]] = ["doc2vec_dm", "doc2vec_dbow", "classify"]
    classify_model: str | None = None
    perplexity: float = Field(default=30.0, gt=0.0)
    n_iter: int = Field(default=400, ge=10)
    gradient: Literal["auto", "fft", "bh"] = "auto"
    theta: float = Field(default=0.8, gt=0.0, le=1.0)
    snippet_words: int = Field(default=25, ge=1)
    n_jobs: Threads = "auto"
