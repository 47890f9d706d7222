"""Word vectors on disk, the one format every embedding stage writes and every later stage reads.

`data/embeddings/<method>.parquet`: token (string), vector (fixed-size list of float32), rows in
vocabulary order; beside it `<method>.txt` in word2vec text format (header `count dim`), which
gensim, fastText and other tools load as they are. Training facts (seconds, per-epoch loss) go
to `reports/train/<method>.json`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path, read_table, write_json, write_table
from nlpdag.catalog.embeddings import EMBEDDINGS_DIR, TRAIN_DIR
def vectors_table(tokens: Sequence[str], vectors: np.ndarray) -> pa.Table:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(tokens) != vectors.shape[0]:
        raise ValueError(f"{len(tokens)} tokens but vectors of shape {vectors.shape}")
    flat = pa.array(vectors.reshape(-1))
    return pa.table({"token": pa.array(list(tokens), type=pa.string()),
                     "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])})


def write_vectors(method: str, tokens: Sequence[str], vectors: np.ndarray,
                  folder: str | Path = EMBEDDINGS_DIR) -> None:
    """Write `<method>.parquet` and `<method>.txt` (word2vec text format)."""
    if np.isnan(vectors).any():
        raise StageError(f"{method}: training produced NaN vectors (lower the learning rate)")
    folder = Path(folder)
    write_table(vectors_table(tokens, vectors), folder / f"{method}.parquet")
    with atomic_path(folder / f"{method}.txt") as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{len(tokens)} {vectors.shape[1]}\n")
        for token, row in zip(tokens, np.asarray(vectors, dtype=np.float32)):
            f.write(token + " " + " ".join(f"{v:.6g}" for v in row) + "\n")


def read_vectors(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(tokens, float32 matrix) from an embeddings Parquet file."""
    table = read_table(path)
    if "token" not in table.column_names or "vector" not in table.column_names:
        raise StageError(f"{path}: not an embeddings table (needs columns token, vector)")
    if table.num_rows == 0:
        return [], np.zeros((0, 0), dtype=np.float32)
    column = table.column("vector").combine_chunks()
    dim = column.type.list_size
    matrix = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    return table.column("token").to_pylist(), matrix


def write_train_info(method: str, seconds: float, loss: Sequence[float] | None = None,
                     folder: str | Path = TRAIN_DIR, **extra) -> None:
    info = {"method": method, "train_seconds": round(seconds, 2), **extra}
    if loss is not None:
        info["loss"] = [float(v) for v in loss]
    write_json(info, Path(folder) / f"{method}.json")


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
