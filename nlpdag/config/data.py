"""The `data` group of params.yaml, read by `ingest`; validated when the stage starts."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

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
