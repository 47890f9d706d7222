import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from nlpdag.models.baselines import (doc_word_matrix, fit_dense_logreg,
                                    idf_from_doc_freq, idf_weights, mean_vectors, ngram_counts, select_C, stack_vectors)
from nlpdag.models.linear_state import BaselineError
from nlpdag.models.nblinear import fit_nb_logreg, fit_nbsvm
from oracles import nb_log_count_ratio
from nlpdag.errors import StageError

# 4 documents over features (good, film, bad); counts, not yet binarised.
X4 = sp.csr_matrix(np.array([[2, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 3]]))
Y4 = np.array([1, 1, 0, 0])


def toy(n: int = 20):
    """A separable two-class task with a shared word and noise words, as n-gram counts."""
    rng = np.random.default_rng(0)
    docs, y = [], []
    for k in range(n):
        noise = [f"w{rng.integers(5)}" for _ in range(3)]
        docs += [["a", "great", "film"] + noise, ["an", "awful", "film"] + noise]
        y += [1, 0]
    return docs, np.array(y)


def test_log_count_ratio_by_hand():
    r = nb_log_count_ratio(X4, Y4, alpha=1.0)
    # binarised: positive docs have good in 2, film in 1, bad in 0 -> p = 1 + (2, 1, 0) = (3, 2, 1), |p| = 6
    # negative docs: good 0, film 1, bad 2 -> q = (1, 2, 3), |q| = 6
    np.testing.assert_allclose(r, np.log([(3 / 6) / (1 / 6), (2 / 6) / (2 / 6), (1 / 6) / (3 / 6)]))
    # alpha changes the smoothing: p = (2.5, 1.5, .5)/4.5, q = (.5, 1.5, 2.5)/4.5
    np.testing.assert_allclose(nb_log_count_ratio(X4, Y4, alpha=0.5), np.log([5, 1, 1 / 5]))
    # labels need not be 0/1: the larger label is the positive class
    np.testing.assert_allclose(nb_log_count_ratio(X4, np.array(["pos", "pos", "neg", "neg"])), r)
    assert X4.toarray()[0, 0] == 2  # the caller's matrix is not binarised in place


def test_log_count_ratio_one_vs_rest():
    y = np.array([0, 1, 2, 2])
    r = nb_log_count_ratio(X4, y)
    assert r.shape == (3, 3)
    # class 2 vs rest: docs 2, 3 are positive -> p = 1 + (0, 1, 2), q = 1 + (2, 1, 0)
    np.testing.assert_allclose(r[2], np.log([1 / 3, 1, 3]))


def test_ngram_counts_train_vocabulary_and_min_df():
    X_train, X_test = ngram_counts([["a", "b"], ["a", "b", "c"]], [["a", "b", "zz"], []], ngram_max=2, min_df=2)
    # a, b, "a b" occur in both training docs; c and "b c" in one only
    assert X_train.shape == (2, 3) and X_test.shape == (2, 3)
    assert X_train.toarray().tolist() == [[1, 1, 1], [1, 1, 1]]
    assert X_test.toarray().sum(axis=1).tolist() == [3, 0]
    X_train, _ = ngram_counts([["a", "b"], ["a", "b", "c"]], [], ngram_max=1, min_df=1)
    assert X_train.shape == (2, 3)


@pytest.mark.parametrize("fit", [lambda X, y: fit_nb_logreg(X, y, C=1.0, seed=0),
                                 lambda X, y: fit_nbsvm(X, y, C=1.0, beta=0.25, seed=0)])
def test_nb_models_learn_a_separable_toy(fit):
    docs, y = toy()
    X_train, X_test = ngram_counts(docs, [["great", "film"], ["awful", "film"], ["a", "great", "w1"]], min_df=2)
    model = fit(X_train, y)
    assert (model.predict(X_train) == y).all()
    assert model.predict(X_test).tolist() == [1, 0, 1]
    proba = model.predict_proba(X_test)
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba.argmax(axis=1) == model.predict(X_test)).all()
    assert proba[0, 1] > 0.5 > proba[1, 1]


