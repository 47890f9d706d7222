"""The `classify` group of params.yaml, read by `classify`; validated when the stage starts."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from nlpdag.config.base import CGrid, Device, Group
from nlpdag.names import MODEL_KEY, parse_embedding, parse_model


Baseline = Literal["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "idf_mean", "docvec", "nb_docvec"]
DocvecMethod = Literal["doc2vec_dm", "doc2vec_dbow", "doc2vec_ngram"]


class ClassifyParams(Group):
    baselines: list[Baseline] = ["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "idf_mean", "docvec", "nb_docvec"]
    baseline_methods: list[str] = ["word2vec_cbow", "word2vec_skipgram", "glove", "fasttext"]
    nb_C: CGrid = [0.1, 1.0, 10.0]
    nbsvm_C: CGrid = [0.001, 0.01, 0.1]
    dense_C: CGrid = [0.1, 1.0]
    nb_ngram_max: int = Field(default=3, ge=1, le=5)   # nb_logreg, nbsvm and nb_docvec: word 1..n-grams
    nb_docvec: list[DocvecMethod] = ["doc2vec_ngram", "doc2vec_dbow"]   # an nb_docvec@<method> row for each
    nb_docvec_C: CGrid = [0.1, 0.3, 1.0]
    nb_docvec_scale: float = Field(default=0.3, gt=0.0)   # the document vectors' weight beside the n-grams
    # <key>: <spec>; each trains in its own DVC stage, neural@<key> (DVC stage names cannot hold the spec's "@")
    models: dict[str, str] = {"bilstm_attention": "lstm-bi-attention@word2vec_skipgram",
                              "bilstm_max": "lstm-bi-max@word2vec_skipgram", "birnn_attention": "rnn-bi-attention@word2vec_skipgram"}
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
    ensemble: list[str] = []       # none unless asked (params.yaml ships one member per family): its members must be rows of the run
    ensemble_C: CGrid = [0.01, 0.1, 1.0, 10.0]
    tree_segment: int = Field(default=30, ge=1)       # tokens per tree at most: longer documents are cut into segments
    rae_epochs: int = Field(default=2, ge=1)           # the recursive auto-encoder's (tree=rae)
    rae_sample: int = Field(default=20000, ge=1)       # training segments it learns from
    transformer_heads: int = Field(default=4, ge=1)
    transformer_ff: int = Field(default=256, ge=1)
    transformer_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    transformer_pooling: Literal["cls", "mean"] = "cls"
    device: Device = "auto"
    # PyTorch threads of each neural@<key> stage on the CPU: a tracked number, as the count changes the order
    # of float sums; 1 keeps several models training at once (`nlpdag run --jobs`) from stalling each other.
    threads: int = Field(default=1, ge=1)

    @field_validator("models", mode="before")
    @classmethod
    def _model_keys(cls, models):
        if isinstance(models, list):
            raise ValueError("a mapping <key>: <spec> (the key names the stage neural@<key>; DVC stage names "
                             "cannot hold the spec's '@'), e.g. {bilstm_attention: lstm-bi-attention@word2vec_skipgram}")
        return {} if models is None else models

    @field_validator("models")
    @classmethod
    def _model_specs(cls, models: dict[str, str]) -> dict[str, str]:
        for key, spec in models.items():
            if not MODEL_KEY.match(key):
                raise ValueError(f"{key!r}: a key is letters, digits, '_' and '-' (it names the stage neural@<key>)")
            parse_model(spec)  # ValueError: what a spec may be
        if len(set(models.values())) != len(models):
            raise ValueError("a model is listed twice")
        return models

    @field_validator("baseline_methods")
    @classmethod
    def _methods(cls, methods: list[str]) -> list[str]:
        for name in methods:
            if name == "random" or parse_embedding(name) is None:  # ValueError: what is allowed
                raise ValueError("random has no vectors to average; name a method or <method>__<reducer>")
        return methods

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
        for spec in self.models.values():
            model = parse_model(spec)
            if model.family == "transformer" and model.d_model % self.transformer_heads:
                raise ValueError(f"models: {spec!r}: d_model {model.d_model} is not a multiple of "
                                 f"transformer_heads {self.transformer_heads}")
        return self

    def recipe(self) -> dict:
        """The keys every neural@<key> stage reads: nlpdag/models/classifier.py's Recipe (the rest are the
        `classify` stage's: its baselines, the model list and the ensemble)."""
        return self.model_dump(exclude=set(JOIN_KEYS) | {"threads"})


JOIN_KEYS = ("baselines", "baseline_methods", "nb_C", "nbsvm_C", "dense_C", "nb_ngram_max", "nb_docvec", "nb_docvec_C",
             "nb_docvec_scale", "models", "ensemble", "ensemble_C")
