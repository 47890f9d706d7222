"""Stage `bow`: bag-of-words counts and TF-IDF over the vocabulary, and the first baseline,
TF-IDF (word n-grams) + logistic regression.

Matrices are written as sparse triplets (doc_id, token_id, value) in Parquet; token_id is the
vocabulary id from `tokenise`, written `chunk_docs` documents at a time. The baseline builds its
own n-gram features from the training split, streamed into the fit; the fit itself holds the
training n-gram matrix (it grows with the training split).

The fitted baseline is kept for `nlpdag predict` as plain data (nlpdag/models/tfidf.py, data/models/tfidf_logreg). The chosen C's
fit without the validation slice leaves its validation probabilities (data/bow/validation.parquet), so
that `classify` can weigh this row against the others on the same slice.
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

from nlpdag.evaluation import protocol as evaluation
from nlpdag.io.chunks import chunk_writer, iter_batches, iter_row_groups
from nlpdag.errors import StageError, involving
from nlpdag.evaluation.scores import classification_metrics
from nlpdag.io.tables import read_frame, read_json, read_table, write_json, write_table
from nlpdag.config.bow import BowParams
from nlpdag.catalog.bow import BOW_SCORES, BOW_PREDICTIONS, BOW_VALIDATION, COUNTS, TFIDF
from nlpdag.models.tfidf import save_tfidf_logreg
from nlpdag.catalog.ingest import CORPUS, LABELS
from nlpdag.catalog.tokenise import TOKENS, VOCAB
from nlpdag.config.base import StageParams



def _identity(doc):
    return doc


def idf_transformer(doc_freq: np.ndarray, n_docs: int, sublinear_tf: bool = True) -> TfidfTransformer:
    """The TfidfTransformer fitted on the training rows' counts, from their document frequencies:
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


def tfidf_features(train_docs: Iterable[Sequence[str]], params: BowParams) -> tuple[TfidfVectorizer, sp.csr_matrix]:
    """Word 1..ngram_max-gram TF-IDF, its vocabulary and idf from `train_docs` only."""
    vectorizer = TfidfVectorizer(tokenizer=_identity, preprocessor=_identity, token_pattern=None,
                                 lowercase=False, ngram_range=(1, params.ngram_max), min_df=params.min_df,
                                 sublinear_tf=params.sublinear_tf, dtype=np.float32)
    return vectorizer, vectorizer.fit_transform(train_docs)


def fit_logreg(features: sp.csr_matrix, y_train: np.ndarray, C: float,
               seed: int = 0) -> LogisticRegression | OneVsRestClassifier:
    y_train = np.asarray(y_train)
    classes = np.unique(y_train)
    if len(classes) < 2:
        raise StageError(f"bow: the training split holds one label only ({classes[0] if len(classes) else 'none'}); "
                         "tfidf_logreg needs two or more")
    model = logistic_regression(C, len(classes), seed)
    with involving(f"tfidf_logreg (bow.C={C:g}, {len(classes)} classes)"):
        return model.fit(features, y_train)


def fit_tfidf_logreg(train_docs: Iterable[Sequence[str]], y_train: np.ndarray, params: BowParams,
                     seed: int = 0, C: float | None = None) -> tuple[TfidfVectorizer, LogisticRegression | OneVsRestClassifier]:
    """The baseline: word 1..ngram_max-gram TF-IDF, liblinear logistic regression (one-vs-rest
    for more than two classes), with `C` (default: the first of bow.C)."""
    vectorizer, features = tfidf_features(train_docs, params)
    return vectorizer, fit_logreg(features, y_train, params.C[0] if C is None else C, seed)


def select_C(fit_docs: Iterable[Sequence[str]], y_fit: np.ndarray, val_docs: Iterable[Sequence[str]],
             y_val: np.ndarray, params: BowParams, seed: int = 0) -> tuple[float, dict[float, float], np.ndarray]:
    """The C of bow.C with the best accuracy on the validation slice, fitting on the rest of the
    training split (the test split is never read); every C's accuracy; the chosen fit's validation
    probabilities (n_val, classes)."""
    vectorizer, features = tfidf_features(fit_docs, params)
    X_val = vectorizer.transform(val_docs)
    proba = {}

    def accuracy(C: float) -> float:
        model = fit_logreg(features, y_fit, C, seed)
        proba[C] = model.predict_proba(X_val)
        return float(np.mean(model.classes_[proba[C].argmax(axis=1)] == y_val))

    C, scores = evaluation.select(params.C, accuracy)
    return C, scores, proba[C]


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


