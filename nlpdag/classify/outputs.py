"""What the `classify` stage writes: every row's scores and the summary (computed by
nlpdag/evaluation/rows.py), predictions, pooled states, the report's attention and tree panels'
candidates, curves and confusion tables (paths: nlpdag/catalog/classify.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from nlpdag.catalog.classify import (ATTENTION, CLASSIFY_METRICS, CLASSIFY_PREDICTIONS, CLASSIFY_SCORES, CLASSIFY_STATES,
                                     CONFUSION_DIR,
                                     CURVES_DIR, SUMMARY, TREES)
from nlpdag.classify.dataset import Dataset, Result
from nlpdag.classify.serving import save_rows
from nlpdag.classify.neural import ATTENTION_MAX_TOKENS, CURVE_COLUMNS, example_pool, list_column
from nlpdag.evaluation.headline import classify_headline, write_scores
from nlpdag.evaluation.rows import chosen_on_validation, score_results, summarise
from nlpdag.io.tables import atomic_path, write_json, write_table
from nlpdag.names import family, parse_model


def attending(results: list[Result], data: Dataset) -> list[Result]:
    """The attention models shown: per family (recurrent with attention pooling, Transformer), the one
    most accurate on the validation slice; the recurrent one first."""
    shown = []
    for kind in ("rnn", "transformer"):
        pool = [r for r in results if r.kind == "neural" and family(r.name) == kind and parse_model(r.name).attends]
        if (pick := chosen_on_validation(pool, data)) is not None:
            shown.append(pick)
    return shown


def attention_candidates(results: list[Result], data: Dataset, seed: int) -> list[dict]:
    """Every attention model shown (`attending`) on the same short test documents: misclassified ones (by
    the first model) first, then right ones, each in a seeded order (`example_pool`); the report shows
    `report.attention_docs` of them."""
    shown = attending(results, data)
    if not shown:
        return []
    test_idx = np.flatnonzero(data.test)
    fits = np.array([len(data.docs[i]) <= ATTENTION_MAX_TOKENS for i in test_idx], dtype=bool)
    pool = example_pool(shown[0].proba.argmax(axis=1), data.y[test_idx], fits, seed)
    examples = []
    for r in shown:
        pred = r.proba.argmax(axis=1)
        for k, wrong in pool:
            i = test_idx[k]
            tokens, weights = r.extra["attention"][int(data.doc_ids[i])]
            examples.append({"model": r.name, "doc_id": int(data.doc_ids[i]), "label": data.labels[data.y[i]],
                             "predicted": data.labels[pred[k]], "wrong": wrong, "tokens": list(tokens),
                             "weights": [round(float(w), 5) for w in weights]})
    return examples


def tree_candidates(results: list[Result], data: Dataset) -> list[dict]:
    """The tree model chosen on the validation slice: its short test sentences with every node's prediction."""
    row = chosen_on_validation([r for r in results if r.kind == "neural" and family(r.name) == "tree"], data)
    return row.extra["trees"] if row is not None else []


def write_outputs(results: list[Result], data: Dataset, seed: int, keys: dict[str, str] | None = None,
                  tokenise: dict | None = None) -> dict:
    """`keys`: a neural row's spec -> its classify.models key (the headline metrics' stable name);
    `tokenise`: the tokenise params, saved with each servable row so that predict tokenises new texts alike."""
    metrics = score_results(results, data, seed)
    test_ids, y_test = data.doc_ids[data.test], data.y[data.test]
    frames, states = [], []
    for r in results:
        pred = r.proba.argmax(axis=1)
        frames.append(pd.DataFrame({
            "model": r.name, "doc_id": test_ids, "label_id": y_test.astype(np.int32), "predicted": pred.astype(np.int32),
            "confidence": r.proba.max(axis=1).astype(np.float32),
            "proba_1": (r.proba[:, 1] if r.proba.shape[1] == 2 else np.full(len(pred), np.nan)).astype(np.float32)}))
        if r.kind == "neural":
            vec = r.extra["states"]
            # list<float>, not fixed-size: models differ in their state size.
            states.append(pa.table({"model": pa.array([r.name] * len(vec)), "doc_id": pa.array(test_ids),
                                    "vector": list_column(vec)}))
    write_table(pd.concat(frames, ignore_index=True), CLASSIFY_PREDICTIONS)
    if states:
        write_table(pa.concat_tables(states), CLASSIFY_STATES)
    else:
        write_table(pa.table({"model": pa.array([], pa.string()), "doc_id": pa.array([], pa.int64()),
                              "vector": pa.array([], pa.list_(pa.float32()))}), CLASSIFY_STATES)
    write_json(attention_candidates(results, data, seed), ATTENTION)
    write_json(tree_candidates(results, data), TREES)
    labels = np.array(data.labels)
    for folder in (CURVES_DIR, CONFUSION_DIR):  # a model dropped from the params leaves no stale file
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True)  # declared outputs: present even when no model wrote into them
    for r in results:
        pred = r.proba.argmax(axis=1)
        with atomic_path(CONFUSION_DIR / f"{r.name}.csv") as tmp:
            pd.DataFrame({"actual": labels[y_test], "predicted": labels[pred]}).to_csv(tmp, index=False)
        if r.kind == "neural":
            with atomic_path(CURVES_DIR / f"{r.name}.csv") as tmp:
                pd.DataFrame(r.extra["history"])[CURVE_COLUMNS].to_csv(tmp, index=False)
    save_rows(results, data, tokenise or {}, keys)
    summary = summarise(metrics, results, data)
    write_json(summary, SUMMARY)
    write_scores(metrics, CLASSIFY_SCORES, CLASSIFY_METRICS, classify_headline(metrics["models"], keys))
    return summary
