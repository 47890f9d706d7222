"""The `neural@<key>` stages: one neural model of `classify.models` each, trained on the training split
minus its validation slice (early stopping on the slice), then its outputs for the `classify` stage.

Each writes data/models/classify/<key>/ (the fitted `NeuralClassifier`: what `nlpdag predict` loads) and
data/classify/neural/<key>/: proba.parquet (the validation slice's and the test split's class
probabilities, by doc_id), states.parquet (the test documents' pooled vectors, for t-SNE), attention.parquet
(attending models: the weight of every word of the short test documents the report may show),
trees.json (tree models: short test sentences with every node's prediction), curves.csv and info.json.
`read_neural` turns them back into a row of the classifier table.

Under `torchrun --nproc_per_node N -m stages.neural <key>` every rank trains together
(DistributedDataParallel); rank 0 alone predicts and writes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from nlpdag.catalog.classify import (CHECKPOINTS, CURVES, INFO, PROBA, STATES, model_dir, neural_dir)
from nlpdag.classify.dataset import Dataset, Result, validation_split
from nlpdag.errors import StageError
from nlpdag.io.tables import read_table, write_json, write_table
from nlpdag.names import parse_model

ATTENTION_FILE, TREES_FILE = "attention.parquet", "trees.json"
ATTENTION_MAX_TOKENS = 80   # the attention panel's documents: short enough to read
TREE_MIN_TOKENS, TREE_MAX_TOKENS = 4, 14   # the tree panel's sentences: one tree that fits a screen
POOL = 50                   # candidates of each kind (misclassified, right) the report draws its examples from
CURVE_COLUMNS = ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"]


def example_pool(pred: np.ndarray, y: np.ndarray, fits: np.ndarray, seed: int, size: int = POOL) -> list[tuple[int, bool]]:
    """(position, misclassified) of test documents that `fits`: up to `size` misclassified ones, then up to
    `size` right ones, each kind in a seeded random order. The report shows the first n // 2 misclassified
    and fills up with right ones, so its examples do not depend on how many it shows."""
    pool = np.flatnonzero(fits)
    rng = np.random.default_rng(seed)
    wrong = [k for k in pool if pred[k] != y[k]]
    right = [k for k in pool if pred[k] == y[k]]
    wrong = list(rng.permutation(wrong)[:size]) if wrong else []
    return [(int(k), True) for k in wrong] + [(int(k), False) for k in rng.permutation(right)[:size]]


def list_column(vectors) -> pa.Array:
    """Rows of float32 of any lengths as list<float>."""
    vectors = [np.asarray(v, dtype=np.float32) for v in vectors]
    offsets = np.concatenate([[0], np.cumsum([len(v) for v in vectors])]).astype(np.int32)
    flat = np.concatenate(vectors) if vectors else np.zeros(0, np.float32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float32()))


def train_model(key: str, spec: str, data: Dataset, vocab: list[str], recipe: dict, seed: int,
                tokenise: dict, log=print, logger=None) -> dict | None:
    """Fit `spec` and write both output folders; the info it wrote (None on ranks other than 0)."""
    from nlpdag.models.classifier import NeuralClassifier
    from nlpdag.training import distributed as dd
    from nlpdag.training.progress import DVCLiveLogger

    fit, val = validation_split(data)
    train_idx, test_idx = np.flatnonzero(data.train), np.flatnonzero(data.test)
    docs = lambda rows: [data.docs[i] for i in rows]  # noqa: E731
    clf = NeuralClassifier(spec, vocab=vocab, seed=seed, checkpoint_dir=CHECKPOINTS, log=log,
                           callbacks=[DVCLiveLogger(logger, spec)], **recipe)
    clf.fit(docs(train_idx[fit]), data.y[train_idx[fit]], docs(train_idx[val]), data.y[train_idx[val]], labels=data.labels)
    if not dd.is_main():
        return None
    out = clf.predict_all(docs(test_idx))
    val_proba = clf.predict_proba(docs(train_idx[val]))
    info = {"spec": spec, "seconds": round(clf.seconds_, 2), "tokens_per_second": clf.tokens_per_second_,
            "epochs": clf.best_epoch_, "gradients": clf.gradients_, "history": clf.history_,
            "pretrain_history": clf.pretrain_history_}
    write_folder(neural_dir(key), lambda tmp: write_predictions(tmp, clf, data, out, val_proba, info, seed))
    write_folder(model_dir(key), lambda tmp: clf.save(tmp, tokenise=tokenise, key=key))
    return info


def write_folder(folder: Path, write) -> None:
    """`write(tmp)` into a temporary folder beside `folder`, then moved into its place: never half-written."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_predictions(folder: Path, clf, data: Dataset, out: dict, val_proba: np.ndarray, info: dict, seed: int) -> None:
    test_idx, val_ids = np.flatnonzero(data.test), data.doc_ids[data.validation]
    proba = np.vstack([val_proba, out["proba"]])
    write_table(pa.table({"doc_id": pa.array(np.concatenate([val_ids, data.doc_ids[test_idx]])),
                          "part": pa.array(["validation"] * len(val_ids) + ["test"] * len(test_idx)),
                          "proba": list_column(proba)}), folder / PROBA)
    write_table(pa.table({"doc_id": pa.array(data.doc_ids[test_idx]), "vector": list_column(out["states"])}),
                folder / STATES)
    short = [k for k, i in enumerate(test_idx) if len(data.docs[i]) <= ATTENTION_MAX_TOKENS]
    if "attention" in out:
        tokens = [clf.read_tokens(data.docs[test_idx[k]]) or ["<unk>"] for k in short]  # as the model read them
        write_table(pa.table({"doc_id": pa.array(data.doc_ids[test_idx[short]] if short else [], pa.int64()),
                              "tokens": pa.array(tokens, pa.list_(pa.string())),
                              "weights": list_column([out["attention"][k][:len(t)] for k, t in zip(short, tokens)])}),
                    folder / ATTENTION_FILE)
    if clf.spec_.family == "tree":
        write_json(tree_examples(clf, data, out["proba"], seed), folder / TREES_FILE)
    pd.DataFrame(info["history"])[CURVE_COLUMNS].to_csv(folder / CURVES, index=False)
    write_json({k: v for k, v in info.items() if k != "history"}, folder / INFO)


