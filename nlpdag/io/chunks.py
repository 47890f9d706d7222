"""Streaming Parquet I/O for the front stages: read a file a batch of documents at a time and write
one the same way, so that memory is bounded by `chunk_docs` (params.yaml), not by the corpus.

A `ChunkWriter` writes to a temporary name and renames it into place only when every chunk has been
written (the same guarantee as `nlpdag.io.tables.write_table`), one row group per chunk, so the next stage
can iterate row groups.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path


def open_parquet(path: str | Path) -> pq.ParquetFile:
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path}: input not found (run the stage that makes it first: dvc repro)")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise StageError(f"{path}: not a readable Parquet file ({exc})") from None


def iter_batches(path: str | Path, columns: list[str] | None, batch_size: int) -> Iterator[pa.Table]:
    """The file as tables of at most `batch_size` rows, in file order."""
    file = open_parquet(path)
    missing = [c for c in columns or [] if c not in file.schema_arrow.names]
    if missing:
        raise StageError(f"{path}: no column {missing[0]!r} (columns are {file.schema_arrow.names})")
    for batch in file.iter_batches(batch_size=batch_size, columns=columns):
        yield pa.Table.from_batches([batch])


def iter_row_groups(path: str | Path, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """The file's row groups in order: each is one `ChunkWriter.write`, so whole documents."""
    file = open_parquet(path)
    for index in range(file.num_row_groups):
        yield file.read_row_group(index, columns=columns)


class ChunkWriter:
    """Append tables (or DataFrames) to one Parquet file; the schema is the first chunk's.

    DataFrames are converted as `write_table` converts them (pandas metadata kept), so a file
    written in chunks reads back exactly like one written at once.
    """

    def __init__(self, path: Path, schema: pa.Schema | None = None):
        self._path = path
        self._writer: pq.ParquetWriter | None = None
        self._schema = schema
        self.rows = 0

    def write(self, chunk: pa.Table | pd.DataFrame) -> None:
        if isinstance(chunk, pd.DataFrame):
            chunk = pa.Table.from_pandas(chunk, preserve_index=False)
        if self._writer is None:
            self._schema = self._schema or chunk.schema
            self._writer = pq.ParquetWriter(self._path, self._schema, compression="zstd")
        if chunk.schema != self._schema:
            chunk = chunk.cast(self._schema)
        if chunk.num_rows:
            self._writer.write_table(chunk, row_group_size=max(chunk.num_rows, 1))
            self.rows += chunk.num_rows

    def close(self) -> None:
        if self._writer is None:
            if self._schema is None:
                raise StageError(f"{self._path}: nothing to write")
            self._writer = pq.ParquetWriter(self._path, self._schema, compression="zstd")
        self._writer.close()


@contextlib.contextmanager
def chunk_writer(path: str | Path, schema: pa.Schema | None = None) -> Iterator[ChunkWriter]:
    """A ChunkWriter on a temporary file, renamed onto `path` only if the whole block succeeds."""
    with atomic_path(path) as tmp:
        writer = ChunkWriter(tmp, schema)
        try:
            yield writer
        except BaseException:
            # Release the file handle; atomic_path removes the temporary file.
            with contextlib.suppress(Exception):
                writer.close()
            raise
        writer.close()
