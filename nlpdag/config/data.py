"""The `data` group of params.yaml, read by `ingest`; validated when the stage starts."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from nlpdag.config.base import Group


class DataParams(Group):
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
    # What each label means, shown in every table, chart and `nlpdag predict` line (keys: the file's
    # label values). null: the default corpus's 0/1 are negative/positive; a user corpus keeps its own.
    label_names: Annotated[dict[str, str] | None,  # YAML reads `0: negative` with an int key
                           BeforeValidator(lambda v: {str(k): v for k, v in v.items()} if isinstance(v, dict) else v)] = None
