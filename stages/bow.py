"""Stage `bow`: bag-of-words counts and TF-IDF over the vocabulary, and the first baseline,
TF-IDF (word n-grams) + logistic regression.

Matrices are written as sparse triplets (doc_id, token_id, value) in Parquet; token_id is the
vocabulary id from `tokenise`, written `chunk_docs` documents at a time. The baseline builds its
own n-gram features from the training split, streamed into the fit; the fit itself holds the
training n-gram matrix (it grows with the training split).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from stages.chunks import chunk_writer, iter_batches, iter_row_groups
from stages.errors import StageError, cli_main, involving
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


def idf_transformer(doc_freq: np.ndarray, n_docs: int, sublinear_tf: bool = True) -> TfidfTransformer:
    """The TfidfTransformer `tfidf_matrix` fits, from the training rows' document frequencies:
    idf is computed as scikit-learn computes it, so the values match to the bit."""
    transformer = TfidfTransformer(sublinear_tf=sublinear_tf).fit(sp.csr_matrix((1, len(doc_freq))))
    idf = np.full(len(doc_freq), n_docs + 1, dtype=np.float64)  # smooth_idf: one extra document
    idf /= doc_freq.astype(np.float64) + 1.0
    np.log(idf, out=idf)
    transformer.idf_ = idf + 1.0
    return transformer


def triplets(matrix: sp.csr_matrix, doc_ids: np.ndarray) -> pa.Table:
    coo = matrix.tocoo()
    return pa.table({"doc_id": pa.array(np.asarray(doc_ids)[coo.row], type=pa.int64()),
                     "token_id": pa.array(coo.col.astype(np.int32)),
                     "value": pa.array(coo.data)})


def logistic_regression(C: float, n_classes: int, seed: int = 0) -> LogisticRegression | OneVsRestClassifier:
    """liblinear logistic regression; one-vs-rest made explicit for more than two classes, since
    scikit-learn (>= 1.8) no longer lets liblinear do it: each class against the rest is the very
    problem the binary model solves, so two-class numbers are unchanged."""
    model = LogisticRegression(C=C, solver="liblinear", max_iter=1000, random_state=seed)
    return model if n_classes <= 2 else OneVsRestClassifier(model)


def fit_tfidf_logreg(train_docs: Sequence[Sequence[str]], y_train: np.ndarray, params: BowParams,
                     seed: int = 0) -> tuple[TfidfVectorizer, LogisticRegression | OneVsRestClassifier]:
    """The baseline: word 1..ngram_max-gram TF-IDF, liblinear logistic regression (one-vs-rest
    for more than two classes)."""
    vectorizer = TfidfVectorizer(tokenizer=_identity, preprocessor=_identity, token_pattern=None,
                                 lowercase=False, ngram_range=(1, params.ngram_max), min_df=params.min_df,
                                 sublinear_tf=params.sublinear_tf, dtype=np.float32)
    features = vectorizer.fit_transform(train_docs)
    y_train = np.asarray(y_train)
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise StageError(f"bow: the training split holds one label only ({classes[0] if len(classes) else 'none'}); "
                         "tfidf_logreg needs two or more")
    model = logistic_regression(params.C, len(classes), seed)
    with involving(f"tfidf_logreg (bow.C={params.C:g}, {len(classes)} classes)"):
        model.fit(features, y_train)
    return vectorizer, model


Batches = Callable[[], Iterable[pa.Table]]


def _doc_batches(batches: Batches) -> Iterator[tuple[np.ndarray, np.ndarray, list[list[str]]]]:
    """(doc_ids, is_train, token lists) of each batch of the tokens table."""
    for batch in batches():
        yield (batch.column("doc_id").to_numpy(), np.asarray(batch.column("split").to_pylist()) == "train",
               batch.column("tokens").to_pylist())


def bow_chunks(batches: Batches, vocabulary: Sequence[str], sublinear_tf: bool,
               counts_out: str | Path, tfidf_out: str | Path) -> None:
    """Counts and TF-IDF triplets of a tokens table (doc_id, split, tokens) read batch by batch:
    a first pass writes the counts and sums the training document frequencies (idf), a second
    reads the counts back a row group at a time and writes TF-IDF. Memory holds one batch's
    matrix, never the corpus's."""
    counter = CountVectorizer(vocabulary=list(vocabulary), analyzer=_identity, dtype=np.int32)
    doc_freq = np.zeros(len(vocabulary), dtype=np.int64)
    n_train = 0
    with chunk_writer(counts_out) as writer:
        for doc_ids, train, docs in _doc_batches(batches):
            counts = counter.transform(docs).tocsr()
            writer.write(triplets(counts, doc_ids))
            doc_freq += np.bincount(counts[train].indices, minlength=len(vocabulary))
            n_train += int(train.sum())
    transformer = idf_transformer(doc_freq, n_train, sublinear_tf)
    with chunk_writer(tfidf_out) as writer:
        for part in whole_docs(iter_row_groups(counts_out)):
            counts, doc_ids = from_triplets(part, len(vocabulary))
            writer.write(triplets(transformer.transform(counts).astype(np.float32).tocsr(), doc_ids))


