"""The `classify` stage's outputs: scores, the summary, predictions, pooled states, attention
examples, curves, confusion tables and the trained models (paths below; see stages/classify.py)."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from stages.io import atomic_path, write_json, write_table
from stages.scores import classification_metrics

if TYPE_CHECKING:
    from stages.classify import Dataset, Result
    from stages.params import ClassifyParams

METRICS = "reports/metrics/classify.json"
SUMMARY = "reports/classify/summary.json"
ATTENTION = "reports/classify/attention.json"
CURVES_DIR = Path("reports/plots/classify")
CONFUSION_DIR = Path("reports/plots/confusion")
PREDICTIONS = "data/classify/predictions.parquet"
STATES = "data/classify/states.parquet"
MODELS_DIR = Path("data/models/classify")


def truncate(doc: list[str], max_len: int, truncation: str) -> list[str]:
    """The words the model reads, as `seqtrain.encode_docs` cuts them (for showing attention)."""
    if len(doc) <= max_len:
        return doc
    if truncation == "head":
        return doc[:max_len]
    if truncation == "tail":
        return doc[-max_len:]
    head = max_len // 4
    return doc[:head] + doc[len(doc) - (max_len - head):]


def score_results(results: list[Result], data: Dataset) -> dict:
    y_test = data.y[data.test]
    sources = data.sources[data.test].reset_index(drop=True)
    models = {}
    for r in results:
        scores = classification_metrics(y_test, r.proba.argmax(axis=1), r.proba, len(data.labels), sources)
        scores["train_seconds"] = round(r.seconds, 2)
        if "tokens_per_second" in r.extra:
            scores["tokens_per_second"] = round(float(r.extra["tokens_per_second"]))
        scores["kind"] = r.kind
        models[r.name] = scores
    return {"models": models}


def summarise(metrics: dict, data: Dataset) -> dict:
    """The winner and the best baseline by test accuracy, overall and per source."""
    models = metrics["models"]
    sources = sorted({s for m in models.values() for s in m.get("by_source", {})})

    def best(kind: str | None, source: str | None) -> str | None:
        pool = {n: m if source is None else m["by_source"].get(source, {}) for n, m in models.items()
                if kind is None or m["kind"] == kind}
        pool = {n: m["accuracy"] for n, m in pool.items() if "accuracy" in m}
        return max(pool, key=lambda n: (pool[n], n)) if pool else None

    keys = [None, *sources]
    return {"winner": {k or "overall": best(None, k) for k in keys},
            "best_baseline": {k or "overall": best("baseline", k) for k in keys},
            "best_neural": {k or "overall": best("neural", k) for k in keys},
            "labels": data.labels, "sources": sources}


def attention_examples(result: Result, data: Dataset, params: ClassifyParams, seed: int) -> list[dict]:
    """A few short test documents, misclassified ones first when there are any, with the attention
    weight of every word the model read."""
    if not result.extra.get("attention") or params.attention_docs == 0:
        return []
    test_idx = np.flatnonzero(data.test)
    pred = result.proba.argmax(axis=1)
    short = np.flatnonzero(np.array([len(data.docs[i]) <= 80 for i in test_idx]))
    rng = np.random.default_rng(seed)
    wrong = [k for k in short if pred[k] != data.y[test_idx[k]]]
    right = [k for k in short if pred[k] == data.y[test_idx[k]]]
    half = params.attention_docs // 2
    chosen = list(rng.permutation(wrong)[:half]) if wrong else []
    chosen += list(rng.permutation(right)[:params.attention_docs - len(chosen)])
    examples = []
    for k in chosen:
        i = test_idx[k]
        words = truncate(data.docs[i], params.max_len, params.truncation) or ["<unk>"]
        weights = np.asarray(result.extra["attention"][k], dtype=float)
        examples.append({"model": result.name, "doc_id": int(data.doc_ids[i]),
                         "label": data.labels[data.y[i]], "predicted": data.labels[pred[k]],
                         "tokens": words, "weights": [round(w, 5) for w in weights[:len(words)]]})
    return examples


def write_outputs(results: list[Result], models: dict, data: Dataset, params: ClassifyParams, seed: int) -> dict:
    metrics = score_results(results, data)
    test_ids, y_test = data.doc_ids[data.test], data.y[data.test]
    frames, states, attention = [], [], []
    for r in results:
        pred = r.proba.argmax(axis=1)
        frames.append(pd.DataFrame({
            "model": r.name, "doc_id": test_ids, "label_id": y_test.astype(np.int32), "predicted": pred.astype(np.int32),
            "confidence": r.proba.max(axis=1).astype(np.float32),
            "proba_1": (r.proba[:, 1] if r.proba.shape[1] == 2 else np.full(len(pred), np.nan)).astype(np.float32)}))
        if r.kind == "neural":
            vec = np.asarray(r.extra["states"], dtype=np.float32)
            # list<float>, not fixed-size: models differ in their state size.
            offsets = pa.array(np.arange(len(vec) + 1, dtype=np.int32) * vec.shape[1])
            states.append(pa.table({"model": pa.array([r.name] * len(vec)), "doc_id": pa.array(test_ids),
                                    "vector": pa.ListArray.from_arrays(offsets, pa.array(vec.ravel()))}))
            attention += attention_examples(r, data, params, seed)
    write_table(pd.concat(frames, ignore_index=True), PREDICTIONS)
    if states:
        write_table(pa.concat_tables(states), STATES)
    else:
        write_table(pa.table({"model": pa.array([], pa.string()), "doc_id": pa.array([], pa.int64()),
                              "vector": pa.array([], pa.list_(pa.float32()))}), STATES)
    write_json(attention, ATTENTION)
    labels = np.array(data.labels)
    for folder in (CURVES_DIR, CONFUSION_DIR):  # a model dropped from the params leaves no stale file
        shutil.rmtree(folder, ignore_errors=True)
    for r in results:
        pred = r.proba.argmax(axis=1)
        with atomic_path(CONFUSION_DIR / f"{r.name}.csv") as tmp:
            pd.DataFrame({"actual": labels[y_test], "predicted": labels[pred]}).to_csv(tmp, index=False)
        if r.kind == "neural":
            cols = ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"]
            with atomic_path(CURVES_DIR / f"{r.name}.csv") as tmp:
                pd.DataFrame(r.extra["history"])[cols].to_csv(tmp, index=False)
    write_models(models)
    summary = summarise(metrics, data)
    write_json(summary, SUMMARY)
    write_json(metrics, METRICS)
    return summary


def write_models(models: dict) -> None:
    """{name: (model, what `nlpdag predict` needs)}, each in data/models/classify/<name>/; all of them
    in a temporary folder first, moved into place at the end."""
    from stages.seqtrain import save_checkpoint

    MODELS_DIR.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".classify.", dir=MODELS_DIR.parent))
    try:
        for name, (model, saved) in models.items():
            folder = tmp / name
            folder.mkdir()
            save_checkpoint(folder / "model.pt", model, None, saved)
            (folder / "labels.json").write_text(json.dumps(saved["labels"]) + "\n", encoding="utf-8")
            (folder / "vocab.txt").write_text("\n".join(saved["words"]) + "\n", encoding="utf-8")
        shutil.rmtree(MODELS_DIR, ignore_errors=True)
        tmp.rename(MODELS_DIR)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
