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

from nlpdag.evaluation import protocol as evaluation
from nlpdag.io.tables import atomic_path, write_json, write_table
from nlpdag.evaluation.scores import classification_metrics
from nlpdag.classify.paths import TREES
from nlpdag.catalog.classify import ATTENTION, CLASSIFY_METRICS, CLASSIFY_MODELS, CLASSIFY_PREDICTIONS, CLASSIFY_STATES, CONFUSION_DIR, CURVES_DIR, SUMMARY
if TYPE_CHECKING:
    from nlpdag.classify.dataset import Dataset, Result
    from nlpdag.config.classify import ClassifyParams



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


def score_results(results: list[Result], data: Dataset, seed: int = 0) -> dict:
    y_test = data.y[data.test]
    sources = data.sources[data.test].reset_index(drop=True)
    lengths = np.array([len(data.docs[i]) for i in np.flatnonzero(data.test)])
    bands = length_bands(lengths)
    models = {}
    for r in results:
        scores = classification_metrics(y_test, r.proba.argmax(axis=1), r.proba, len(data.labels), sources, seed)
        correct = r.proba.argmax(axis=1) == y_test
        scores["by_length"] = {name: {"accuracy": round(float(correct[rows].mean()), 4), "n": int(rows.sum())}
                               for name, rows in bands.items() if rows.any()}
        scores["train_seconds"] = round(r.seconds, 2)
        if "tokens_per_second" in r.extra:
            scores["tokens_per_second"] = round(float(r.extra["tokens_per_second"]))
        scores["kind"] = r.kind
        scores["transductive"] = bool(r.info.get("transductive", False))
        for key in ("C", "validation_accuracy", "epochs", "trained_on", "representation_seconds", "gradients",
                    "ensemble"):
            if key in r.info:
                scores[key] = r.info[key]
        models[r.name] = scores
    return {"models": models}


def length_bands(lengths: np.ndarray) -> dict[str, np.ndarray]:
    """Test documents by token length, in quartiles ("<=52 tokens", "53-110 tokens", ...): the
    evidence for 'LSTMs cope with long documents better than plain RNNs'."""
    if not len(lengths):
        return {}
    edges = np.unique(np.quantile(lengths, [0.25, 0.5, 0.75]).astype(int))
    bands, lo = {}, int(lengths.min())
    for hi in [*edges, int(lengths.max())]:
        rows = (lengths >= lo) & (lengths <= hi)
        if rows.any() and hi >= lo:
            bands[f"{lo}-{hi} tokens"] = rows
        lo = hi + 1
    return bands


def accuracy_on_test(result: Result, data: Dataset) -> float:
    """A row's accuracy on the test split (for the stage's log; the scores are `score_results`')."""
    return float(np.mean(result.proba.argmax(axis=1) == data.y[data.test]))


def validation_accuracy(result: Result, data: Dataset) -> float:
    """A row's accuracy on the validation slice (its `val_proba` rows follow the slice's order)."""
    return float(np.mean(result.val_proba.argmax(axis=1) == data.y[data.validation]))


def chosen_on_validation(results: list[Result], data: Dataset) -> Result | None:
    """The most accurate of `results` on the validation slice (ties: the later name); rows without
    validation predictions are not candidates."""
    pool = [r for r in results if r.val_proba is not None]
    return max(pool, key=lambda r: (validation_accuracy(r, data), r.name), default=None)


def summarise(metrics: dict, results: list[Result], data: Dataset) -> dict:
    """Per scope (overall, each source): the most accurate row on the test split and whether an exact
    McNemar test separates it from the runner-up (`winner`, else null and `tied_with`); the best
    baseline likewise; and `best_neural`, the neural model chosen on the validation slice (the
    default of `nlpdag predict`, the t-SNE classifier map and the attention panel)."""
    models = metrics["models"]
    sources = sorted({s for m in models.values() for s in m.get("by_source", {})})
    y_test = data.y[data.test]
    src = data.sources[data.test].fillna("").to_numpy()
    preds = {r.name: r.proba.argmax(axis=1) for r in results}
    kinds = {r.name: r.kind for r in results}
    out: dict = {key: {} for key in ("winner", "best", "tied_with", "p_value", "runner_up", "best_baseline",
                                     "neural_vs_baseline")}
    for scope in [None, *sources]:
        rows = np.ones(len(y_test), bool) if scope is None else src == scope
        key = scope or "overall"
        v = evaluation.verdict(y_test[rows], {n: p[rows] for n, p in preds.items()})
        for field in ("winner", "best", "tied_with", "p_value", "runner_up"):
            out[field][key] = v[field]
        base = evaluation.verdict(y_test[rows], {n: p[rows] for n, p in preds.items() if kinds[n] == "baseline"})["best"]
        out["best_baseline"][key] = base
        out["neural_vs_baseline"][key] = neural_vs_baseline(y_test[rows], {n: p[rows] for n, p in preds.items()}, kinds, base)
    chosen = chosen_on_validation([r for r in results if r.kind == "neural"], data)
    out["best_neural"] = {"overall": chosen and chosen.name, "chosen_on": "validation accuracy"}
    out["versus"] = family_tests(results, data, sources)
    return {**out, "labels": data.labels, "sources": sources}


