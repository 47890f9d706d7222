"""The validation grid behind `classify`'s training recipe (params.yaml: schedule, warmup, embed_dropout,
pretrained_lr, frozen_epochs, weight_decay, max_len, pretraining): one neural model trained per grid
point on the real corpus, judged on the validation slice of the training split only. No test label is
read: the script prints and writes validation figures alone.

To keep a point within minutes on a 2-core machine, every point trains on the same seeded sample of
`--docs` documents of the fitting part (the training split minus its validation slice) and is judged on
the whole validation slice; the points run `--jobs` at a time, one thread each. Reads the outputs of
`dvc repro classify`'s upstream stages (data/corpus.parquet, tokens, vocab, embeddings); writes
bench/results/recipe.json.

    python bench/recipe.py [--docs 8000] [--jobs 2] [--model lstm-bi-attention@word2vec_skipgram] [--only NAME ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASE = {"epochs": 3, "patience": 2, "schedule": "constant", "warmup": 0.0, "dropout": 0.3, "embed_dropout": 0.3,
        "pretrained_lr": 1.0, "frozen_epochs": 0, "weight_decay": 0.0, "max_len": 256, "pretraining": "none"}
RECIPE = {"schedule": "cosine", "warmup": 0.1}
GRID = {
    "constant (the old recipe)": {},
    "cosine + warm-up": RECIPE,
    "+ embedding at 0.1x": {**RECIPE, "pretrained_lr": 0.1},
    "+ embedding frozen 1 epoch": {**RECIPE, "frozen_epochs": 1},
    "+ 0.1x, embed dropout 0.5, wd 0.01": {**RECIPE, "pretrained_lr": 0.1, "embed_dropout": 0.5, "weight_decay": 0.01},
    "+ 0.1x, max_len 400": {**RECIPE, "pretrained_lr": 0.1, "max_len": 400},
    "+ 0.1x, LM pre-training": {**RECIPE, "pretrained_lr": 0.1, "pretraining": "lm"},
    # second round, around the best of the first (frozen first epoch: lowest validation loss, still falling)
    "+ frozen 1 epoch, 4 epochs": {**RECIPE, "frozen_epochs": 1, "epochs": 4},
    "+ frozen 1 epoch, max_len 400": {**RECIPE, "frozen_epochs": 1, "max_len": 400},
    "+ frozen 1 epoch, then 0.3x": {**RECIPE, "frozen_epochs": 1, "pretrained_lr": 0.3},
    "+ frozen 1 epoch, LM pre-training": {**RECIPE, "frozen_epochs": 1, "pretraining": "lm"},
}


def point(name: str, overrides: dict, model: str, docs: int, seed: int) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from nlpdag.catalog.tokenise import VOCAB
    from nlpdag.classify.dataset import load_dataset
    from nlpdag.config.classify import ClassifyParams
    from nlpdag.io.tables import read_frame
    from nlpdag.models.classifier import NeuralClassifier

    os.chdir(ROOT)
    data = load_dataset()
    rng = np.random.default_rng(seed)
    fit = np.flatnonzero(data.train & ~data.validation)
    fit = np.sort(rng.choice(fit, min(docs, len(fit)), replace=False))
    val = np.flatnonzero(data.validation)
    recipe = ClassifyParams(**{**BASE, **overrides, "device": "cpu"}).recipe()
    vocab = read_frame(VOCAB, columns=["token"])["token"].tolist()
    start = time.perf_counter()
    clf = NeuralClassifier(model, vocab=vocab, seed=seed, verbose=False, log=lambda *a, **k: None, **recipe)
    clf.fit([data.docs[i] for i in fit], data.y[fit], [data.docs[i] for i in val], data.y[val], labels=data.labels)
    val_accuracy = float(np.mean(clf.predict_proba([data.docs[i] for i in val]).argmax(axis=1) == data.y[val]))
    history = clf.history_
    best = min(history, key=lambda h: h["val_loss"])
    return {"name": name, "overrides": overrides, "val_accuracy": round(val_accuracy, 4),
            "best_val_loss": round(best["val_loss"], 4), "best_epoch": clf.best_epoch_,
            "val_loss_by_epoch": [round(h["val_loss"], 4) for h in history],
            "val_accuracy_by_epoch": [round(h["val_accuracy"], 4) for h in history],
            "pretraining_seconds": round(sum(h["seconds"] for h in clf.pretrain_history_), 1),
            "seconds": round(time.perf_counter() - start, 1),
            "tokens_per_second": round(clf.tokens_per_second_)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=8000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="lstm-bi-attention@word2vec_skipgram")
    ap.add_argument("--only", nargs="*", help="grid points by name")
    ap.add_argument("--out", default=str(ROOT / "bench/results/recipe.json"))
    args = ap.parse_args()
    grid = {k: v for k, v in GRID.items() if not args.only or k in args.only}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(point, name, o, args.model, args.docs, args.seed) for name, o in grid.items()]
        rows = []
        for f in futures:
            rows.append(f.result())
            r = rows[-1]
            print(f"{r['name']:<40} val acc {r['val_accuracy']:.4f}  best val loss {r['best_val_loss']:.4f} "
                  f"(epoch {r['best_epoch']}; {r['val_loss_by_epoch']})  {r['seconds']:.0f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Points of an earlier run on the same model and sample stay, unless rerun now.
    kept = []
    if out.exists():
        old = json.loads(out.read_text())
        if (old.get("model"), old.get("docs")) == (args.model, args.docs):
            kept = [p for p in old["points"] if p["name"] not in grid]
    out.write_text(json.dumps({"model": args.model, "docs": args.docs, "base": BASE, "points": kept + rows},
                              indent=1) + "\n")


if __name__ == "__main__":
    main()
