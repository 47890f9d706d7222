"""Parquet and JSON I/O shared by the stages. Every write goes to a temporary name in the target's
folder and is renamed into place, so a failed stage never leaves a half-written output."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nlpdag.errors import StageError, involving


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            # mkstemp makes the file private (0600); give it the permissions a plain open() would.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_table(table: pa.Table | pd.DataFrame, path: str | Path) -> None:
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: input not found (run the stage that makes it first: dvc repro)")
    try:
        with involving(str(path)):
            return pq.read_table(path, columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StageError(f"{path}: not a readable Parquet file ({exc})") from None


def read_frame(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    table = read_table(path, columns)
    with involving(str(path)):
        return table.to_pandas()


def write_json(obj: object, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: str | Path) -> object:
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: input not found (run the stage that makes it first: dvc repro)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StageError(f"{path}: not a readable JSON file ({exc})") from None
