"""The `topics` stage on a toy TF-IDF matrix with planted topics."""
import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from nlpdag.models.autoencoders import ProjectTopics, SparseRows, TopicAutoEncoder, take, train
from nlpdag.errors import StageError
from nlpdag.config.topics import TopicsParams
from nlpdag.models.topics import (check_params, fit_autoencoder, fit_nmf, npmi_coherence, reconstruction_mse,
                           top_word_ids, topics_frame, training_matrix)
from nlpdag.training.trainer import TrainerConfig


def ae_config(**kw) -> TrainerConfig:
    """The auto-encoders' settings in the stages: Adam (fused), float32."""
    return TrainerConfig(**{**dict(optimizer="adam", fused=True, amp=False, batch_size=256), **kw})

pytestmark = pytest.mark.usefixtures("one_thread")


K, PER_TOPIC = 3, 8
WORDS = [f"t{k}_{i}" for k in range(K) for i in range(PER_TOPIC)] + ["common1", "common2"]


def planted(n_docs=300, seed=0):
    """TF-IDF-like rows: each document draws 4-6 words of one or two planted topics (disjoint word sets)
    and sometimes a common word; rows L2-normalised."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    for d in range(n_docs):
        topics = [d % K] if d % 4 else [d % K, (d + 1) % K]
        words = set()
        for k in topics:
            words |= set(k * PER_TOPIC + rng.choice(PER_TOPIC, size=rng.integers(4, 7), replace=False))
        if rng.random() < 0.3:
            words.add(K * PER_TOPIC + int(rng.integers(0, 2)))
        w = sorted(words)
        v = rng.uniform(0.5, 1.5, size=len(w))
        rows += [d] * len(w)
        cols += w
        vals += list(v / np.linalg.norm(v))
    return sp.csr_matrix((np.array(vals, np.float32), (rows, cols)), shape=(n_docs, len(WORDS)))


def recovered(topics: np.ndarray, n: int = 5) -> bool:
    """Every planted topic's words make up the top-n words of some learned topic."""
    top = [set(ids // PER_TOPIC) for ids in top_word_ids(topics, n)]
    return all(any(t == {k} for t in top) for k in range(K))


def test_training_matrix_keeps_training_documents_and_frequent_words():
    doc_id = np.array([10, 10, 11, 12, 12, 12])
    token_id = np.array([0, 5, 1, 2, 3, 0])
    value = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype=np.float32)
    m = training_matrix(doc_id, token_id, value, train_ids=np.array([12, 10]), n_words=4)
    assert m.shape == (2, 4)
    np.testing.assert_allclose(m.toarray(), [[0.1, 0, 0, 0], [0.6, 0, 0.4, 0.5]])


def test_training_matrix_takes_a_column_list():
    doc_id = np.array([10, 10, 11, 12, 12, 12])
    token_id = np.array([0, 5, 1, 2, 3, 0])
    value = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype=np.float32)
    m = training_matrix(doc_id, token_id, value, train_ids=np.array([12, 10]), n_words=np.array([5, 3]))
    np.testing.assert_allclose(m.toarray(), [[0.2, 0], [0, 0.5]])


def test_topic_vocabulary_leaves_out_stop_words_punctuation_and_ubiquitous_words():
    from nlpdag.models.topics import is_stop_word, topic_vocabulary

    tokens = ["the", "film", "it's", "!", "good", "plot", "don't", "acting"]
    doc_freq = np.array([100, 90, 80, 70, 40, 30, 20, 10])
    ids = topic_vocabulary(tokens, doc_freq, 100, TopicsParams(max_features=10, max_df=0.5))
    assert [tokens[i] for i in ids] == ["good", "plot", "acting"]
    assert is_stop_word("it's") and is_stop_word("don't") and not is_stop_word("plot")
    loose = topic_vocabulary(tokens, doc_freq, 100, TopicsParams(max_features=10, max_df=1.0, stop_words="none"))
    assert [tokens[i] for i in loose] == ["the", "film", "it's", "good", "plot", "don't", "acting"]
    assert len(topic_vocabulary(tokens, doc_freq, 100, TopicsParams(max_features=10, max_df=1.0))) == 4


def test_autoencoder_and_nmf_recover_planted_topics():
    x = planted()
    params = TopicsParams(n_topics=K, top_words=5, max_features=len(WORDS), epochs=40, batch_size=32,
                          learning_rate=0.02)
    codes, topics, history = fit_autoencoder(x, params, seed=0)
    assert codes.shape == (300, K) and topics.shape == (K, len(WORDS))
    assert (topics >= 0).all() and (codes >= 0).all()
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert recovered(topics)
    nmf_codes, nmf_topics = fit_nmf(x, K, seed=0)
    assert recovered(nmf_topics)
    # Planted topics are far more coherent than a shuffled assignment of the same words.
    good = npmi_coherence(x, top_word_ids(topics, 5))
    mixed = npmi_coherence(x, np.array([[0, 8, 16, 1, 9], [2, 10, 18, 3, 11], [4, 12, 20, 5, 13]]))
    assert good > 0.3 > mixed
    for c, t in ((codes, topics), (nmf_codes, nmf_topics)):
        assert reconstruction_mse(x, c, t) < np.mean(x.toarray() ** 2)