def test_nbsvm_interpolates_towards_mean_magnitude():
    docs, y = toy()
    X, _ = ngram_counts(docs, [], min_df=2)
    full = fit_nbsvm(X, y, C=1.0, beta=1.0)
    flat = fit_nbsvm(X, y, C=1.0, beta=0.0)
    # beta = 0: every weight on the r-scaled features is mean|w|
    np.testing.assert_allclose(flat.w_[0], np.abs(full.w_[0]).mean())
    np.testing.assert_allclose(flat.coef_, flat.w_ * flat.r_)
    half = fit_nbsvm(X, y, C=1.0, beta=0.5)
    np.testing.assert_allclose(half.coef_, 0.5 * full.coef_ + 0.5 * flat.coef_)


def test_nb_logreg_liblinear_matches_scaled_features():
    from sklearn.linear_model import LogisticRegression

    docs, y = toy()
    X, _ = ngram_counts(docs, [], min_df=2)
    model = fit_nb_logreg(X, y, C=1.0, seed=0)
    Xb = (X > 0).astype(float)
    r = nb_log_count_ratio(X, y)
    direct = LogisticRegression(C=1.0, solver="liblinear", dual=True, random_state=0).fit(Xb.multiply(r).tocsr(), y)
    np.testing.assert_allclose(model.predict_proba(X), direct.predict_proba(Xb.multiply(r).tocsr()), rtol=1e-6)


@pytest.mark.parametrize("fit", [lambda X, y: fit_nb_logreg(X, y, C=10.0, seed=0),
                                 lambda X, y: fit_nbsvm(X, y, C=1.0, seed=0)])
def test_three_classes(fit):
    docs = [["good", "film"]] * 10 + [["bad", "film"]] * 10 + [["meh", "film"]] * 10
    y = np.repeat(["pos", "neg", "neu"], 10)
    X, X_test = ngram_counts(docs, [["meh"], ["good"], ["bad", "film"]], min_df=1)
    model = fit(X, y)
    assert model.classes_.tolist() == ["neg", "neu", "pos"]
    assert model.r_.shape == (3, X.shape[1])
    assert model.predict(X_test).tolist() == ["neu", "pos", "neg"]
    proba = model.predict_proba(X_test)
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_one_class_only_is_a_clear_error():
    y = np.array([1, 1, 1, 1])
    for call in (lambda: nb_log_count_ratio(X4, y), lambda: fit_nb_logreg(X4, y, C=1.0, seed=0),
                 lambda: fit_nbsvm(X4, y, C=1.0), lambda: fit_dense_logreg(np.eye(4), y, C=1.0, seed=0)):
        with pytest.raises(ValueError, match="at least two classes in y_train, found only 1 "):
            call()
    with pytest.raises(StageError):  # the stage turns it into one `error:` line
        fit_nb_logreg(X4, y, C=1.0)
    with pytest.raises(ValueError, match="one label per training row"):
        fit_nb_logreg(X4, Y4[:3], C=1.0)
    with pytest.raises(ValueError, match="beta"):
        fit_nbsvm(X4, Y4, C=1.0, beta=1.5)
    with pytest.raises(ValueError, match="features"):
        fit_nb_logreg(X4, Y4, C=1.0).predict(sp.csr_matrix((1, 5)))


VOCAB = ["good", "bad", "film"]
VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], dtype=np.float32)


def test_mean_vectors_by_hand():
    docs = [["good", "film", "zz"], ["good", "good", "bad"], ["zz", "yy"], []]
    out = mean_vectors(docs, VOCAB, VECTORS)
    assert out.shape == (4, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], [1.5, 1.0])          # (good + film) / 2; zz ignored
    np.testing.assert_allclose(out[1], [2 / 3, 1 / 3])      # every occurrence counts
    np.testing.assert_allclose(out[2:], 0.0)                # OOV-only and empty docs: zero vectors


def test_weighted_mean_vectors_by_hand():
    weights = {"good": 2.0, "film": 0.5, "zz": 9.0}           # zz has no vector; bad has no weight
    docs = [["good", "film"], ["good", "good", "bad"], ["bad"]]
    out = mean_vectors(docs, VOCAB, VECTORS, weights)
    np.testing.assert_allclose(out[0], [(2 * 1 + 0.5 * 2) / 2.5, (0.5 * 2) / 2.5])
    np.testing.assert_allclose(out[1], [1.0, 0.0])          # bad has no weight: left out
    np.testing.assert_allclose(out[2], [0.0, 0.0])
    counts = doc_word_matrix(docs, VOCAB, weights).toarray()
    np.testing.assert_allclose(counts, [[2, 0, 0.5], [4, 0, 0], [0, 0, 0]])


