"""The `classify` group of params.yaml, read by `classify`; validated when the stage starts."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from nlpdag.config.base import CGrid, Device, Group


Baseline = Literal["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "idf_mean", "docvec"]


# One pattern per family, each ending in "@<embedding>":
# recurrent "<cell>[-bi]-<pooling>": lstm-bi-attention@word2vec_skipgram, gru-max@random, rnn-bi-last@glove__vae;
# recursive "<cell>-<tree>": treelstm-rae@word2vec_skipgram, recnn-balanced@glove;
# Transformer "transformer-<layers>x<d_model>": transformer-2x128@word2vec_skipgram.
RNN_SPEC = re.compile(r"^(rnn|lstm|gru)(-bi)?-(last|max|mean|attention)@([A-Za-z0-9_]+)$")
TREE_SPEC = re.compile(r"^(treelstm|recnn)-(balanced|left|right|rae)@([A-Za-z0-9_]+)$")
TRANSFORMER_SPEC = re.compile(r"^transformer-([1-9][0-9]*)x([1-9][0-9]*)@([A-Za-z0-9_]+)$")
SPEC_HELP = ("<cell>[-bi]-<pooling>@<embedding> (cell rnn|lstm|gru, pooling last|max|mean|attention), "
             "<treelstm|recnn>-<balanced|left|right|rae>@<embedding> or transformer-<layers>x<d_model>@<embedding>")


def parse_spec(spec: str) -> dict | None:
    """A model name's family and settings, or None when it matches no family."""
    if m := RNN_SPEC.match(spec):
        cell, bi, pooling, embedding = m.groups()
        return {"family": "rnn", "cell": cell, "bidirectional": bool(bi), "pooling": pooling, "embedding": embedding}
    if m := TREE_SPEC.match(spec):
        cell, tree, embedding = m.groups()
        return {"family": "tree", "cell": cell, "tree": tree, "embedding": embedding}
    if m := TRANSFORMER_SPEC.match(spec):
        layers, width, embedding = m.groups()
        return {"family": "transformer", "layers": int(layers), "d_model": int(width), "embedding": embedding}
    return None


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
    tree_segment: int = Field(default=30, ge=1)       # tokens per tree at most: longer documents are cut into segments
    rae_epochs: int = Field(default=2, ge=1)           # the recursive auto-encoder's (tree=rae)
    rae_sample: int = Field(default=20000, ge=1)       # training segments it learns from
    tree_docs: int = Field(default=4, ge=0)            # test sentences drawn with each node's prediction
    transformer_heads: int = Field(default=4, ge=1)
    transformer_ff: int = Field(default=256, ge=1)
    transformer_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    transformer_pooling: Literal["cls", "mean"] = "cls"
    device: Device = "auto"

    @field_validator("models")
    @classmethod
    def _model_specs(cls, models: list[str]) -> list[str]:
        for spec in models:
            parts = parse_spec(spec)
            if parts is None:
                raise ValueError(f"{spec!r} is not {SPEC_HELP} (e.g. lstm-bi-attention@word2vec_skipgram)")
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

    @model_validator(mode="after")
    def _heads(self) -> "ClassifyParams":
        for spec in self.models:
            parts = parse_spec(spec)
            if parts["family"] == "transformer" and parts["d_model"] % self.transformer_heads:
                raise ValueError(f"models: {spec!r}: d_model {parts['d_model']} is not a multiple of "
                                 f"transformer_heads {self.transformer_heads}")
        return self
