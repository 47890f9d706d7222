"""Stage `cooccur`: the word-word co-occurrence matrix of the training split, GloVe's input.

Counting follows Stanford GloVe's `cooccur`: out-of-vocabulary tokens are removed first, a
symmetric window of `window` tokens never crosses a document boundary, and a pair at distance d
adds 1/d (harmonic) or 1 (uniform) to both (i, j) and (j, i). Counting is vectorised: for each
distance, the pairs of a chunk of documents are two shifted slices of one id array, summed into a
sparse matrix. The tokens table is read `chunk_docs` documents at a time and the partial counts
spill to Parquet shards past `cooccur.memory_mb`, merged at the end (GloVe's `cooccur` + `shuffle`
design), so memory is bounded by `memory_mb`, never by the corpus.

Output `data/cooccur.parquet`: i, j (vocabulary ids), x (float32), ordered by (i, j).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from nlpdag.io.chunks import chunk_writer
from nlpdag.errors import StageError
from nlpdag.io.tables import read_table



CHUNK_TOKENS = 1_000_000  # left_counts' default; pairs held at once: CHUNK_TOKENS x window (~32 bytes each)


def encode_tokens(tokens: pa.ChunkedArray | pa.Array, vocabulary: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Map a list<string> column to flat in-vocabulary ids and the row (document) of each id."""
    if isinstance(tokens, pa.ChunkedArray):
        tokens = tokens.combine_chunks()
    flat = pc.list_flatten(tokens)
    parent = pc.list_parent_indices(tokens)
    ids = pc.index_in(flat, value_set=vocabulary)
    keep = pc.is_valid(ids)
    return (pc.filter(ids, keep).to_numpy(zero_copy_only=False).astype(np.int32),
            pc.filter(parent, keep).to_numpy(zero_copy_only=False).astype(np.int64))


def left_counts(ids: np.ndarray, docs: np.ndarray, vocab_size: int, window: int = 10,
                weighting: str = "harmonic", chunk_tokens: int = CHUNK_TOKENS) -> Iterator[sp.csr_matrix]:
    """Partial counts of (context before, target) pairs, one CSR matrix per chunk of ~chunk_tokens."""
    if len(ids) != len(docs):
        raise ValueError("ids and docs must have the same length")
    # Chunk boundaries fall on document starts, so no window crosses a chunk.
    starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]]) if len(docs) else np.array([], dtype=np.int64)
    cuts = [0]
    for s in starts:
        if s - cuts[-1] >= chunk_tokens:
            cuts.append(int(s))
    cuts.append(len(ids))
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        if hi - lo > 1:
            yield _pair_counts(ids[lo:hi], docs[lo:hi], vocab_size, window, weighting)


def _pair_counts(ids: np.ndarray, docs: np.ndarray, vocab_size: int, window: int, weighting: str) -> sp.csr_matrix:
    # For each distance, the pairs are two shifted slices of one id array (~32 bytes a pair at the peak).
    rows, cols, vals = [], [], []
    for d in range(1, min(window, len(ids) - 1) + 1):
        same_doc = docs[:-d] == docs[d:]
        rows.append(ids[:-d][same_doc])
        cols.append(ids[d:][same_doc])
        vals.append(np.full(int(same_doc.sum()), 1.0 / d if weighting == "harmonic" else 1.0))
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    return sp.coo_matrix((vals, (rows, cols)), shape=(vocab_size, vocab_size)).tocsr()


BYTES_PER_ENTRY = 12  # a CSR non-zero: float64 value + int32 column
WRITE_ENTRIES = 1 << 20  # non-zeros per output row group
# Small row groups in shards: a merge range reads whole row groups, up to two more than it needs per shard.
SHARD_ENTRIES = 1 << 16
OUT_SCHEMA = pa.schema([("i", pa.int32()), ("j", pa.int32()), ("x", pa.float32())])
SHARD_SCHEMA = pa.schema([("i", pa.int32()), ("j", pa.int32()), ("x", pa.float64())])


def row_ranges(indptr: np.ndarray, max_entries: int) -> list[tuple[int, int]]:
    """Consecutive row ranges [a, b) holding at most `max_entries` non-zeros each (cumulative
    counts `indptr`), except a single row that alone holds more."""
    ranges, a, n = [], 0, len(indptr) - 1
    while a < n:
        b = int(np.searchsorted(indptr, indptr[a] + max_entries, side="right")) - 1
        b = min(max(b, a + 1), n)
        ranges.append((a, b))
        a = b
    return ranges


def _entries(matrix: sp.csr_matrix, first_row: int = 0, dtype=np.float32) -> pa.Table:
    rows = np.repeat(np.arange(first_row, first_row + matrix.shape[0], dtype=np.int32), np.diff(matrix.indptr))
    return pa.table({"i": pa.array(rows), "j": pa.array(matrix.indices.astype(np.int32)),
                     "x": pa.array(matrix.data.astype(dtype))})


