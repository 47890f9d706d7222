"""Stage `topics`: an auto-encoder over TF-IDF document vectors whose code units are read as topics,
judged against scikit-learn's NMF on the same matrix.

The matrix: the TF-IDF rows (`bow`) of the training split, restricted to the topic vocabulary: the
`topics.max_features` most frequent vocabulary words that are not English stop words
(`topics.stop_words: english`, scikit-learn's list; "it's" counts as "it"), that hold a letter, and
that appear in at most `topics.max_df` of the training documents (near-ubiquitous words say nothing
about a topic).
The auto-encoder (nlpdag/models/autoencoders.py `TopicAutoEncoder`): code = relu(Linear(x)), n_topics
non-negative units; reconstruction = code @ W with W (n_topics x words) non-negative and no bias, so it
has NMF's form x ~ h W with an encoder that computes h. W is kept non-negative by projection (after
every Adam step: clamped at zero, rows rescaled to unit length), starts from n_topics random training
documents (seeded, as k-means starts), and topic k is read off row k of W: its `top_words` largest weights.
It trains on the full-batch-free sparse rows: the squared error is expanded over the non-zeros.
It has no validation set (a fixed number of epochs; coherence is judged on held-out documents once
trained), so its epochs log and record train_loss only, never a val_loss.
NMF: same number of topics, Frobenius loss (the same squared error), `nndsvda` initialisation, seeded.

Metrics (`reports/metrics/topics.json`, {model: {coherence, reconstruction_mse}}):
- coherence: NPMI of the top words, from binary document co-occurrence in the *held-out* (test)
  documents' rows over the same words (a topic must generalise, not just describe its training text),
  NPMI(i, j) = log(P(i, j) / (P(i) P(j))) / -log P(i, j) with P the share of documents containing
  the word(s); -1 for words never seen together, 1 for words in every document; averaged over the
  pairs of a topic's top words, then over topics. Range [-1, 1], higher is more coherent.
- stop_word_share: the share of the top words that are stop words (0 with the default vocabulary).
- reconstruction_mse: mean squared error per element of the training matrix, X ~ codes @ topics.
Topics: `data/topics.parquet` (model, topic, rank, word, weight).
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from threadpoolctl import threadpool_limits

from nlpdag.models.autoencoders import ProjectTopics, TopicAutoEncoder, train, transform
from nlpdag.training.trainer import TrainerConfig
from nlpdag.errors import StageError
from nlpdag.io.tables import read_table, write_table
from nlpdag.config.base import StageParams
from nlpdag.config.topics import TopicsParams
from nlpdag.io.vectors import Timer
from nlpdag.catalog.ingest import CORPUS
from nlpdag.catalog.bow import TFIDF
from nlpdag.catalog.topics import TOPICS, TOPICS_METRICS, TOPICS_SCORES
from nlpdag.evaluation.headline import topics_headline, write_scores
from nlpdag.catalog.tokenise import VOCAB
from nlpdag.training.progress import DVCLiveLogger
from nlpdag.training.progress import live
from nlpdag.training.devices import resolve_device

NMF_MAX_ITER = 200


def is_stop_word(token: str) -> bool:
    """scikit-learn's English stop words, with clitics: "it's", "you'll" count as their stem, and
    "don't", "isn't" as "do", "is"."""
    if token in ENGLISH_STOP_WORDS:
        return True
    stem, apostrophe, rest = token.partition("'")
    return bool(apostrophe) and (stem in ENGLISH_STOP_WORDS or (rest == "t" and stem[:-1] in ENGLISH_STOP_WORDS))


def topic_vocabulary(tokens: list[str], doc_freq: np.ndarray, n_train: int, params: TopicsParams) -> np.ndarray:
    """Vocabulary ids (frequency ranks, most frequent first) of the words topics are made of."""
    keep = np.array([any(c.isalpha() for c in t) for t in tokens], dtype=bool)
    keep &= np.asarray(doc_freq, dtype=np.float64) <= params.max_df * max(n_train, 1)
    if params.stop_words == "english":
        keep &= ~np.array([is_stop_word(t) for t in tokens], dtype=bool)
    return np.flatnonzero(keep)[: params.max_features]


def training_matrix(doc_id: np.ndarray, token_id: np.ndarray, value: np.ndarray, train_ids: np.ndarray,
                    n_words: int | np.ndarray) -> sp.csr_matrix:
    """(documents x words) CSR from TF-IDF triplets; rows in the order of sorted train_ids, columns the
    vocabulary ids `n_words` lists (an int n: ids 0..n-1); other documents and words dropped."""
    columns = np.arange(n_words) if np.ndim(n_words) == 0 else np.asarray(n_words)
    col_of = np.full(max(int(token_id.max(initial=-1)) + 1, int(columns.max(initial=-1)) + 1), -1, dtype=np.int64)
    col_of[columns] = np.arange(len(columns))
    train_ids = np.unique(train_ids)
    row = np.searchsorted(train_ids, doc_id)
    col = col_of[token_id] if len(token_id) else np.zeros(0, dtype=np.int64)
    keep = (row < len(train_ids)) & (col >= 0)
    keep[keep] &= train_ids[row[keep]] == doc_id[keep]
    matrix = sp.csr_matrix((value[keep].astype(np.float32), (row[keep], col[keep])),
                           shape=(len(train_ids), len(columns)))
    matrix.sum_duplicates()
    return matrix


def read_inputs(params: TopicsParams) -> tuple[sp.csr_matrix, sp.csr_matrix, list[str]]:
    """(training matrix, held-out (test) matrix, words of the columns)."""
    vocab = read_table(VOCAB, columns=["token", "doc_freq"])
    tokens = vocab.column("token").to_pylist()
    corpus = read_table(CORPUS, columns=["doc_id", "split"]).to_pandas()
    tfidf = read_table(TFIDF, columns=["doc_id", "token_id", "value"])
    doc_id, token_id, value = (tfidf.column(c).to_numpy() for c in ("doc_id", "token_id", "value"))
    if len(token_id) and int(token_id.max()) >= len(tokens):
        raise StageError(f"{TFIDF}: token id {int(token_id.max())} is outside the vocabulary of {len(tokens)} "
                         f"words (rerun the bow stage)")
    train_ids = corpus.loc[corpus["split"] == "train", "doc_id"].to_numpy()
    test_ids = corpus.loc[corpus["split"] == "test", "doc_id"].to_numpy()
    columns = topic_vocabulary(tokens, vocab.column("doc_freq").to_numpy(), len(train_ids), params)
    matrix = training_matrix(doc_id, token_id, value, train_ids, columns)
    if matrix.nnz == 0:
        raise StageError(f"{TFIDF}: no TF-IDF entries for training documents in the topic vocabulary "
                         "(rerun the bow stage, or loosen topics.max_df / topics.stop_words)")
    held_out = training_matrix(doc_id, token_id, value, test_ids, columns)
    return matrix, held_out, [tokens[i] for i in columns]


def check_params(params: TopicsParams, n_words: int) -> None:
    if params.n_topics >= n_words:
        raise StageError(f"params.yaml: topics.n_topics={params.n_topics} must be smaller than the "
                         f"{n_words} words of the matrix (topics.max_features or the vocabulary)")
    if params.top_words > n_words:
        raise StageError(f"params.yaml: topics.top_words={params.top_words} exceeds the {n_words} words")


def fit_autoencoder(matrix: sp.csr_matrix, params: TopicsParams, seed: int = 0, device: str = "cpu",
                    verbose: bool = False, callbacks: Sequence[object] = ()) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(codes (docs, K), topics (K, words), history) of the topic auto-encoder."""
    torch.manual_seed(seed)
    rows = np.random.default_rng(seed).choice(matrix.shape[0], size=params.n_topics, replace=False)
    model = TopicAutoEncoder(matrix.shape[1], params.n_topics, init=torch.from_numpy(matrix[rows].toarray()))
    config = TrainerConfig(name="topics", epochs=params.epochs, batch_size=params.batch_size,
                           learning_rate=params.learning_rate, optimizer="adam", fused=True, amp=False, seed=seed,
                           device=device, device_param="topics.device", verbose=verbose)
    trainer = train(model, matrix, None, config, callbacks=[ProjectTopics(model), *callbacks])
    codes, _ = transform(model, matrix, device=device, reconstruct=False)
    return codes, model.topics.detach().cpu().numpy(), trainer.history_


