"""Issue 24's choices, on the validation slice only: NB features over 1-2 vs 1-3-grams, DV-ngram
(PV-DBOW whose document vector predicts its words and 2..n-grams), and NB n-grams + document vectors
in one logistic regression. The test split is never read.

Reads data/corpus.parquet and data/tokens.parquet (dvc repro tokenise) under --root and prints, per
setting, accuracy on the validation slice (all, IMDB, Rotten Tomatoes) and seconds; --out writes JSON.

    python bench/ngram_docvecs.py [--epochs 10 20] [--sizes 100] [--out bench/results/ngram_docvecs.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlpdag.classify.dataset import load_dataset, validation_split  # noqa: E402
from nlpdag.config.doc2vec import Doc2VecParams  # noqa: E402
from nlpdag.embeddings.doc2vec import tagged_documents, train_doc2vec  # noqa: E402
from nlpdag.embeddings.doc2vec_model import ngram_documents  # noqa: E402
from nlpdag.models.baselines import fit_dense_logreg, ngram_features  # noqa: E402
from nlpdag.models.nblinear import fit_nb_docvec, fit_nb_logreg, fit_nbsvm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--epochs", type=int, nargs="*", default=[10, 20])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100])
    parser.add_argument("--ngram-max", type=int, nargs="*", default=[2, 3])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import os
    os.chdir(args.root)
    data = load_dataset()
    fit_pos, val_pos = validation_split(data)
    train_idx = np.flatnonzero(data.train)
    fit_idx, val_idx = train_idx[fit_pos], train_idx[val_pos]
    y_fit, y_val = data.y[fit_idx], data.y[val_idx]
    sources = np.asarray(data.sources)[val_idx]
    rows = []

    def record(name: str, pred: np.ndarray, seconds: float, **info) -> None:
        acc = {"all": float(np.mean(pred == y_val))}
        for s in np.unique(sources):
            acc[s] = float(np.mean(pred[sources == s] == y_val[sources == s]))
        rows.append({"name": name, "validation": acc, "seconds": round(seconds, 1), **info})
        print(f"{name:<44} " + "  ".join(f"{k} {v:.4f}" for k, v in acc.items()) + f"  {seconds:6.1f} s {info}", flush=True)

    docs = data.docs
    nb_X = {}
    for n in args.ngram_max:
        start = time.perf_counter()
        _, X_fit, X_val = ngram_features([docs[i] for i in fit_idx], [docs[i] for i in val_idx], ngram_max=n)
        feat = time.perf_counter() - start
        nb_X[n] = (X_fit, X_val)
        print(f"1-{n}-grams: {X_fit.shape[1]} features in {feat:.1f} s", flush=True)
        for C in (0.003, 0.01, 0.03):
            start = time.perf_counter()
            model = fit_nbsvm(X_fit, y_fit, C=C)
            record(f"nbsvm 1-{n} C={C}", model.predict(X_val), feat + time.perf_counter() - start)
        for C in (0.3, 1.0, 3.0):
            start = time.perf_counter()
            model = fit_nb_logreg(X_fit, y_fit, C=C)
            record(f"nb_logreg 1-{n} C={C}", model.predict(X_val), feat + time.perf_counter() - start)

    n_best = max(args.ngram_max)
    X_fit, X_val = nb_X[n_best]
    for size in args.sizes:
        for epochs in args.epochs:
            params = Doc2VecParams(size=size, ngram_epochs=epochs, workers=args.workers)
            order = np.random.default_rng(0).permutation(len(docs))  # never file order (label blocks)
            start = time.perf_counter()
            model = train_doc2vec(tagged_documents(ngram_documents([docs[i] for i in order], 3), None), "ngram",
                                  params, seed=0)
            seconds = time.perf_counter() - start
            V = model.dv.vectors[np.argsort(order)]  # all texts, test too (train_on_all, the default)
            for C in (0.1, 1.0):
                t = time.perf_counter()
                lr = fit_dense_logreg(V[fit_idx], y_fit, C=C)
                record(f"docvec dv-ngram size {size} ep {epochs} C={C}", lr.predict(V[val_idx]),
                       seconds + time.perf_counter() - t, train_seconds=round(seconds, 1))
            for C in (0.1, 0.3, 1.0):
                for scale in (0.1, 0.3, 1.0):
                    t = time.perf_counter()
                    m = fit_nb_docvec(sp.hstack([X_fit, V[fit_idx]]).tocsr(), y_fit, C=C, n_dense=size, scale=scale)
                    record(f"nb_docvec 1-{n_best} + dv-ngram {size}/{epochs} C={C} s={scale}",
                           m.predict(sp.hstack([X_val, V[val_idx]]).tocsr()), time.perf_counter() - t)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
