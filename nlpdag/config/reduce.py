"""The `reduce` group of params.yaml, read by `reduce`; validated when the stage starts."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from nlpdag.catalog.reduce import REDUCERS
from nlpdag.config.base import Device, Group


Reducer = Literal[tuple(REDUCERS)]


class ReduceParams(Group):
    dim: int = Field(default=50, ge=1)
    methods: list[str] = ["word2vec_cbow", "word2vec_skipgram", "glove", "fasttext", "doc2vec_dm", "doc2vec_dbow", "pretrained"]
    reducers: list[Reducer] = ["pca", "ae", "dae", "stacked_ae", "vae"]
    standardise: bool = True
    activation: Literal["tanh", "relu", "sigmoid", "linear"] = "tanh"
    noise: Literal["masking", "gaussian"] = "masking"
    noise_level: float = Field(default=0.2, ge=0.0, lt=1.0)
    stacked_sizes: list[int] = [75]
    stacked_pretrain: bool = True
    vae_beta: float = Field(default=1.0, ge=0.0)
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    patience: int = Field(default=3, ge=1)
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    device: Device = "auto"