def token_lists(batches: Batches, rows: np.ndarray) -> Iterator[list[str]]:
    """The token lists of the rows where `rows` (a mask over the tokens table) is true, streamed."""
    at = 0
    for _, _, docs in _doc_batches(batches):
        keep = rows[at:at + len(docs)]
        at += len(docs)
        yield from (d for d, k in zip(docs, keep) if k)


def run(all_params: StageParams) -> None:
    """The `bow` stage: count and TF-IDF matrices of every document, and the TF-IDF + LR baseline."""
    params = all_params.bow
    corpus = read_frame(CORPUS, columns=["doc_id", "label_id", "source", "split", "validation"])
    vocab = read_frame(VOCAB, columns=["token"])["token"]
    labels = read_json(LABELS)
    train = (corpus["split"] == "train").to_numpy()
    validation = corpus["validation"].to_numpy(dtype=bool) & train

    def batches() -> Iterator[pa.Table]:
        return iter_batches(TOKENS, ["doc_id", "split", "tokens"], all_params.chunk_docs)

    # Labels come from the corpus and token lists from the tokens table, row by row.
    if not np.array_equal(read_table(TOKENS, columns=["doc_id"]).column("doc_id").to_numpy(),
                          corpus["doc_id"].to_numpy()):
        raise StageError(f"{TOKENS}: its documents are not those of {CORPUS} (rerun tokenise: dvc repro)")

    bow_chunks(batches, vocab, params.sublinear_tf, COUNTS, TFIDF)

    start = time.perf_counter()
    y = corpus["label_id"].to_numpy()
    fit_rows = train & ~validation
    C, val_scores, val_proba = (select_C(token_lists(batches, fit_rows), y[fit_rows], token_lists(batches, validation),
                                         y[validation], params, all_params.seed) if len(params.C) > 1 else (params.C[0], {}, None))
    # The fit needs the training matrix in memory; the token lists are streamed into it.
    vectorizer, model = fit_tfidf_logreg(token_lists(batches, train), y[train], params, all_params.seed, C=C)
    seconds = time.perf_counter() - start
    proba = model.predict_proba(vectorizer.transform(token_lists(batches, ~train)))
    pred = model.classes_[proba.argmax(axis=1)]
    test = corpus.loc[~train]
    scores = classification_metrics(y[~train], pred, proba, len(labels), test["source"].reset_index(drop=True),
                                    seed=all_params.seed)
    scores["train_seconds"] = round(seconds, 2)
    scores["features"] = len(vectorizer.vocabulary_)
    scores["C"] = C
    scores["validation_accuracy"] = {f"{c:g}": round(v, 4) for c, v in val_scores.items()} or None
    scores["trained_on"] = ("train split (C chosen on its validation slice, then refitted on all of it)"
                            if val_scores else "train split")
    write_table(pd.DataFrame({"doc_id": test["doc_id"].to_numpy(), "label_id": y[~train],
                              "predicted": pred.astype(np.int32), "proba": proba.max(axis=1)}), BOW_PREDICTIONS)
    write_json({"models": {"tfidf_logreg": scores}}, BOW_SCORES)
    save_tfidf_logreg(vectorizer, model, C)
    # One C only: nothing was fitted without the slice, so no rows (classify then cannot choose this row to serve).
    k = len(labels)
    val_ids = corpus.loc[validation, "doc_id"].to_numpy() if val_proba is not None else np.zeros(0, np.int64)
    val_proba = np.zeros((0, k)) if val_proba is None else val_proba
    write_table(pa.table({"doc_id": pa.array(val_ids, pa.int64()),
                          "proba": pa.array(list(val_proba.astype(np.float64)), pa.list_(pa.float64(), val_proba.shape[1]))}),
                BOW_VALIDATION)
    by_source = ", ".join(f"{s} {m['accuracy']:.3f}" for s, m in scores.get("by_source", {}).items())
    print(f"bow: tfidf_logreg (C {C:g}) test accuracy {scores['accuracy']:.3f} {scores['accuracy_ci']}, "
          f"macro-F1 {scores['macro_f1']:.3f}" + (f" ({by_source})" if by_source else ""))
