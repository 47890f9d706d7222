import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nlpdag.text.cooccur import encode_tokens
from oracles import cooccurrence_table, count_cooccurrences


def brute_force(docs, vocab, window, harmonic=True):
    """GloVe's definition, one pair at a time: OOV removed, symmetric, never across documents."""
    index = {w: i for i, w in enumerate(vocab)}
    counts = defaultdict(float)
    for doc in docs:
        ids = [index[t] for t in doc if t in index]
        for a in range(len(ids)):
            for b in range(a + 1, min(a + window, len(ids) - 1) + 1):
                w = 1.0 / (b - a) if harmonic else 1.0
                counts[ids[a], ids[b]] += w
                counts[ids[b], ids[a]] += w
    return dict(counts)


def as_dict(matrix):
    coo = matrix.tocoo()
    return {(int(i), int(j)): float(x) for i, j, x in zip(coo.row, coo.col, coo.data)}


def cooccur(docs, vocab, window, weighting="harmonic", chunk_tokens=1_000_000):
    ids, doc = encode_tokens(pa.array(docs, type=pa.list_(pa.string())), pa.array(vocab))
    return count_cooccurrences(ids, doc, len(vocab), window, weighting, chunk_tokens)


def test_hand_checked_tiny_corpus():
    # "a b a" with window 2: (a,b) at distance 1 twice -> 2.0 each way; (a,a) at distance 2: 1/2, twice (both roles).
    m = as_dict(cooccur([["a", "b", "a"]], ["a", "b"], window=2))
    assert m == {(0, 0): 1.0, (0, 1): 2.0, (1, 0): 2.0}


def test_oov_removed_before_windowing_and_no_crossing_documents():
    m = as_dict(cooccur([["a", "zz", "zz", "b"], ["b"], ["a"]], ["a", "b"], window=1))
    assert m == {(0, 1): 1.0, (1, 0): 1.0}


@pytest.mark.parametrize("window, weighting, chunk", [(1, "harmonic", 10**6), (3, "uniform", 10**6),
                                                      (5, "harmonic", 7), (10, "harmonic", 50)])
def test_matches_brute_force_on_random_corpus(window, weighting, chunk):
    rng = np.random.default_rng(window)
    words = [f"w{i}" for i in range(30)]
    docs = [list(rng.choice(words, size=rng.integers(0, 40))) for _ in range(60)]
    vocab = words[:25]  # w25..w29 are out of vocabulary
    got = as_dict(cooccur(docs, vocab, window, weighting, chunk_tokens=chunk))
    want = brute_force(docs, vocab, window, harmonic=weighting == "harmonic")
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value)


def test_table_is_sorted_symmetric_float32():
    m = cooccur([["a", "b", "c", "a"]], ["a", "b", "c"], window=3)
    table = cooccurrence_table(m).to_pandas()
    assert table["x"].dtype == np.float32
    assert list(zip(table["i"], table["j"])) == sorted(zip(table["i"], table["j"]))
    sym = table.merge(table, left_on=["i", "j"], right_on=["j", "i"])
    assert len(sym) == len(table) and np.allclose(sym["x_x"], sym["x_y"])


def _tokens_batches(docs, splits, size):
    table = pa.table({"split": splits, "tokens": pa.array(docs, type=pa.list_(pa.string()))})
    return (table.slice(k, size) for k in range(0, len(docs), size))


@pytest.mark.parametrize("memory_mb, chunk_tokens", [(512, None), (0.002, 15), (0.0002, 4)])
def test_chunked_with_spills_matches_in_memory(tmp_path, memory_mb, chunk_tokens):
    import pyarrow.parquet as pq

    from nlpdag.text.cooccur import CooccurCounter, count_chunks

    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(30)]
    docs = [list(rng.choice(words, size=rng.integers(0, 30))) for _ in range(50)]
    splits = ["test" if k % 5 == 0 else "train" for k in range(50)]
    vocab = pa.array(words[:25])
    train = [d for d, s in zip(docs, splits) if s == "train"]
    want = cooccurrence_table(cooccur(train, words[:25], 4))
    spills = []
    spill = CooccurCounter.spill
    CooccurCounter.spill = lambda self: (spills.append(self.left.nnz), spill(self))[1]
    try:
        nnz, n_tokens = count_chunks(_tokens_batches(docs, splits, 7), vocab, 4, "harmonic", memory_mb,
                                     tmp_path / "cooccur.parquet", chunk_tokens)
    finally:
        CooccurCounter.spill = spill
    got = pq.read_table(tmp_path / "cooccur.parquet")
    assert nnz == want.num_rows and n_tokens == sum(t in words[:25] for d in train for t in d)
    assert got.schema == want.schema
    assert got.column("i").equals(want.column("i")) and got.column("j").equals(want.column("j"))
    np.testing.assert_allclose(got.column("x").to_numpy(), want.column("x").to_numpy(), rtol=1e-6)
    assert (len(spills) > 2) == (memory_mb < 0.01)
    assert [p.name for p in tmp_path.iterdir()] == ["cooccur.parquet"]  # shards removed


def test_chunked_without_pairs_is_an_error_and_writes_nothing(tmp_path):
    from nlpdag.errors import StageError
    from nlpdag.text.cooccur import count_chunks

    with pytest.raises(StageError, match=r"no co-occurrences.*cooccur\.window=2"):
        count_chunks(_tokens_batches([["a"], ["b", "zz"]], ["train", "train"], 1), pa.array(["a", "b"]), 2,
                     "harmonic", 1, tmp_path / "cooccur.parquet")
    assert list(tmp_path.iterdir()) == []


def test_front_stages_run_chunked(tmp_path):
    """ingest -> tokenise -> bow -> cooccur as the pipeline runs them, a few documents per chunk."""
    import subprocess
    import sys

    import pandas as pd
    import pyarrow.parquet as pq
    import yaml

    root = Path(__file__).resolve().parents[1]
    texts = [f"{w} {w} film {k} was {w} and the plot was {w} too" for k in range(15) for w in ("great", "awful")]
    (tmp_path / "data" / "raw").mkdir(parents=True)
    pd.DataFrame({"text": texts, "label": [k % 2 for k in range(30)]}).to_csv(tmp_path / "data/raw/c.csv", index=False)
    params = {"chunk_docs": 4, "data": {"path": "data/raw/c.csv"}, "tokenise": {"min_count": 2},
              "bow": {"min_df": 1}, "cooccur": {"window": 3, "memory_mb": 16}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(root)}
    for stage in ("ingest", "tokenise", "bow", "cooccur"):
        proc = subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=tmp_path, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    assert pq.read_table(tmp_path / "data/corpus.parquet").num_rows == 30
    for name in ("corpus", "tokens", "bow/counts", "bow/tfidf"):
        assert pq.ParquetFile(tmp_path / f"data/{name}.parquet").num_row_groups >= 7, name
    assert pq.read_table(tmp_path / "data/cooccur.parquet").num_rows > 0
    (tmp_path / "data/raw/c.csv").write_text("text,label\nonly,1\nclass,1\n")
    before = sorted(p.name for p in (tmp_path / "data").iterdir())
    proc = subprocess.run([sys.executable, "-m", "stages.ingest"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: the corpus has a single class (1): classification needs two or more labels"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == before
