"""The schema of params.yaml, validated once when a stage starts.

Every group forbids unknown keys, so a typo stops the stage with one line naming the key
instead of silently running with a default.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      field_validator, model_validator)

from stages.errors import StageError

PARAMS_FILE = "params.yaml"


def _grid(values: list[float]) -> list[float]:
    if not values:
        raise ValueError("needs at least one value")
    if any(v <= 0 for v in values):
        raise ValueError("every value must be > 0")
    return sorted(set(values))


# An inverse regularisation C, or a grid of them chosen from on the validation slice (stages/evaluation.py).
CGrid = Annotated[list[float], BeforeValidator(lambda v: [v] if isinstance(v, (int, float)) else v),
                  AfterValidator(_grid)]


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Group):
    path: str | None = None
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl", "folder"] = "auto"
    text_column: str = "text"
    label_column: str = "label"
    source_column: str = "source"
    sources: list[str] | None = None
    max_docs: int | None = Field(default=None, ge=2)
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    drop_duplicates: bool = True


class TokeniseParams(_Group):
    lowercase: bool = True
    strip_html: bool = True
    stopwords: bool = False
    phrases: bool = False
    phrases_min_count: int = Field(default=5, ge=1)
    phrases_threshold: float = Field(default=10.0, gt=0.0)
    min_count: int = Field(default=5, ge=1)
    max_vocab: int | None = Field(default=None, ge=1)


class BowParams(_Group):
    ngram_max: int = Field(default=2, ge=1, le=5)
    min_df: int = Field(default=2, ge=1)
    sublinear_tf: bool = True
    C: CGrid = [4.0, 16.0, 64.0]


class CooccurParams(_Group):
    window: int = Field(default=10, ge=1, le=100)
    weighting: Literal["harmonic", "uniform"] = "harmonic"
    memory_mb: int = Field(default=512, ge=16)


Device = Literal["auto", "cpu", "cuda"]


class Word2VecParams(_Group):
    size: int = Field(default=100, ge=1)
    window: int = Field(default=5, ge=1)
    min_count: int = Field(default=5, ge=1)
    negative: int = Field(default=5, ge=0)
    hs: bool = False
    sample: float = Field(default=1e-3, ge=0.0)
    epochs: int = Field(default=5, ge=1)
    workers: int = Field(default=2, ge=1)


class GloveParams(_Group):
    size: int = Field(default=100, ge=1)
    x_max: float = Field(default=100.0, gt=0.0)
    alpha: float = Field(default=0.75, gt=0.0)
    learning_rate: float = Field(default=0.05, gt=0.0)
    epochs: int = Field(default=15, ge=1)
    batch_size: int = Field(default=4096, ge=1)
    device: Device = "auto"


class FasttextParams(_Group):
    size: int = Field(default=100, ge=1)
    window: int = Field(default=5, ge=1)
    min_count: int = Field(default=5, ge=1)
    min_n: int = Field(default=3, ge=1)
    max_n: int = Field(default=6, ge=0)
    bucket: int = Field(default=2_000_000, ge=1)
    negative: int = Field(default=5, ge=0)
    sample: float = Field(default=1e-3, ge=0.0)
    epochs: int = Field(default=5, ge=1)
    workers: int = Field(default=2, ge=1)


class Doc2VecParams(_Group):
    size: int = Field(default=100, ge=1)
    window: int = Field(default=5, ge=1)
    min_count: int = Field(default=5, ge=1)
    negative: int = Field(default=5, ge=0)
    sample: float = Field(default=1e-3, ge=0.0)
    epochs: int = Field(default=10, ge=1)
    workers: int = Field(default=2, ge=1)
    dbow_words: bool = True
    label_tags: bool = False
    train_on_all: bool = True


class PretrainedParams(_Group):
    path: str | None = None
    format: Literal["auto", "word2vec", "word2vec_binary", "glove", "fasttext_bin"] = "auto"


class EvaluateParams(_Group):
    analogy_restrict: int = Field(default=30000, ge=1)
    probe_words: list[str] = ["good", "bad", "movie", "actor", "boring", "brilliant"]
    neighbours: int = Field(default=8, ge=1)


Reducer = Literal["pca", "ae", "dae", "sae", "vae"]


class ReduceParams(_Group):
    dim: int = Field(default=50, ge=1)
    methods: list[str] = ["w2v_cbow", "w2v_skipgram", "glove", "fasttext", "d2v_dm", "d2v_dbow", "pretrained"]
    reducers: list[Reducer] = ["pca", "ae", "dae", "sae", "vae"]
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


class TopicsParams(_Group):
    n_topics: int = Field(default=20, ge=2)
    top_words: int = Field(default=10, ge=1)
    max_features: int = Field(default=5000, ge=10)
    stop_words: Literal["english", "none"] = "english"
    max_df: float = Field(default=0.5, gt=0.0, le=1.0)
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    device: Device = "auto"


Baseline = Literal["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "tfidf_mean", "docvec"]
# "<cell>[-bi]-<pooling>@<embedding>": e.g. lstm-bi-attention@w2v_skipgram, gru-max@random, rnn-bi-last@glove__vae
MODEL_SPEC = re.compile(r"^(rnn|lstm|gru)(-bi)?-(last|max|mean|attention)@([A-Za-z0-9_]+)$")


class ClassifyParams(_Group):
    baselines: list[Baseline] = ["tfidf_logreg", "nb_logreg", "nbsvm", "mean", "tfidf_mean", "docvec"]
    baseline_methods: list[str] = ["w2v_cbow", "w2v_skipgram", "glove", "fasttext"]
    nb_C: CGrid = [0.1, 1.0, 10.0]
    nbsvm_C: CGrid = [0.001, 0.01, 0.1]
    dense_C: CGrid = [0.1, 1.0]
    models: list[str] = ["lstm-bi-attention@w2v_skipgram", "lstm-bi-max@w2v_skipgram", "rnn-bi-attention@w2v_skipgram"]
    embed_dim: int = Field(default=100, ge=1)
    freeze_embeddings: bool = False
    hidden: int = Field(default=128, ge=1)
    layers: int = Field(default=1, ge=1)
    dropout: float = Field(default=0.3, ge=0.0, lt=1.0)
    max_len: int = Field(default=256, ge=1)
    truncation: Literal["head", "tail", "head_tail"] = "head_tail"
    epochs: int = Field(default=2, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=2e-3, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    optimizer: Literal["adam", "adamw"] = "adamw"
    clip: float = Field(default=1.0, ge=0.0)
    patience: int = Field(default=2, ge=1)
    pretrain: Literal["none", "lm", "autoencoder"] = "none"
    pretrain_epochs: int = Field(default=1, ge=1)
    pretrain_max_len: int = Field(default=100, ge=2)
    attention_docs: int = Field(default=6, ge=0)
    device: Device = "auto"

    @field_validator("models")
    @classmethod
    def _model_specs(cls, models: list[str]) -> list[str]:
        for spec in models:
            if not MODEL_SPEC.match(spec):
                raise ValueError(f"{spec!r} is not <cell>[-bi]-<pooling>@<embedding> with cell rnn|lstm|gru, "
                                 "pooling last|max|mean|attention (e.g. lstm-bi-attention@w2v_skipgram)")
        if len(set(models)) != len(models):
            raise ValueError("a model is listed twice")
        return models


class TsneParams(_Group):
    # Embedding methods or reduced vectors (<method>__<reducer>) whose word vectors are mapped.
    methods: list[str] = ["w2v_cbow", "w2v_skipgram", "glove", "fasttext", "d2v_dm", "d2v_dbow", "pretrained"]
    words: int = Field(default=2000, ge=10)
    docs: int = Field(default=2000, ge=10)
    doc_vectors: list[Literal["d2v_dm", "d2v_dbow", "classify"]] = ["d2v_dm", "d2v_dbow", "classify"]
    classify_model: str | None = None
    perplexity: float = Field(default=30.0, gt=0.0)
    n_iter: int = Field(default=400, ge=10)
    gradient: Literal["auto", "fft", "bh"] = "auto"
    theta: float = Field(default=0.8, gt=0.0, le=1.0)
    snippet_words: int = Field(default=25, ge=1)
    n_jobs: int = Field(default=2, ge=1)


class ReportParams(_Group):
    methods: list[str] = ["w2v_cbow", "w2v_skipgram", "glove", "fasttext", "d2v_dm", "d2v_dbow", "pretrained"]
    attention_model: str | None = None
    confusion_models: list[str] | None = None
    neighbours: int = Field(default=5, ge=1)


class Params(_Group):
    seed: int = Field(default=0, ge=0)
    chunk_docs: int = Field(default=5000, ge=1)
    data: DataParams = DataParams()
    tokenise: TokeniseParams = TokeniseParams()
    bow: BowParams = BowParams()
    cooccur: CooccurParams = CooccurParams()
    word2vec: Word2VecParams = Word2VecParams()
    glove: GloveParams = GloveParams()
    fasttext: FasttextParams = FasttextParams()
    doc2vec: Doc2VecParams = Doc2VecParams()
    pretrained: PretrainedParams = PretrainedParams()
    evaluate: EvaluateParams = EvaluateParams()
    reduce: ReduceParams = ReduceParams()
    topics: TopicsParams = TopicsParams()
    classify: ClassifyParams = ClassifyParams()
    tsne: TsneParams = TsneParams()
    report: ReportParams = ReportParams()

    @model_validator(mode="before")
    @classmethod
    def _no_nulls_for_groups(cls, values):
        # `group:` with nothing under it parses as None; treat it as "all defaults".
        if isinstance(values, dict):
            return {k: ({} if v is None and k in cls.model_fields and k not in ("seed", "chunk_docs") else v)
                    for k, v in values.items()}
        return values


def _describe(error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    got = error.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{key}: {error['msg'].removeprefix('Value error, ')}{shown}"


def parse_params(raw: dict | None, source: str = PARAMS_FILE) -> Params:
    """Validate a params mapping; raise StageError with one line naming the offending key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as exc:
        errors = exc.errors()
        first = _describe(errors[0])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        if errors[0]["type"] == "extra_forbidden":
            loc = errors[0]["loc"][:-1]
            model = Params
            for part in loc:
                model = model.model_fields[part].annotation
            allowed = ", ".join(model.model_fields)
            first += f"; allowed: {allowed}"
        raise StageError(f"{source}: {first}{more}") from None


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: parameters file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise StageError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if raw is not None and not isinstance(raw, dict):
        raise StageError(f"{path}: expected a mapping of parameter groups at the top level")
    return parse_params(raw, str(path))