def fit_nmf(matrix: sp.csr_matrix, n_topics: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(codes (docs, K), topics (K, words)) of scikit-learn's NMF (coordinate descent, at most
    NMF_MAX_ITER iterations: the loss has long stopped moving by then, tolerance or not)."""
    nmf = NMF(n_components=n_topics, init="nndsvda", random_state=seed, max_iter=NMF_MAX_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        codes = nmf.fit_transform(matrix)
    return codes.astype(np.float32), nmf.components_.astype(np.float32)


def top_word_ids(topics: np.ndarray, n: int) -> np.ndarray:
    """(K, n) word ids of each topic's largest weights, largest first (ties: lower id first)."""
    return np.argsort(-topics, axis=1, kind="stable")[:, :n]


def npmi_coherence(matrix: sp.csr_matrix, top_ids: np.ndarray) -> float:
    """Mean NPMI over the word pairs of each topic (top_ids (K, N)), then over topics; from binary
    document presence in `matrix` (docs x words)."""
    n_docs, (k, n) = matrix.shape[0], top_ids.shape
    present = (matrix[:, top_ids.reshape(-1)] > 0).astype(np.float64)  # (D, K*N)
    co = (present.T @ present).toarray().reshape(k, n, k, n)[np.arange(k), :, np.arange(k), :]  # (K, N, N)
    p_i = np.diagonal(co, axis1=1, axis2=2) / n_docs  # (K, N)
    p_ij = co / n_docs
    with np.errstate(divide="ignore", invalid="ignore"):
        npmi = (np.log(p_ij) - np.log(p_i[:, :, None]) - np.log(p_i[:, None, :])) / -np.log(p_ij)
    npmi = np.where(co == 0, -1.0, np.where(co == n_docs, 1.0, npmi))
    upper = np.triu_indices(n, 1)
    return float(npmi[:, upper[0], upper[1]].mean())


