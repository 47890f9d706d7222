"""The whole of params.yaml in one schema: `nlpdag run`, the sweep grid and the tests validate it all
at once; a stage validates only its own groups (nlpdag/config/base.py `load_params`)."""
from __future__ import annotations

from pathlib import Path

from pydantic import model_validator

from nlpdag.config.base import PARAMS_FILE
from nlpdag.config.base import GROUPS, StageParams, no_nulls, read_yaml, validate
from nlpdag.config.bow import BowParams
from nlpdag.config.classify import ClassifyParams
from nlpdag.config.cooccur import CooccurParams
from nlpdag.config.data import DataParams
from nlpdag.config.doc2vec import Doc2VecParams
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.config.fasttext import FasttextParams
from nlpdag.config.glove import GloveParams
from nlpdag.config.pretrained import PretrainedParams
from nlpdag.config.reduce import ReduceParams
from nlpdag.config.report import ReportParams
from nlpdag.config.tokenise import TokeniseParams
from nlpdag.config.topics import TopicsParams
from nlpdag.config.tsne import TsneParams
from nlpdag.config.word2vec import Word2VecParams
from nlpdag.names import parse_model


class Params(StageParams):
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
    def no_nulls_for_groups(cls, values):
        return no_nulls(values, set(GROUPS) - set(StageParams.model_fields))

    @model_validator(mode="after")
    def _produced(self) -> "Params":
        """Across groups: every reduced embedding a stage reads (<method>__<reducer>) is one `reduce`
        makes with these params, and `pretrained` is used only when pretrained.path is set; else the
        stage reading it would fail after an hour of training upstream."""
        used = [(f"classify.models.{key}", parse_model(spec).embedding.name) for key, spec in self.classify.models.items()]
        used += [("classify.baseline_methods", m) for m in self.classify.baseline_methods]
        used += [("tsne.methods", m) for m in self.tsne.methods if "__" in m]
        for key, name in used:
            method, _, reducer = name.partition("__")
            if reducer and (method not in self.reduce.methods or reducer not in self.reduce.reducers):
                raise ValueError(f"{key}: {name!r} is not made by `reduce` (reduce.methods: "
                                 f"{', '.join(self.reduce.methods)}; reduce.reducers: {', '.join(self.reduce.reducers)})")
            if method == "pretrained" and self.pretrained.path is None:
                raise ValueError(f"{key}: {name!r} needs pretrained.path (your own vector file)")
        return self


def parse_params(raw: dict | None, source: str = str(PARAMS_FILE)) -> Params:
    """Validate a params mapping; raise StageError with one line naming the offending key."""
    return validate(Params, raw, source)


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    return parse_params(read_yaml(path), str(path))
