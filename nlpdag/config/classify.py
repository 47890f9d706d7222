"""The `classify` group of params.yaml, read by `classify`; validated when the stage starts."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from nlpdag.config.base import CGrid, Device, Group


Baseline = Literal["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "idf_mean", "docvec"]


# "<cell>[-bi]-<pooling>@<embedding>": e.g. lstm-bi-attention@word2vec_skipgram, gru-max@random, rnn-bi-last@glove__vae
MODEL_SPEC = re.compile(r"^(rnn|lstm|gru)(-bi)?-(last|max|mean|attention)@([A-Za-z0-9_]+)$")


class ClassifyParams(Group):
    baselines: list[Baseline] = ["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "idf_mean", "docvec"]
    baseline_methods: list[str] = ["word2vec_cbow", "word2vec_skipgram", "glove", "fasttext"]
    nb_C: CGrid = [0.1, 1.0, 10.0]
    nbsvm_C: CGrid = [0.001, 0.01, 0.1]
    dense_C: CGrid = [0.1, 1.0]
    models: list[str] = ["lstm-bi-attention@word2vec_skipgram", "lstm-bi-max@word2vec_skipgram", "rnn-bi-attention@word2vec_skipgram"]
    embed_dim: int = Field(default=100, ge=1)
    freeze_embeddings: bool = False
    hidden: int = Field(default=128, ge=1)
    layers: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)
    embed_dropout: float = Field(default=0.3, ge=0.0, lt=1.0)
    max_len: int = Field(default=256, ge=1)
    truncation: Literal["head", "tail", "head_tail"] = "head_tail"
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0.0)
    schedule: Literal["constant", "cosine", "linear"] = "cosine"
    warmup: float = Field(default=0.1, ge=0.0, lt=1.0)
    pretrained_lr: float = Field(default=1.0, ge=0.0)
    frozen_epochs: int = Field(default=1, ge=0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    optimizer: Literal["adam", "adamw"] = "adamw"
    clip: float = Field(default=1.0, ge=0.0)
    patience: int = Field(default=2, ge=1)
    pretraining: Literal["none", "lm", "autoencoder"] = "none"
    pretraining_epochs: int = Field(default=1, ge=1)
    pretraining_max_len: int = Field(default=100, ge=2)
    ensemble: list[str] = []       # none unless asked (params.yaml ships nbsvm, best_neural, docvec@doc2vec_dbow): its members must be rows of the run
    ensemble_C: CGrid = [0.01, 0.1, 1.0, 10.0]
    attention_docs: int = Field(default=6, ge=0)
    device: Device = "auto"

    @field_validator("models")
    @classmethod
    def _model_specs(cls, models: list[str]) -> list[str]:
        for spec in models:
            if not MODEL_SPEC.match(spec):
                raise ValueError(f"{spec!r} is not <cell>[-bi]-<pooling>@<embedding> with cell rnn|lstm|gru, "
                                 "pooling last|max|mean|attention (e.g. lstm-bi-attention@word2vec_skipgram)")
        if len(set(models)) != len(models):
            raise ValueError("a model is listed twice")
        return models

    @field_validator("ensemble")
    @classmethod
    def _members(cls, members: list[str]) -> list[str]:
        if len(set(members)) != len(members):
            raise ValueError("a member is listed twice")
        if len(members) == 1:
            raise ValueError("an ensemble needs two members or more (or none: [])")
        return members