def tree_examples(clf, data: Dataset, proba: np.ndarray, seed: int) -> list[dict]:
    """Short test sentences (one tree each), misclassified ones first, with every node's prediction."""
    test_idx = np.flatnonzero(data.test)
    pred = proba.argmax(axis=1)
    fits = np.array([TREE_MIN_TOKENS <= len(data.docs[i]) <= min(TREE_MAX_TOKENS, clf.recipe.tree_segment)
                     for i in test_idx], dtype=bool)
    pool = example_pool(pred, data.y[test_idx], fits, seed)
    nodes = clf.tree_nodes([data.docs[test_idx[k]] for k, _ in pool])
    out = []
    for (k, wrong), tree in zip(pool, nodes):
        i = test_idx[k]
        out.append({"model": clf.spec, "doc_id": int(data.doc_ids[i]), "label": data.labels[data.y[i]],
                    "predicted": data.labels[int(pred[k])], "wrong": wrong, "tokens": list(data.docs[i]),
                    "children": tree["children"], "node_predicted": [data.labels[j] for j in tree["proba"].argmax(axis=1)],
                    "node_confidence": [round(float(p), 4) for p in tree["proba"].max(axis=1)]})
    return out


# ---- read back by the `classify` stage ---------------------------------------------------------------

def read_neural(key: str, spec: str, data: Dataset) -> Result:
    """A neural@<key> stage's outputs as a row (test and validation probabilities in the split's order)."""
    folder = neural_dir(key)
    if not (folder / INFO).is_file():
        raise StageError(f"{folder}: model {key!r} ({spec}) has not been trained (run: dvc repro neural@{key})")
    info = json.loads((folder / INFO).read_text(encoding="utf-8"))
    if info.get("spec") != spec:
        raise StageError(f"{folder}: holds {info.get('spec')!r}, but classify.models.{key} is {spec!r} "
                         f"(run: dvc repro neural@{key})")
    table = read_table(folder / PROBA)
    proba = {(part, int(d)): p for part, d, p in zip(table.column("part").to_pylist(), table.column("doc_id").to_numpy(),
                                                     stacked(table.column("proba")))}

    def rows(part: str, ids: np.ndarray) -> np.ndarray:
        try:
            return np.stack([proba[(part, int(d))] for d in ids])
        except KeyError:
            raise StageError(f"{folder / PROBA}: its {part} documents differ from the corpus "
                             f"(run: dvc repro neural@{key})") from None

    states = read_table(folder / STATES)
    attention = {}
    if (folder / ATTENTION_FILE).is_file():
        table = read_table(folder / ATTENTION_FILE)
        attention = {d: (t, w) for d, t, w in zip(table.column("doc_id").to_pylist(), table.column("tokens").to_pylist(),
                                                  stacked(table.column("weights"), ragged=True))}
    extra = {"history": pd.read_csv(folder / CURVES).to_dict("records"), "tokens_per_second": info["tokens_per_second"],
             "best_epoch": info["epochs"], "states": stacked(states.column("vector")), "attention": attention,
             "trees": json.loads((folder / TREES_FILE).read_text()) if (folder / TREES_FILE).is_file() else None,
             "pretrain_history": info.get("pretrain_history") or []}
    result = Result(spec, "neural", rows("test", data.doc_ids[data.test]), info["seconds"], extra,
                    rows("validation", data.doc_ids[data.validation]))
    result.info = {"epochs": info["epochs"], "gradients": info["gradients"],
                   "trained_on": "train split minus its validation slice (epochs chosen on the slice by early stopping)"}
    return result


def stacked(column, ragged: bool = False):
    """A list<float> column as an (N, D) float32 array (or a list of arrays when `ragged`)."""
    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    offsets, values = column.offsets.to_numpy(), column.values.to_numpy(zero_copy_only=False)
    rows = [values[offsets[k]:offsets[k + 1]] for k in range(len(column))]
    if ragged:
        return rows
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)


def check_specs(models: dict[str, str]) -> None:
    """Every spec parses (the params schema checked it; a stage given a key by hand is checked again)."""
    for key, spec in models.items():
        try:
            parse_model(spec)
        except ValueError as exc:
            raise StageError(f"params.yaml: classify.models.{key}: {exc}") from None