def family(name: str) -> str | None:
    from nlpdag.config.classify import parse_spec

    parts = parse_spec(name)
    return parts and parts["family"]


def family_tests(results: list[Result], data: Dataset, sources: list[str]) -> dict:
    """The course's model-family questions, each a paired (exact McNemar) test on the same test documents,
    overall and per source, between the rows chosen on the validation slice: the best tree model against
    the best recurrent one (`tree_vs_recurrent`, with `short_source`: the source whose test texts have
    the fewest tokens at the median) and the best Transformer against the best recurrent one."""
    y = data.y[data.test]
    src = data.sources[data.test].fillna("").to_numpy()
    lengths = np.array([len(data.docs[i]) for i in np.flatnonzero(data.test)])
    by = {f: chosen_on_validation([r for r in results if r.kind == "neural" and family(r.name) == f], data)
          for f in ("rnn", "tree", "transformer")}
    out = {}
    for key, f in (("tree_vs_recurrent", "tree"), ("transformer_vs_recurrent", "transformer")):
        a, b = by[f], by["rnn"]
        if a is None or b is None:
            continue
        pa_, pb = a.proba.argmax(axis=1), b.proba.argmax(axis=1)
        scopes = {}
        for scope in ["overall", *sources]:
            rows = np.ones(len(y), bool) if scope == "overall" else src == scope
            acc_a, acc_b = float(np.mean(pa_[rows] == y[rows])), float(np.mean(pb[rows] == y[rows]))
            p = evaluation.mcnemar(y[rows], pa_[rows], pb[rows])
            scopes[scope] = {"accuracy_a": round(acc_a, 4), "accuracy_b": round(acc_b, 4), "gain": round(acc_a - acc_b, 4),
                             "p_value": float(f"{p:.3g}"), "significant": bool(p < evaluation.ALPHA),
                             "n": int(rows.sum())}  # 3 significant digits: a tiny p stays > 0
        out[key] = {"a": a.name, "b": b.name, "scopes": scopes}
    if "tree_vs_recurrent" in out and sources:
        out["tree_vs_recurrent"]["short_source"] = min(sources, key=lambda s: (float(np.median(lengths[src == s])), s))
    return out


def neural_vs_baseline(y: np.ndarray, preds: dict, kinds: dict, baseline: str | None) -> dict | None:
    """The most accurate row with a neural component (a neural model or an ensemble) against the best
    baseline, by an exact McNemar test on the same documents: the course's question, deep or linear."""
    deep = evaluation.verdict(y, {n: p for n, p in preds.items() if kinds[n] != "baseline"})["best"]
    if deep is None or baseline is None:
        return None
    gain = float(np.mean(preds[deep] == y) - np.mean(preds[baseline] == y))
    p = evaluation.mcnemar(y, preds[deep], preds[baseline])
    return {"row": deep, "baseline": baseline, "gain": round(gain, 4), "p_value": round(p, 4),
            "significant": bool(p < evaluation.ALPHA and gain > 0)}


