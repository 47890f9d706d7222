"""DVC stage `bow`: wiring only; the logic is nlpdag.text.bow."""
from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from nlpdag.catalog import BOW_METRICS, BOW_PREDICTIONS, CORPUS, COUNTS, LABELS, TFIDF, TOKENS, VOCAB
from nlpdag.config.base import load_params
from nlpdag.config.bow import BowParams
from nlpdag.errors import StageError, cli_main
from nlpdag.evaluation.scores import classification_metrics
from nlpdag.io.chunks import iter_batches
from nlpdag.io.tables import read_frame, read_json, read_table, write_json, write_table
from nlpdag.text.bow import token_lists, bow_chunks, fit_tfidf_logreg, select_C


@cli_main
def main() -> None:
    all_params = load_params(bow=BowParams)
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
    C, val_scores = (select_C(token_lists(batches, fit_rows), y[fit_rows], token_lists(batches, validation), y[validation],
                              params, all_params.seed) if len(params.C) > 1 else (params.C[0], {}))
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
    write_json({"models": {"tfidf_logreg": scores}}, BOW_METRICS)
    by_source = ", ".join(f"{s} {m['accuracy']:.3f}" for s, m in scores.get("by_source", {}).items())
    print(f"bow: tfidf_logreg (C {C:g}) test accuracy {scores['accuracy']:.3f} {scores['accuracy_ci']}, "
          f"macro-F1 {scores['macro_f1']:.3f}" + (f" ({by_source})" if by_source else ""))


if __name__ == "__main__":
    main()