def whole_docs(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """Triplet tables re-cut so that no document is split between two (Parquet caps a row group
    at about a million rows, so one written chunk may come back as several)."""
    carry = None
    for table in tables:
        if carry is not None:
            table = pa.concat_tables([carry, table])
        doc = table.column("doc_id").to_numpy()
        if not len(doc):
            continue
        cut = len(doc) - int(np.argmax(doc[::-1] != doc[-1])) if (doc != doc[-1]).any() else 0
        if cut:
            yield table.slice(0, cut)
        carry = table.slice(cut)
    if carry is not None and carry.num_rows:
        yield carry


def from_triplets(table: pa.Table, n_columns: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The CSR matrix of triplets written by `triplets` (a document's entries are contiguous), and
    the doc_id of each row. Documents without an entry have no row, which TF-IDF (row-wise) allows."""
    doc = table.column("doc_id").to_numpy()
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]]) if len(doc) else np.zeros(0, dtype=np.int64)
    indptr = np.r_[starts, len(doc)]
    matrix = sp.csr_matrix((table.column("value").to_numpy(), table.column("token_id").to_numpy(), indptr),
                           shape=(len(starts), n_columns))
    return matrix, doc[starts]


def _split_docs(batches: Batches, want_train: bool) -> Iterator[list[str]]:
    for _, train, docs in _doc_batches(batches):
        yield from (d for d, t in zip(docs, train) if t == want_train)


@cli_main
def main() -> None:
    all_params = load_params()
    params = all_params.bow
    corpus = read_frame(CORPUS, columns=["doc_id", "label_id", "source", "split"])
    vocab = read_frame(VOCAB, columns=["token"])["token"]
    labels = read_json(LABELS)
    train = (corpus["split"] == "train").to_numpy()

    def batches() -> Iterator[pa.Table]:
        return iter_batches(TOKENS, ["doc_id", "split", "tokens"], all_params.chunk_docs)

    # Labels come from the corpus and token lists from the tokens table, row by row.
    if not np.array_equal(read_table(TOKENS, columns=["doc_id"]).column("doc_id").to_numpy(),
                          corpus["doc_id"].to_numpy()):
        raise StageError(f"{TOKENS}: its documents are not those of {CORPUS} (rerun tokenise: dvc repro)")

    bow_chunks(batches, vocab, params.sublinear_tf, COUNTS, TFIDF)

    start = time.perf_counter()
    y = corpus["label_id"].to_numpy()
    # The fit needs the training matrix in memory; the token lists are streamed into it.
    vectorizer, model = fit_tfidf_logreg(_split_docs(batches, True), y[train], params, all_params.seed)
    seconds = time.perf_counter() - start
    proba = model.predict_proba(vectorizer.transform(_split_docs(batches, False)))
    pred = model.classes_[proba.argmax(axis=1)]
    test = corpus.loc[~train]
    scores = classification_metrics(y[~train], pred, proba, len(labels), test["source"].reset_index(drop=True))
    scores["train_seconds"] = round(seconds, 2)
    scores["features"] = len(vectorizer.vocabulary_)
    write_table(pd.DataFrame({"doc_id": test["doc_id"].to_numpy(), "label_id": y[~train],
                              "predicted": pred.astype(np.int32), "proba": proba.max(axis=1)}), PREDICTIONS)
    write_json({"models": {"tfidf_logreg": scores}}, METRICS)
    by_source = ", ".join(f"{s} {m['accuracy']:.3f}" for s, m in scores.get("by_source", {}).items())
    print(f"bow: tfidf_logreg test accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f}"
          + (f" ({by_source})" if by_source else ""))


if __name__ == "__main__":
    main()
