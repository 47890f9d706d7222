"""DVC stage `doc2vec`: wiring only; the logic is nlpdag.embeddings.doc2vec."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from nlpdag.catalog import CORPUS, DOCVECS_DIR, TOKENS
from nlpdag.config.base import foreach_item, load_params
from nlpdag.config.doc2vec import Doc2VecParams
from nlpdag.embeddings.doc2vec import MODES, document_vectors, tagged_documents, train_doc2vec
from nlpdag.embeddings.gensim_train import EpochLogger, write_keyed_vectors
from nlpdag.errors import cli_main
from nlpdag.evaluation import protocol as evaluation
from nlpdag.io.tables import read_frame, read_table, write_table
from nlpdag.io.vectors import Timer, vectors_table, write_train_info


@cli_main
def main() -> None:
    mode = foreach_item("doc2vec", MODES)
    all_params = load_params(doc2vec=Doc2VecParams)
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
    documents = tagged_documents([docs[i] for i in index], None if labels is None else [labels[i] for i in index])
    logger = EpochLogger(method, params.epochs)
    with Timer() as timer:
        model = train_doc2vec(documents, mode, params, all_params.seed, callbacks=(logger,))
    position = np.full(len(docs), -1)
    position[index] = np.arange(len(index))
    with Timer() as infer_timer:
        vectors = document_vectors(model, docs, position)
    write_keyed_vectors(method, model.wv)
    table = vectors_table([""] * len(docs), vectors)
    write_table(pa.table({"doc_id": tokens.column("doc_id"), "split": tokens.column("split"),
                          "vector": table.column("vector"), "inferred": pa.array(~in_training)}),
                DOCVECS_DIR / f"{method}.parquet")
    write_train_info(method, timer.seconds, None, vocab_size=len(model.wv), infer_seconds=round(infer_timer.seconds, 2),
                     protocol="train_on_all" if params.train_on_all else "train_only",
                     tags="ids+labels" if params.label_tags else "ids")
    print(f"{method}: {len(model.wv)} words, {len(docs)} documents ({int((~in_training).sum())} inferred) "
          f"in {timer.seconds:.1f} s + {infer_timer.seconds:.1f} s inference")


if __name__ == "__main__":
    main()
