"""What every params group shares, and how a stage reads the groups it uses.

A stage validates only its own groups (`load_params(bow=BowParams)`), so a knob of one stage reruns
that stage and what reads its outputs, nothing else; `nlpdag run` and the tests validate the whole
file (nlpdag/config/params.py). Every group forbids unknown keys, so a typo stops the stage with
one line naming the key instead of silently running with a default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model


from nlpdag.errors import StageError

PARAMS_FILE = Path("params.yaml")

# The top-level keys of params.yaml: the two run-wide settings and one group per stage.
GROUPS = ("seed", "chunk_docs", "data", "tokenise", "bow", "cooccur", "word2vec", "glove", "fasttext", "doc2vec",
          "pretrained", "evaluate", "reduce", "topics", "classify", "tsne", "report")


def _grid(values: list[float]) -> list[float]:
    if not values:
        raise ValueError("needs at least one value")
    if any(v <= 0 for v in values):
        raise ValueError("every value must be > 0")
    return sorted(set(values))


# An inverse regularisation C, or a grid of them chosen from on the validation slice (nlpdag/evaluation/protocol.py).
CGrid = Annotated[list[float], BeforeValidator(lambda v: [v] if isinstance(v, (int, float)) else v),
                  AfterValidator(_grid)]

Device = Literal["auto", "cpu", "cuda"]
# A thread count, or auto: the stage's share of the cores (nlpdag/training/threads.py).
Threads = Union[Annotated[int, Field(ge=1)], Literal["auto"]]


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageParams(Group):
    """The run-wide settings beside the groups."""
    seed: int = Field(default=0, ge=0)
    chunk_docs: int = Field(default=5000, ge=1)


def no_nulls(values: Any, groups: set[str]) -> Any:
    # `group:` with nothing under it parses as None; treat it as "all defaults".
    if isinstance(values, dict):
        return {k: ({} if v is None and k in groups else v) for k, v in values.items()}
    return values


def _describe(error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    got = error.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{key}: {error['msg'].removeprefix('Value error, ')}{shown}"


def validate(model: type[BaseModel], raw: dict | None, source: str) -> Any:
    """`model` validated from a params mapping; StageError with one line naming the offending key."""
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        errors = exc.errors()
        first = _describe(errors[0])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        if errors[0]["type"] == "extra_forbidden":
            owner = model
            for part in errors[0]["loc"][:-1]:
                owner = owner.model_fields[part].annotation
            first += f"; allowed: {', '.join(owner.model_fields)}"
        raise StageError(f"{source}: {first}{more}") from None


def read_yaml(path: str | Path = PARAMS_FILE) -> dict | None:
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: parameters file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise StageError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if raw is not None and not isinstance(raw, dict):
        raise StageError(f"{path}: expected a mapping of parameter groups at the top level")
    return raw


def load_params(path: str | Path = PARAMS_FILE, **groups: type[Group]):
    """seed, chunk_docs and the named groups of params.yaml, validated (e.g. `load_params(bow=BowParams)`).
    Top-level keys are checked by name only, so a misspelt group is caught here too."""
    raw = read_yaml(path) or {}
    unknown = [key for key in raw if key not in GROUPS]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise StageError(f"{path}: {unknown[0]}: unknown key; allowed: {', '.join(GROUPS)}{more}")
    mine = {k: v for k, v in raw.items() if k in groups or k in StageParams.model_fields}
    model = create_model("Params", __base__=StageParams, **{name: (schema, schema()) for name, schema in groups.items()})
    return validate(model, no_nulls(mine, set(groups)), str(path))


def foreach_item(stage: str, choices) -> str:
    """The `${item}` dvc.yaml's foreach passes a stage as its argument (word2vec's architecture,
    doc2vec's mode), checked against `choices`."""
    import sys

    item = sys.argv[1] if len(sys.argv) > 1 else ""
    if item not in choices:
        raise StageError(f"usage: python -m stages.{stage} {{{'|'.join(choices)}}} (got {item!r})")
    return item
