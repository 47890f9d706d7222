"""Stage `cooccur`: the word-word co-occurrence matrix of the training split, GloVe's input.

Counting follows Stanford GloVe's `cooccur`: out-of-vocabulary tokens are removed first, a
symmetric window of `window` tokens never crosses a document boundary, and a pair at distance d
adds 1/d (harmonic) or 1 (uniform) to both (i, j) and (j, i). Counting is vectorised: for each
distance, the pairs of a chunk of documents are two shifted slices of one id array, summed into a
sparse matrix, so memory is bounded by the chunk and the number of non-zeros, never by pairs.

Output `data/cooccur.parquet`: i, j (vocabulary ids), x (float32), ordered by (i, j).
"""
from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from stages.errors import StageError, cli_main
from stages.io import read_table, write_json, write_table
from stages.params import load_params

TOKENS = "data/tokens.parquet"
VOCAB = "data/vocab.parquet"
COOCCUR = "data/cooccur.parquet"
METRICS = "reports/metrics/cooccur.json"

CHUNK_TOKENS = 1_000_000  # pairs held at once: CHUNK_TOKENS x window (~16 bytes each)


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


def count_cooccurrences(ids: np.ndarray, docs: np.ndarray, vocab_size: int, window: int = 10,
                        weighting: str = "harmonic", chunk_tokens: int = CHUNK_TOKENS) -> sp.csr_matrix:
    """Symmetric co-occurrence counts X (vocab_size x vocab_size, float64, CSR).

    `ids` are in-vocabulary token ids in corpus order and `docs` the document of each (non-decreasing).
    """
    if len(ids) != len(docs):
        raise ValueError("ids and docs must have the same length")
    # Chunk boundaries fall on document starts, so no window crosses a chunk.
    starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]]) if len(docs) else np.array([], dtype=np.int64)
    cuts = [0]
    for s in starts:
        if s - cuts[-1] >= chunk_tokens:
            cuts.append(int(s))
    cuts.append(len(ids))
    left = sp.csr_matrix((vocab_size, vocab_size), dtype=np.float64)  # context before target
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        c_ids, c_docs = ids[lo:hi], docs[lo:hi]
        rows, cols, vals = [], [], []
        for d in range(1, min(window, hi - lo - 1) + 1):
            same_doc = c_docs[:-d] == c_docs[d:]
            rows.append(c_ids[:-d][same_doc])
            cols.append(c_ids[d:][same_doc])
            vals.append(np.full(int(same_doc.sum()), 1.0 / d if weighting == "harmonic" else 1.0))
        if rows:
            part = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                 shape=(vocab_size, vocab_size)).tocsr()
            left = left + part
    matrix = (left + left.T).tocsr()
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def cooccurrence_table(matrix: sp.csr_matrix) -> pa.Table:
    coo = matrix.tocoo()
    return pa.table({"i": pa.array(coo.row.astype(np.int32)), "j": pa.array(coo.col.astype(np.int32)),
                     "x": pa.array(coo.data.astype(np.float32))})


@cli_main
def main() -> None:
    params = load_params().cooccur
    start = time.perf_counter()
    tokens = read_table(TOKENS, columns=["split", "tokens"])
    train = tokens.filter(pc.equal(tokens.column("split"), "train")).column("tokens")
    vocabulary = read_table(VOCAB, columns=["token"]).column("token").combine_chunks()
    ids, docs = encode_tokens(train, vocabulary)
    matrix = count_cooccurrences(ids, docs, len(vocabulary), params.window, params.weighting)
    if matrix.nnz == 0:
        raise StageError(f"{COOCCUR}: no co-occurrences: the training split has no two in-vocabulary "
                         f"tokens within cooccur.window={params.window} of each other")
    write_table(cooccurrence_table(matrix), COOCCUR)
    seconds = time.perf_counter() - start
    write_json({"nonzeros": int(matrix.nnz), "vocab_size": len(vocabulary), "tokens": int(len(ids)),
                "seconds": round(seconds, 2)}, METRICS)
    print(f"cooccur: {matrix.nnz} non-zeros over {len(vocabulary)} words from {len(ids)} tokens in {seconds:.1f} s")


if __name__ == "__main__":
    main()