def test_mean_vectors_checks_shapes_and_duplicates():
    with pytest.raises(ValueError, match="one row per token"):
        mean_vectors([["good"]], VOCAB, VECTORS[:2])
    out = mean_vectors([["good"]], ["good", "good"], np.array([[1.0], [5.0]]))
    assert out.tolist() == [[1.0]]                           # the first of duplicate rows counts
    assert mean_vectors([], VOCAB, VECTORS).shape == (0, 2)


def test_idf_weights_match_doc_freq_and_sklearn():
    docs = [["a", "b", "a"], ["a"], ["c"]]
    idf = idf_weights(docs)
    np.testing.assert_allclose([idf["a"], idf["b"]], [np.log(4 / 3) + 1, np.log(4 / 2) + 1])
    assert set(idf_weights(docs, min_df=2)) == {"a"}
    from_vocab = idf_from_doc_freq(["a", "b", "c"], [2, 1, 1], n_docs=3)
    assert from_vocab == pytest.approx(idf)


def test_dense_logreg_two_and_three_classes():
    rng = np.random.default_rng(0)
    centres = np.array([[3.0, 0.0], [0.0, 3.0], [-3.0, -3.0]])
    y = np.repeat([0, 1, 2], 20)
    X = centres[y] + rng.normal(size=(60, 2))
    model = fit_dense_logreg(X, y, C=1.0, seed=0)
    assert (model.predict(X) == y).mean() > 0.95 and model.predict_proba(X).shape == (60, 3)
    two = fit_dense_logreg(X[y < 2], y[y < 2], C=1.0, seed=0)
    assert two.predict_proba(centres[:2]).argmax(axis=1).tolist() == [0, 1]


def test_stack_vectors_and_select_C():
    column = pa.chunked_array([pa.array([[1.0, 2.0], [3.0, 4.0]], type=pa.list_(pa.float32(), 2))])
    assert stack_vectors(column).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    docs, y = toy()
    X, _ = ngram_counts(docs, [], min_df=2)
    best, scores = select_C(lambda X, y, C: fit_nb_logreg(X, y, C=C, seed=0), X, y, [0.1, 1.0], seed=0)
    assert set(scores) == {0.1, 1.0} and best == 0.1 and scores[0.1] == 1.0  # ties -> the smaller C


def test_nb_docvec_folds_scaling_into_one_linear_model(tmp_path):
    """NB n-grams + document vectors: the stored weights give the same probabilities as a logistic regression
    fitted by hand on [r-scaled indicators | standardised vectors x scale]; saved and loaded as plain data."""
    from sklearn.linear_model import LogisticRegression

    from nlpdag.models.baselines import load_estimator, save_estimator
    from nlpdag.models.nblinear import NBDocvec, fit_nb_docvec

    docs, y = toy()
    X, _ = ngram_counts(docs, [], min_df=2)
    V = np.random.default_rng(1).normal(size=(len(y), 3)) + y[:, None] * [2.0, 0.0, -1.0]
    model = fit_nb_docvec(sp.hstack([X, V]).tocsr(), y, C=0.5, n_dense=3, scale=0.3)
    Xr = (X > 0).astype(float).multiply(nb_log_count_ratio(X, y)).tocsr()
    Vs = (V - V.mean(axis=0)) / V.std(axis=0) * 0.3
    direct = LogisticRegression(C=0.5, solver="liblinear", dual=True, random_state=0).fit(sp.hstack([Xr, Vs]).tocsr(), y)
    both = sp.hstack([X, V]).tocsr()
    np.testing.assert_allclose(model.predict_proba(both), direct.predict_proba(sp.hstack([Xr, Vs]).tocsr()), rtol=1e-6)
    save_estimator(model, tmp_path / "m")
    back = load_estimator(tmp_path / "m")
    assert isinstance(back, NBDocvec) and (back.n_dense, back.scale) == (3, 0.3)
    np.testing.assert_array_equal(back.predict_proba(both), model.predict_proba(both))
    with pytest.raises(BaselineError, match="n_dense must be >= 1"):
        NBDocvec(C=1.0, n_dense=0)
