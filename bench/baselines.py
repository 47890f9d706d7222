"""Benchmark of the non-neural baselines (nlpdag/models/baselines.py) on the pipeline's outputs.

Reads (never writes) data/corpus.parquet, data/tokens.parquet, data/vocab.parquet,
data/embeddings/<method>.parquet and data/docvecs/doc2vec_{dm,dbow}.parquet under --root (default: this
checkout) and prints one row per baseline: test accuracy on IMDB, on Rotten Tomatoes and overall,
and the seconds spent building its features and fitting it (prediction excluded).

With --tune, each baseline's C is first chosen on a validation slice (20 %, stratified by
source + label) of the training split only; the test split is never used to choose anything.
Without it, nlpdag.models.baselines.DEFAULT_C is used.

    python bench/baselines.py [--root /work/main] [--tune] [--methods word2vec_skipgram glove ...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlpdag.models.baselines import (DEFAULT_C, fit_dense_logreg,  # noqa: E402
                                    idf_from_doc_freq, mean_vectors, ngram_counts, select_C, stack_vectors)
from nlpdag.io.tables import read_frame, read_table  # noqa: E402
from nlpdag.models.nblinear import DEFAULT_BETA, fit_nb_logreg, fit_nbsvm  # noqa: E402
from nlpdag.io.vectors import read_vectors  # noqa: E402

GRIDS = {"nb_logreg": [0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
         "nbsvm": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
         "dense_logreg": [0.001, 0.01, 0.1, 1.0, 10.0]}
SOURCES = ("imdb", "rotten_tomatoes")


def load(root: Path) -> dict:
    corpus = read_frame(root / "data/corpus.parquet", columns=["doc_id", "label_id", "source", "split"])
    tokens = read_table(root / "data/tokens.parquet", columns=["doc_id", "tokens"])
    if not (tokens.column("doc_id").to_numpy() == corpus["doc_id"].to_numpy()).all():
        raise SystemExit("tokens.parquet and corpus.parquet list documents in different orders")
    train = (corpus["split"] == "train").to_numpy()
    docs = tokens.column("tokens").to_pylist()
    return {"corpus": corpus, "docs": docs, "train": train, "y": corpus["label_id"].to_numpy(),
            "source": corpus["source"].to_numpy(),
            "train_docs": [d for d, t in zip(docs, train) if t],
            "test_docs": [d for d, t in zip(docs, train) if not t]}


def accuracies(data: dict, pred: np.ndarray) -> dict:
    test = ~data["train"]
    y, source = data["y"][test], data["source"][test]
    out = {s: float(np.mean(pred[source == s] == y[source == s])) for s in SOURCES}
    out["all"] = float(np.mean(pred == y))
    return out


class Runner:
    def __init__(self, data: dict, tune: bool, seed: int = 0):
        self.data, self.tune, self.seed = data, tune, seed
        self.rows: list[tuple] = []
        self.chosen: dict[str, tuple[float, dict]] = {}
        train = data["train"]
        self.strata = np.char.add(data["source"][train].astype(str), data["y"][train].astype(str))

    def run(self, name: str, kind: str, fit, X_train, X_test, feature_seconds: float = 0.0) -> None:
        y = self.data["y"][self.data["train"]]
        C = DEFAULT_C[kind]
        start = time.perf_counter()
        if self.tune:
            C, scores = select_C(fit, X_train, y, GRIDS[kind], seed=self.seed, strata=self.strata)
            self.chosen[name] = (C, scores)
        tune_seconds = time.perf_counter() - start
        start = time.perf_counter()
        model = fit(X_train, y, C)
        seconds = time.perf_counter() - start
        acc = accuracies(self.data, model.predict(X_test))
        self.rows.append((name, C, acc, feature_seconds, seconds, tune_seconds))
        print(f"  {name:<28} C={C:<6g} IMDB {acc['imdb']:.4f}  RT {acc['rotten_tomatoes']:.4f}  "
              f"features {feature_seconds:5.1f} s  fit {seconds:5.1f} s" +
              (f"  (tuning {tune_seconds:.1f} s)" if self.tune else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--tune", action="store_true", help="choose each C on a validation slice of train")
    parser.add_argument("--methods", nargs="*", default=["word2vec_cbow", "word2vec_skipgram", "glove", "fasttext"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    wall = time.perf_counter()

    start = time.perf_counter()
    data = load(args.root)
    train = data["train"]
    print(f"loaded {len(data['docs'])} documents ({train.sum()} train) in {time.perf_counter() - start:.1f} s", flush=True)
    runner = Runner(data, args.tune, args.seed)
    seed = args.seed

    start = time.perf_counter()
    X_train, X_test = ngram_counts(data["train_docs"], data["test_docs"], ngram_max=2, min_df=2)
    ngram_seconds = time.perf_counter() - start
    print(f"word 1-2-grams (min_df 2): {X_train.shape[1]} features in {ngram_seconds:.1f} s (shared)", flush=True)
    runner.run("nb_logreg (1-2-grams)", "nb_logreg", lambda X, y, C: fit_nb_logreg(X, y, C=C, seed=seed),
               X_train, X_test, ngram_seconds)
    runner.run(f"nbsvm (beta {DEFAULT_BETA})", "nbsvm",
               lambda X, y, C: fit_nbsvm(X, y, C=C, beta=DEFAULT_BETA, seed=seed), X_train, X_test, ngram_seconds)
    del X_train, X_test

    dense = lambda X, y, C: fit_dense_logreg(X, y, C=C, seed=seed)  # noqa: E731
    vocab = read_frame(args.root / "data/vocab.parquet", columns=["token", "doc_freq"])
    idf = idf_from_doc_freq(vocab["token"].tolist(), vocab["doc_freq"].to_numpy(), int(train.sum()))
    for method in args.methods:
        path = args.root / f"data/embeddings/{method}.parquet"
        tokens, vectors = read_vectors(path)
        if not tokens:
            print(f"  {method}: no vectors, skipped")
            continue
        for label, weights in (("mean", None), ("idf_mean", idf)):
            start = time.perf_counter()
            X = mean_vectors(data["docs"], tokens, vectors, weights)
            runner.run(f"{label} {method}", "dense_logreg", dense, X[train], X[~train], time.perf_counter() - start)

    docvecs = {}
    for mode in ("dm", "dbow"):
        path = args.root / f"data/docvecs/doc2vec_{mode}.parquet"
        if path.exists():
            table = read_table(path, columns=["doc_id", "vector"])
            if (table.column("doc_id").to_numpy() != data["corpus"]["doc_id"].to_numpy()).any():
                raise SystemExit(f"{path}: documents in a different order from corpus.parquet")
            docvecs[f"doc2vec_{mode}"] = stack_vectors(table.column("vector"))
    if len(docvecs) == 2:
        docvecs["doc2vec_dm+dbow"] = np.hstack([docvecs["doc2vec_dm"], docvecs["doc2vec_dbow"]])
    for name, X in docvecs.items():
        runner.run(f"docvec {name}", "dense_logreg", dense, X[train], X[~train])

    print(f"\n| baseline | C | IMDB acc | RT acc | all acc | features s | fit s |" + (" tuning s |" if args.tune else ""))
    print("|---|---|---|---|---|---|---|" + ("---|" if args.tune else ""))
    for name, C, acc, feat, fit, tune in runner.rows:
        print(f"| {name} | {C:g} | {acc['imdb']:.4f} | {acc['rotten_tomatoes']:.4f} | {acc['all']:.4f} | "
              f"{feat:.1f} | {fit:.1f} |" + (f" {tune:.1f} |" if args.tune else ""))
    if args.tune:
        print("\nvalidation accuracy by C (20 % of the training split, stratified by source + label):")
        for name, (C, scores) in runner.chosen.items():
            print(f"  {name:<28} best C={C:g}: " + ", ".join(f"{c:g}: {s:.4f}" for c, s in scores.items()))
    print(f"\ntotal wall time {time.perf_counter() - wall:.1f} s")


if __name__ == "__main__":
    main()