def reconstruction_mse(matrix: sp.csr_matrix, codes: np.ndarray, topics: np.ndarray) -> float:
    """Mean over all elements of (X - H W)^2, H = codes, W = topics, without densifying X:
    ||X||^2 - 2 sum(H * (X W')) + sum((H'H) * (W W')), in float64."""
    h, w = codes.astype(np.float64), topics.astype(np.float64)
    total = (np.square(matrix.data, dtype=np.float64).sum() - 2 * np.sum(h * (matrix @ w.T))
             + np.sum((h.T @ h) * (w @ w.T)))
    return float(max(total, 0.0)) / (matrix.shape[0] * matrix.shape[1])


def topics_frame(model: str, topics: np.ndarray, words: list[str], n: int) -> pd.DataFrame:
    ids = top_word_ids(topics, n)
    k = np.repeat(np.arange(len(ids)), ids.shape[1])
    return pd.DataFrame({"model": model, "topic": k.astype(np.int32),
                         "rank": np.tile(np.arange(1, ids.shape[1] + 1), len(ids)).astype(np.int32),
                         "word": [words[i] for i in ids.reshape(-1)],
                         "weight": topics[k, ids.reshape(-1)].astype(np.float32)})


def run_on(params: StageParams, device: torch.device) -> dict:
    config = params.topics
    matrix, held_out, words = read_inputs(config)
    check_params(config, len(words))
    metrics, frames = {}, []
    for model in ("autoencoder", "nmf"):
        with Timer() as timer:
            if model == "autoencoder":
                with live("topics") as logger:
                    codes, topics, _ = fit_autoencoder(matrix, config, params.seed, str(device), verbose=True,
                                                       callbacks=[DVCLiveLogger(logger, model)])
            else:
                codes, topics = fit_nmf(matrix, config.n_topics, params.seed)
        top = top_word_ids(topics, config.top_words)
        coherence = round(npmi_coherence(held_out, top), 4) if held_out.shape[0] else None
        metrics[model] = {"coherence": coherence, "coherence_on": "test documents",
                          "stop_word_share": round(float(np.mean([is_stop_word(words[i]) for i in top.ravel()])), 4),
                          "reconstruction_mse": float(f"{reconstruction_mse(matrix, codes, topics):.6g}")}
        frames.append(topics_frame(model, topics, words, config.top_words))
        print(f"topics: {model:<11} held-out NPMI {metrics[model]['coherence']}  "
              f"mse {metrics[model]['reconstruction_mse']:.4g}  {timer.seconds:.1f} s", flush=True)
    write_table(pd.concat(frames, ignore_index=True), TOPICS)
    write_scores(metrics, TOPICS_SCORES, TOPICS_METRICS, topics_headline(metrics))
    print(f"topics: {matrix.shape[0]} training documents x {matrix.shape[1]} words, {config.n_topics} topics")
    return metrics


def run(params: StageParams) -> dict:
    """The `topics` stage, on the device its params ask for, single-threaded on the CPU."""
    device = resolve_device(params.topics.device, "topics.device")
    if device.type == "cpu":
        torch.set_num_threads(1)  # a small model: threads cost more than they give (see stages/reduce.py)
    with threadpool_limits(1):  # NMF's BLAS calls too: on a busy 2-core machine two threads ran 20x slower
        return run_on(params, device)