def test_the_topic_autoencoder_logs_and_records_no_validation_loss(capsys):
    """It has no validation set (coherence is judged on held-out documents afterwards): no val_loss,
    not even a NaN one, in its history, its progress lines or DVCLive."""
    from nlpdag.training.progress import DVCLiveLogger

    class Recorder:  # the part of DVCLive's Live that DVCLiveLogger calls
        def __init__(self):
            self.keys, self.curves = [], {}

        def log_metric(self, key, value, plot=False):
            self.keys.append(key)

        def log_plot(self, name, *args, **kwargs):
            self.keys.append(f"plot/{name}")

        def make_summary(self):
            pass

    live = Recorder()
    params = TopicsParams(n_topics=K, top_words=5, max_features=len(WORDS), epochs=2, batch_size=64)
    _, _, history = fit_autoencoder(planted(60), params, seed=0, verbose=True,
                                    callbacks=[DVCLiveLogger(live, "autoencoder")])
    out = capsys.readouterr().out
    assert len(history) == 2 and all("train_loss" in h and not any(k.startswith("val_") for k in h) for h in history)
    assert "topics: epoch 2/2" in out and "train_loss" in out and "val_" not in out and "nan" not in out
    assert "plot/train_loss" in live.keys and not any("val_" in k for k in live.keys)


def test_projection_keeps_the_decoder_non_negative_with_unit_rows():
    torch.manual_seed(0)
    model = TopicAutoEncoder(6, 2)
    x = sp.csr_matrix(np.abs(np.random.default_rng(0).normal(size=(20, 6))).astype(np.float32))
    train(model, x, None, ae_config(epochs=3, batch_size=5, learning_rate=0.5, patience=None),
          callbacks=[ProjectTopics(model)])
    topics = model.topics.detach()
    assert (topics >= 0).all() and (topics == 0).any()
    torch.testing.assert_close(topics.norm(dim=1), torch.ones(2))


def test_sparse_batches_give_the_dense_loss_and_gradients():
    rng = np.random.default_rng(0)
    x = sp.csr_matrix(rng.random((7, 30)) * (rng.random((7, 30)) < 0.2), dtype=np.float32)
    torch.manual_seed(0)
    model = TopicAutoEncoder(30, 4, init=torch.from_numpy(x[:4].toarray()))
    sparse, dense = take(x, np.arange(7)), torch.from_numpy(x.toarray())
    assert isinstance(sparse, SparseRows) and torch.equal(sparse.dense(), dense)
    loss_s, loss_d = model.loss(sparse)[0], model.loss(dense)[0]
    torch.testing.assert_close(loss_s, loss_d)
    for g_s, g_d in zip(torch.autograd.grad(loss_s, list(model.parameters())),
                        torch.autograd.grad(loss_d, list(model.parameters()))):
        torch.testing.assert_close(g_s, g_d)
    torch.testing.assert_close(model.encode(sparse), model.encode(dense))


def npmi_by_hand(present: np.ndarray, words) -> float:
    n = len(present)
    scores = []
    for i, j in itertools.combinations(words, 2):
        p_i, p_j = present[:, i].mean(), present[:, j].mean()
        p_ij = (present[:, i] & present[:, j]).mean()
        if p_ij == 0:
            scores.append(-1.0)
        elif p_ij == 1:
            scores.append(1.0)
        else:
            scores.append(math.log(p_ij / (p_i * p_j)) / -math.log(p_ij))
    return float(np.mean(scores))


def test_npmi_coherence_as_defined():
    present = np.array([[1, 1, 0, 0, 1],
                        [1, 1, 0, 1, 1],
                        [0, 1, 1, 0, 1],
                        [0, 0, 1, 1, 1]], dtype=bool)
    x = sp.csr_matrix(present * np.linspace(0.1, 0.9, 20).reshape(4, 5))  # values do not matter, presence does
    top = np.array([[0, 1, 2], [3, 4, 0]])
    want = np.mean([npmi_by_hand(present, t) for t in top])
    assert npmi_coherence(x, top) == pytest.approx(want)
    # Words 0 and 2 never share a document: NPMI -1; words always together: 1.
    assert npmi_coherence(x, np.array([[0, 2]])) == -1.0
    assert npmi_coherence(sp.csr_matrix(np.ones((3, 2))), np.array([[0, 1]])) == 1.0


def test_reconstruction_mse_and_topics_frame():
    rng = np.random.default_rng(0)
    x = sp.csr_matrix(rng.random((7, 5)) * (rng.random((7, 5)) < 0.5))
    codes, topics = rng.random((7, 2)), rng.random((2, 5))
    assert reconstruction_mse(x, codes, topics) == pytest.approx(np.mean((x.toarray() - codes @ topics) ** 2))
    frame = topics_frame("nmf", np.array([[0.1, 0.5, 0.2], [0.3, 0.0, 0.9]]), ["a", "b", "c"], 2)
    assert list(frame.columns) == ["model", "topic", "rank", "word", "weight"]
    assert frame["word"].tolist() == ["b", "c", "c", "a"] and frame["rank"].tolist() == [1, 2, 1, 2]
    assert frame["weight"].tolist() == pytest.approx([0.5, 0.2, 0.9, 0.3])


def test_bad_parameters():
    with pytest.raises(StageError, match=r"topics\.n_topics=20 must be smaller than the 10 words"):
        check_params(TopicsParams(n_topics=20, max_features=10), 10)
    with pytest.raises(StageError, match=r"topics\.top_words=30 exceeds"):
        check_params(TopicsParams(n_topics=5, top_words=30, max_features=20), 20)
