import numpy as np
import pytest

from nlpdag.text.bow import fit_tfidf_logreg, triplets
from oracles import count_matrix, tfidf_matrix
from nlpdag.evaluation.scores import classification_metrics
from nlpdag.config.bow import BowParams
import pandas as pd


def test_counts_over_vocabulary_ignore_unknown_tokens():
    m = count_matrix([["a", "b", "a", "zz"], ["c"]], ["a", "b", "c"])
    assert m.shape == (2, 3)
    assert m.toarray().tolist() == [[2, 1, 0], [0, 0, 1]]


def test_tfidf_values_idf_from_train_rows_only():
    counts = count_matrix([["a", "b"], ["a"], ["b", "b"]], ["a", "b"])
    train = np.array([True, True, False])
    m = tfidf_matrix(counts, train, sublinear_tf=False).toarray()
    assert m.shape == (3, 2)
    # smooth idf on 2 train docs: idf(a) = ln(3/3)+1 = 1, idf(b) = ln(3/2)+1
    idf_b = np.log(3 / 2) + 1
    row0 = np.array([1.0, idf_b]) / np.linalg.norm([1.0, idf_b])
    np.testing.assert_allclose(m[0], row0, rtol=1e-6)
    np.testing.assert_allclose(m[2], [0.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-6)


def test_triplets_round_trip():
    counts = count_matrix([["a", "b", "a"], ["b"]], ["a", "b"])
    table = triplets(counts, np.array([10, 20])).to_pandas().sort_values(["doc_id", "token_id"])
    assert table.values.tolist() == [[10, 0, 2], [10, 1, 1], [20, 1, 1]]


def test_baseline_learns_a_separable_toy_task():
    docs = [["great", "film"]] * 20 + [["awful", "film"]] * 20
    y = np.array([1] * 20 + [0] * 20)
    vec, model = fit_tfidf_logreg(docs, y, BowParams(min_df=1))
    assert "great film" in vec.vocabulary_  # bigrams are features
    assert model.predict(vec.transform([["great"], ["awful"]])).tolist() == [1, 0]


@pytest.mark.parametrize("k", [2, 3])
def test_saved_tfidf_logreg_predicts_as_the_fitted_one(tmp_path, k):
    """Two classes: one liblinear model; three: one-vs-rest. Saved as Parquet + JSON + .npz, read back to the
    same probabilities on texts with unseen and repeated words."""
    from nlpdag.models.tfidf import TFIDF_SETTINGS, load_tfidf_logreg, save_tfidf_logreg

    rng = np.random.default_rng(0)
    words = ["great", "awful", "fine", "film", "plot", "cast", "the"]
    y = np.arange(60) % k
    docs = [[words[c]] * 2 + rng.choice(words[3:], 4).tolist() for c in y]
    vec, model = fit_tfidf_logreg(docs, y, BowParams(min_df=1, C=[4.0]))
    save_tfidf_logreg(vec, model, 4.0, tmp_path / "tfidf_logreg")
    classes, predict_proba = load_tfidf_logreg(tmp_path / "tfidf_logreg")
    new = docs[:10] + [["great", "great", "unseen"], [], ["film", "the", "the"]]
    assert classes.tolist() == list(range(k))
    np.testing.assert_allclose(predict_proba(new), model.predict_proba(vec.transform(new)), atol=1e-7)
    settings = (tmp_path / "tfidf_logreg" / TFIDF_SETTINGS).read_text()
    assert '"sublinear_tf": true' in settings and ('"one_vs_rest": true' in settings) == (k > 2)


def test_metrics_by_source():
    y = np.array([0, 1, 0, 1])
    pred = np.array([0, 1, 1, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    out = classification_metrics(y, pred, proba, 2, pd.Series(["a", "a", "b", "b"]))
    assert out["accuracy"] == 0.75 and out["roc_auc"] == 1.0 and out["n"] == 4
    assert out["by_source"]["a"]["accuracy"] == 1.0 and out["by_source"]["b"]["accuracy"] == 0.5
    assert "roc_auc" in out["by_source"]["a"]
    three = classification_metrics(np.array([0, 1, 2]), np.array([0, 1, 1]), None, 3)
    assert "roc_auc" not in three and "by_source" not in three


def test_chunked_bow_matches_in_memory(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nlpdag.text.bow import bow_chunks
    from nlpdag.io.chunks import iter_batches
    from nlpdag.io.tables import write_table

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(12)]
    docs = [list(rng.choice(words, size=rng.integers(0, 9))) for _ in range(23)]
    splits = ["test" if k % 4 == 0 else "train" for k in range(23)]
    vocab = words[:9]
    doc_ids = np.arange(23) * 3 + 7
    write_table(pa.table({"doc_id": doc_ids, "split": splits, "tokens": pa.array(docs, pa.list_(pa.string()))}),
                tmp_path / "tokens.parquet")
    bow_chunks(lambda: iter_batches(tmp_path / "tokens.parquet", ["doc_id", "split", "tokens"], 4), vocab, True,
               tmp_path / "counts.parquet", tmp_path / "tfidf.parquet")
    counts = count_matrix(docs, vocab)
    train = np.array(splits) == "train"
    for name, matrix in (("counts", counts), ("tfidf", tfidf_matrix(counts, train, True))):
        got = pq.read_table(tmp_path / f"{name}.parquet")
        assert got.equals(triplets(matrix, doc_ids)), name
        assert pq.ParquetFile(tmp_path / f"{name}.parquet").num_row_groups > 1


def test_whole_docs_never_splits_a_document():
    import pyarrow as pa

    from nlpdag.text.bow import from_triplets, whole_docs

    parts = [pa.table({"doc_id": np.array(d, dtype=np.int64), "token_id": np.arange(len(d), dtype=np.int32),
                       "value": np.ones(len(d), dtype=np.int32)}) for d in ([1, 1, 2], [2, 2], [2, 5], [], [6])]
    cut = [t.column("doc_id").to_pylist() for t in whole_docs(parts)]
    assert cut == [[1, 1], [2, 2, 2, 2], [5], [6]]
    matrix, ids = from_triplets(pa.concat_tables(parts[:2]), 4)
    assert ids.tolist() == [1, 2] and matrix.toarray().tolist() == [[1, 1, 0, 0], [1, 1, 1, 0]]
