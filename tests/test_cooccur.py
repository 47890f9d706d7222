from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest

from stages.cooccur import cooccurrence_table, count_cooccurrences, encode_tokens


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