class CooccurCounter:
    """Map-reduce over chunks, as GloVe's `cooccur`: partial counts are summed in memory, and when
    they pass a quarter of `memory_mb` they are spilled to Parquet shards in `spill_dir`; `write`
    merges the shards a range of rows at a time into one file ordered by (i, j).

    Only the "context before target" half is held; a spill writes it as two shards, itself and
    its transpose (each ordered by row), whose sum is the symmetric matrix, so the symmetric
    matrix is never built whole. Summing a chunk into the partial table holds about three copies
    of it, hence the quarter.
    """

    def __init__(self, vocab_size: int, memory_mb: int, spill_dir: Path):
        self.vocab_size = vocab_size
        self.budget = memory_mb * 2**20
        self.spill_dir = spill_dir
        self.shards: list[tuple[Path, np.ndarray]] = []  # (file, indptr: where each row starts)
        self.left = self._empty()

    def _empty(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.vocab_size, self.vocab_size), dtype=np.float64)

    def add(self, part: sp.csr_matrix) -> None:
        self.left = self.left + part
        if self.left.nnz * BYTES_PER_ENTRY * 4 > self.budget:
            self.spill()

    def spill(self) -> None:
        if not self.left.nnz:
            return
        left, self.left = self.left, self._empty()
        for half in (left, left.T.tocsr()):
            path = self.spill_dir / f"shard-{len(self.shards):05d}.parquet"
            # float64 until the final sum, so spilling changes no value beyond float32 rounding.
            with pq.ParquetWriter(path, SHARD_SCHEMA) as writer:
                for a, b in row_ranges(half.indptr, SHARD_ENTRIES):
                    writer.write_table(_entries(half[a:b], a, np.float64))
            self.shards.append((path, half.indptr.astype(np.int64)))

    def write(self, out: str | Path) -> int:
        """Write the summed symmetric counts (i, j, x float32, ordered by (i, j)); the non-zero count."""
        nnz = 0
        if not self.shards:
            left, self.left = self.left, self._empty()
            right = left.T.tocsr()
            with chunk_writer(out, OUT_SCHEMA) as writer:
                for a, b in row_ranges(left.indptr + right.indptr, WRITE_ENTRIES):
                    block = (left[a:b] + right[a:b]).tocsr()
                    block.sum_duplicates()
                    block.sort_indices()
                    nnz += block.nnz
                    writer.write(_entries(block, a))
            return nnz
        self.spill()
        files = [pq.ParquetFile(path) for path, _ in self.shards]
        offsets = [np.cumsum([0] + [f.metadata.row_group(k).num_rows for k in range(f.num_row_groups)])
                   for f in files]
        total = np.sum([indptr for _, indptr in self.shards], axis=0)
        with chunk_writer(out, OUT_SCHEMA) as writer:
            # About 100 bytes an entry while a range is read, summed and written.
            for a, b in row_ranges(total, max(self.budget // 128, 1)):
                parts = [_read_rows(f, off, indptr[a], indptr[b]) for f, off, (_, indptr) in
                         zip(files, offsets, self.shards)]
                parts = [p for p in parts if p is not None]
                if not parts:
                    continue
                table = pa.concat_tables(parts).combine_chunks()
                matrix = sp.coo_matrix((table.column("x").to_numpy(),
                                        (table.column("i").to_numpy() - a, table.column("j").to_numpy())),
                                       shape=(b - a, self.vocab_size)).tocsr()
                del table, parts
                matrix.sum_duplicates()
                matrix.sort_indices()
                nnz += matrix.nnz
                writer.write(_entries(matrix, a))
        return nnz


def _read_rows(file: pq.ParquetFile, offsets: np.ndarray, start: int, end: int) -> pa.Table | None:
    """Rows start..end of a shard, reading only the row groups that hold them."""
    if end <= start:
        return None
    first = int(np.searchsorted(offsets, start, side="right")) - 1
    last = int(np.searchsorted(offsets, end, side="left"))
    table = file.read_row_groups(list(range(first, last)))
    return table.slice(start - offsets[first], end - start)


def count_chunks(batches: Iterable[pa.Table], vocabulary: pa.Array, window: int, weighting: str,
                 memory_mb: int, out: str | Path, chunk_tokens: int | None = None) -> tuple[int, int]:
    """The stage over batches of the tokens table (split, tokens): count each batch's training
    documents, spill past `memory_mb`, merge into `out`. Returns (non-zeros, in-vocabulary tokens).

    By default the tokens counted at once are sized so that their pairs take a quarter of `memory_mb`.
    """
    chunk_tokens = chunk_tokens or max(1000, memory_mb * 2**20 // (4 * 32 * window))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_tokens = 0
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.shards-", dir=out.parent) as spill_dir:
        counter = CooccurCounter(len(vocabulary), memory_mb, Path(spill_dir))
        for batch in batches:
            train = batch.filter(pc.equal(batch.column("split"), "train")).column("tokens")
            ids, docs = encode_tokens(train, vocabulary)
            n_tokens += len(ids)
            for part in left_counts(ids, docs, len(vocabulary), window, weighting, chunk_tokens):
                counter.add(part)
        if not counter.left.nnz and not counter.shards:
            raise StageError(f"{out}: no co-occurrences: the training split has no two in-vocabulary "
                             f"tokens within cooccur.window={window} of each other")
        return counter.write(out), n_tokens
