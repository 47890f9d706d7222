"""Stage `bow`: bag-of-words counts and TF-IDF over the vocabulary, and the first baseline,
TF-IDF (word n-grams) + logistic regression.

Matrices are written as sparse triplets (doc_id, token_id, value) in Parquet; token_id is the
vocabulary id from `tokenise`. The baseline builds its own n-gram features from the training split.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from stages.errors import cli_main
from stages.scores import classification_metrics
from stages.io import read_frame, read_json, read_table, write_json, write_table
from stages.params import BowParams, load_params

CORPUS = "data/corpus.parquet"
TOKENS = "data/tokens.parquet"
VOCAB = "data/vocab.parquet"
LABELS = "data/labels.json"
COUNTS = "data/bow/counts.parquet"
TFIDF = "data/bow/tfidf.parquet"
PREDICTIONS = "data/bow/predictions.parquet"
METRICS = "reports/metrics/bow.json"


def _identity(doc):
    return doc


def count_matrix(docs: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> sp.csr_matrix:
    """docs x vocabulary term counts; tokens outside the vocabulary are ignored."""
    vectorizer = CountVectorizer(vocabulary=list(vocabulary), analyzer=_identity, dtype=np.int32)
    return vectorizer.transform(docs).tocsr()


def tfidf_matrix(counts: sp.csr_matrix, train_mask: np.ndarray, sublinear_tf: bool = True) -> sp.csr_matrix:
    """TF-IDF with idf learnt on the training rows only, rows L2-normalised."""
    transformer = TfidfTransformer(sublinear_tf=sublinear_tf).fit(counts[train_mask])
    return transformer.transform(counts).astype(np.float32).tocsr()


def triplets(matrix: sp.csr_matrix, doc_ids: np.ndarray) -> pa.Table:
    coo = matrix.tocoo()
    return pa.table({"doc_id": pa.array(np.asarray(doc_ids)[coo.row], type=pa.int64()),
                     "token_id": pa.array(coo.col.astype(np.int32)),
                     "value": pa.array(coo.data)})


def fit_tfidf_logreg(train_docs: Sequence[Sequence[str]], y_train: np.ndarray, params: BowParams,
                     seed: int = 0) -> tuple[TfidfVectorizer, LogisticRegression]:
    """The baseline: word 1..ngram_max-gram TF-IDF, liblinear logistic regression."""
    vectorizer = TfidfVectorizer(tokenizer=_identity, preprocessor=_identity, token_pattern=None,
                                 lowercase=False, ngram_range=(1, params.ngram_max), min_df=params.min_df,
                                 sublinear_tf=params.sublinear_tf, dtype=np.float32)
    features = vectorizer.fit_transform(train_docs)
    model = LogisticRegression(C=params.C, solver="liblinear", max_iter=1000, random_state=seed)
    model.fit(features, y_train)
    return vectorizer, model


@cli_main
def main() -> None:
    all_params = load_params()
    params = all_params.bow
    corpus = read_frame(CORPUS, columns=["doc_id", "label_id", "source", "split"])
    tokens = read_table(TOKENS, columns=["doc_id", "tokens"])
    docs = tokens.column("tokens").to_pylist()
    vocab = read_frame(VOCAB, columns=["token"])["token"]
    labels = read_json(LABELS)
    doc_ids = corpus["doc_id"].to_numpy()
    train = (corpus["split"] == "train").to_numpy()

    counts = count_matrix(docs, vocab)
    write_table(triplets(counts, doc_ids), COUNTS)
    write_table(triplets(tfidf_matrix(counts, train, params.sublinear_tf), doc_ids), TFIDF)

    start = time.perf_counter()
    y = corpus["label_id"].to_numpy()
    train_docs = [d for d, t in zip(docs, train) if t]
    test_docs = [d for d, t in zip(docs, train) if not t]
    vectorizer, model = fit_tfidf_logreg(train_docs, y[train], params, all_params.seed)
    seconds = time.perf_counter() - start
    proba = model.predict_proba(vectorizer.transform(test_docs))
    pred = model.classes_[proba.argmax(axis=1)]
    test = corpus.loc[~train]
    scores = classification_metrics(y[~train], pred, proba, len(labels), test["source"].reset_index(drop=True))
    scores["train_seconds"] = round(seconds, 2)
    scores["features"] = len(vectorizer.vocabulary_)
    write_table(pd.DataFrame({"doc_id": test["doc_id"].to_numpy(), "label_id": y[~train],
                              "predicted": pred.astype(np.int32), "proba": proba.max(axis=1)}), PREDICTIONS)
    write_json({"models": {"tfidf_logreg": scores}}, METRICS)
    by_source = ", ".join(f"{s} {m['accuracy']:.3f}" for s, m in scores.get("by_source", {}).items())
    print(f"bow: tfidf_logreg test accuracy {scores['accuracy']:.3f}" + (f" ({by_source})" if by_source else ""))


if __name__ == "__main__":
    main()
