"""Stages `doc2vec@dm`, `doc2vec@dbow` and `doc2vec@ngram`: gensim Doc2Vec, PV-DM, PV-DBOW and DV-ngram.

PV-DM predicts a word from its context plus a document vector; PV-DBOW predicts the document's
words from the document vector alone (with `dbow_words`, skip-gram word vectors train alongside,
so the word vectors can be evaluated like the other methods). DV-ngram (Li et al. 2016) is PV-DBOW
whose document vector predicts its words and its 2..`ngram_max`-grams, word training off: its word
vectors stay untrained, so its word-vector table is written empty (no method reads it). Tags are unique document ids;
with `label_tags` a training document also carries its class as a tag (the supervised variant).
By default only training texts are seen in training and test documents get `infer_vector`;
`train_on_all` follows the paper's protocol (all texts, test labels never used).

Output: word vectors `data/embeddings/doc2vec_<mode>.{parquet,txt}`, document vectors
`data/docvecs/doc2vec_<mode>.parquet` (doc_id, split, vector, inferred), `reports/train/doc2vec_<mode>.json`,
and what inferring a new text's vector needs, `data/models/doc2vec_<mode>/` (nlpdag/embeddings/doc2vec_model.py).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
from gensim.models.doc2vec import Doc2Vec, TaggedDocument

from nlpdag.evaluation import protocol as evaluation
from nlpdag.errors import StageError
from nlpdag.training.threads import resolve_threads
from nlpdag.embeddings.gensim_train import EpochLogger, write_keyed_vectors
from nlpdag.embeddings.doc2vec_model import infer_vectors, ngram_documents, save_doc2vec
from nlpdag.io.tables import read_frame, read_table, write_table
from nlpdag.config.doc2vec import Doc2VecParams
from nlpdag.io.vectors import Timer, vectors_table, write_train_info, write_vectors
from nlpdag.catalog.ingest import CORPUS
from nlpdag.catalog.embeddings import DOCVECS_DIR, doc2vec_model_dir
from nlpdag.catalog.tokenise import TOKENS
from nlpdag.config.base import StageParams

MODES = {"dm": 1, "dbow": 0, "ngram": 0}
def tagged_documents(docs: list[list[str]], labels: list | None) -> list[TaggedDocument]:
    """Tag i for document i; plus `label=<class>` when labels are given (None for unlabelled docs)."""
    out = []
    for i, words in enumerate(docs):
        tags = [i] if labels is None or labels[i] is None else [i, f"label={labels[i]}"]
        out.append(TaggedDocument(words, tags))
    return out


def train_doc2vec(documents: list[TaggedDocument], mode: str, params: Doc2VecParams, seed: int,
                  callbacks: tuple = ()) -> Doc2Vec:
    epochs = params.ngram_epochs if mode == "ngram" else params.epochs
    model = Doc2Vec(vector_size=params.size, window=params.window, min_count=params.min_count,
                    dm=MODES[mode], dbow_words=int(params.dbow_words and mode != "ngram"), negative=params.negative,
                    sample=params.sample, workers=resolve_threads(params.workers), seed=seed, epochs=epochs)
    model.build_vocab(documents)
    if not model.wv.index_to_key:
        raise StageError(f"doc2vec: empty vocabulary (no token occurs doc2vec.min_count={params.min_count} times)")
    model.train(documents, total_examples=model.corpus_count, epochs=epochs, callbacks=list(callbacks))
    return model


def document_vectors(model: Doc2Vec, docs: list[list[str]], position: np.ndarray) -> np.ndarray:
    """One vector per document: the trained one where `position[i]` (its index among the training
    documents) is >= 0, else `infer_vectors`, as `nlpdag predict` infers a new text's."""
    out = np.zeros((len(docs), model.vector_size), dtype=np.float32)
    trained = position >= 0
    out[trained] = model.dv.vectors[position[trained]]
    if (~trained).any():
        out[~trained] = infer_vectors(model, [docs[i] for i in np.flatnonzero(~trained)])
    return out


def run(all_params: StageParams, mode: str) -> None:
    """The `doc2vec@<mode>` stage: word and document vectors of one Doc2Vec mode."""
    params, method = all_params.doc2vec, f"doc2vec_{mode}"
    tokens = read_table(TOKENS, columns=["doc_id", "split", "tokens"])
    corpus = read_frame(CORPUS, columns=["doc_id", "label"])
    docs = tokens.column("tokens").to_pylist()
    split = np.array(tokens.column("split").to_pylist())
    in_training = np.ones(len(docs), bool) if params.train_on_all else split == "train"
    labels = None
    if params.label_tags:
        # Test labels are never used, whatever the protocol.
        labels = [lab if s == "train" else None for lab, s in zip(corpus["label"].tolist(), split)]
    index = np.flatnonzero(in_training)
    # A seeded order of the documents themselves: file order (label blocks) never reaches the trainer.
    keys = evaluation.doc_keys([" ".join(docs[i]) for i in index], all_params.seed, evaluation.STREAM_SALT)
    index = index[evaluation.stream_order(keys)]
    words = [docs[i] for i in index]
    documents = tagged_documents(ngram_documents(words, params.ngram_max) if mode == "ngram" else words,
                                 None if labels is None else [labels[i] for i in index])
    logger = EpochLogger(method, params.ngram_epochs if mode == "ngram" else params.epochs)
    with Timer() as timer:
        model = train_doc2vec(documents, mode, params, all_params.seed, callbacks=(logger,))
    position = np.full(len(docs), -1)
    position[index] = np.arange(len(index))
    with Timer() as infer_timer:
        vectors = document_vectors(model, ngram_documents(docs, params.ngram_max) if mode == "ngram" else docs, position)
    if mode == "ngram":  # word training off: its word vectors are untrained, so none are written
        write_vectors(method, [], np.zeros((0, 1), dtype=np.float32))
    else:
        write_keyed_vectors(method, model.wv)
    save_doc2vec(model, doc2vec_model_dir(mode), params.ngram_max if mode == "ngram" else None)
    table = vectors_table([""] * len(docs), vectors)
    write_table(pa.table({"doc_id": tokens.column("doc_id"), "split": tokens.column("split"),
                          "vector": table.column("vector"), "inferred": pa.array(~in_training)}),
                DOCVECS_DIR / f"{method}.parquet")
    write_train_info(method, timer.seconds, None, vocab_size=len(model.wv), infer_seconds=round(infer_timer.seconds, 2),
                     protocol="train_on_all" if params.train_on_all else "train_only",
                     tags="ids+labels" if params.label_tags else "ids")
    print(f"{method}: {len(model.wv)} words, {len(docs)} documents ({int((~in_training).sum())} inferred) "
          f"in {timer.seconds:.1f} s + {infer_timer.seconds:.1f} s inference")