def example_docs(result: Result, data: Dataset, n: int, seed: int, fits=lambda doc: len(doc) <= 80) -> list[int]:
    """Positions (in the test split) of `n` test documents that `fits` accepts, half of them (when there
    are any) misclassified by `result`, the rest right, drawn with `seed`."""
    test_idx = np.flatnonzero(data.test)
    pred = result.proba.argmax(axis=1)
    pool = np.flatnonzero(np.array([fits(data.docs[i]) for i in test_idx], dtype=bool))
    rng = np.random.default_rng(seed)
    wrong = [k for k in pool if pred[k] != data.y[test_idx[k]]]
    right = [k for k in pool if pred[k] == data.y[test_idx[k]]]
    chosen = list(rng.permutation(wrong)[:n // 2]) if wrong else []
    return [int(k) for k in chosen + list(rng.permutation(right)[:n - len(chosen)])]


def attention_examples(result: Result, data: Dataset, params: ClassifyParams, chosen: list[int]) -> list[dict]:
    """The attention weight of every word the model read, for the test documents at `chosen`."""
    if not result.extra.get("attention"):
        return []
    test_idx = np.flatnonzero(data.test)
    pred = result.proba.argmax(axis=1)
    examples = []
    for k in chosen:
        i = test_idx[k]
        words = truncate(data.docs[i], params.max_len, params.truncation) or ["<unk>"]
        weights = np.asarray(result.extra["attention"][k], dtype=float)
        examples.append({"model": result.name, "doc_id": int(data.doc_ids[i]),
                         "label": data.labels[data.y[i]], "predicted": data.labels[pred[k]],
                         "tokens": words, "weights": [round(w, 5) for w in weights[:len(words)]]})
    return examples


def attending(results: list[Result], data: Dataset) -> list[Result]:
    """The attention models shown: per family (recurrent with attention pooling, Transformer), the one
    most accurate on the validation slice; the recurrent one first."""
    shown = []
    for family in (lambda n: not n.startswith("transformer-"), lambda n: n.startswith("transformer-")):
        pick = chosen_on_validation([r for r in results if r.kind == "neural" and r.extra.get("attention")
                                     and family(r.name)], data)
        if pick is not None:
            shown.append(pick)
    return shown


def tree_examples(result: Result, model, saved: dict, data: Dataset, params: ClassifyParams, seed: int) -> list[dict]:
    """A few short test documents (one tree each), with every node's prediction: the report's tree panel."""
    import torch

    from nlpdag.models.sequences import encode_docs
    from nlpdag.models.trees import make_forest

    if params.tree_docs == 0:
        return []
    chosen = example_docs(result, data, params.tree_docs, seed, lambda doc: 4 <= len(doc) <= min(14, params.tree_segment))
    test_idx = np.flatnonzero(data.test)
    index = {w: i + 2 for i, w in enumerate(saved["words"])}
    docs = model.prepare(encode_docs([data.docs[test_idx[k]] for k in chosen], index, params.max_len, params.truncation))
    model = model.cpu().eval()
    out = []
    with torch.no_grad():
        for k, doc in zip(chosen, docs):
            forest = make_forest([doc], keep_nodes=True)
            proba = torch.softmax(model.node_logits(model.node_states(forest)[forest.nodes]).float(), dim=1).numpy()
            i = test_idx[k]
            out.append({"model": result.name, "doc_id": int(data.doc_ids[i]), "label": data.labels[data.y[i]],
                        "predicted": data.labels[int(result.proba[k].argmax())], "tokens": list(data.docs[i]),
                        "children": doc.trees[0].tolist(),
                        "node_predicted": [data.labels[j] for j in proba.argmax(axis=1)],
                        "node_confidence": [round(float(p), 4) for p in proba.max(axis=1)]})
    return out


def write_outputs(results: list[Result], models: dict, data: Dataset, params: ClassifyParams, seed: int) -> dict:
    metrics = score_results(results, data, seed)
    test_ids, y_test = data.doc_ids[data.test], data.y[data.test]
    frames, states, attention, trees = [], [], [], []
    # The attention panel: per family, the attention model chosen on the validation slice, on the same documents.
    shown = attending(results, data)
    chosen = example_docs(shown[0], data, params.attention_docs, seed) if shown else []
    for r in shown:
        attention += attention_examples(r, data, params, chosen)
    # The tree panel: the tree model chosen on the validation slice.
    tree_row = chosen_on_validation([r for r in results if r.name in models and hasattr(models[r.name][0], "node_logits")], data)
    if tree_row is not None:
        trees = tree_examples(tree_row, *models[tree_row.name], data, params, seed)
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
    write_table(pd.concat(frames, ignore_index=True), CLASSIFY_PREDICTIONS)
    if states:
        write_table(pa.concat_tables(states), CLASSIFY_STATES)
    else:
        write_table(pa.table({"model": pa.array([], pa.string()), "doc_id": pa.array([], pa.int64()),
                              "vector": pa.array([], pa.list_(pa.float32()))}), CLASSIFY_STATES)
    write_json(attention, ATTENTION)
    write_json(trees, TREES)
    labels = np.array(data.labels)
    for folder in (CURVES_DIR, CONFUSION_DIR):  # a model dropped from the params leaves no stale file
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True)  # declared outputs: present even when no model wrote into them
    for r in results:
        pred = r.proba.argmax(axis=1)
        with atomic_path(CONFUSION_DIR / f"{r.name}.csv") as tmp:
            pd.DataFrame({"actual": labels[y_test], "predicted": labels[pred]}).to_csv(tmp, index=False)
        if r.kind == "neural":
            cols = ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"]
            with atomic_path(CURVES_DIR / f"{r.name}.csv") as tmp:
                pd.DataFrame(r.extra["history"])[cols].to_csv(tmp, index=False)
    write_models(models)
    summary = summarise(metrics, results, data)
    write_json(summary, SUMMARY)
    write_json(metrics, CLASSIFY_METRICS)
    return summary


def write_models(models: dict) -> None:
    """{name: (model, what `nlpdag predict` needs)}, each in data/models/classify/<name>/; all of them
    in a temporary folder first, moved into place at the end."""
    from nlpdag.models.checkpoints import save_checkpoint

    CLASSIFY_MODELS.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".classify.", dir=CLASSIFY_MODELS.parent))
    try:
        for name, (model, saved) in models.items():
            folder = tmp / name
            folder.mkdir()
            save_checkpoint(folder / "model.pt", model, None, saved)
            (folder / "labels.json").write_text(json.dumps(saved["labels"]) + "\n", encoding="utf-8")
            (folder / "vocab.txt").write_text("\n".join(saved["words"]) + "\n", encoding="utf-8")
        shutil.rmtree(CLASSIFY_MODELS, ignore_errors=True)
        tmp.rename(CLASSIFY_MODELS)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
