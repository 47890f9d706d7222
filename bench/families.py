"""Training throughput of every classifier family side by side in one run, on the real corpus, on the CPU:
the BiLSTM (attention pooling) against the Tree-LSTM and the recursive NN over balanced and RAE trees,
and the Transformer encoder (2 x 128), each with the stage's settings (max_len 256 head_tail, hidden 128,
batch 64, tree_segment 30, embed 100 random) and the shared Trainer.

Reads data/tokens.parquet, data/vocab.parquet and data/corpus.parquet (read only), samples `--docs`
training documents (seeded), and for each family, alternating `--rounds` times, times one training epoch
(forward, backward, AdamW, clipping; real tokens per second) and, for the RAE, building the trees of the
sample (trees per second; the auto-encoder trained once, untimed, as the stage does before training).
Writes bench/results/families.json. Compare the ratios within one run: the machine is shared and noisy.

    OMP_WAIT_POLICY=PASSIVE python bench/families.py [--docs 2000] [--rounds 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlpdag.io.tables import read_frame  # noqa: E402
from nlpdag.models.classifier import NeuralClassifier  # noqa: E402

SPECS = ["lstm-bi-attention", "treelstm-balanced", "treelstm-rae", "recnn-balanced", "recnn-rae", "transformer-2x128"]
# The stage's settings, one epoch, random 100-d embeddings, no validation (early stopping off).
RECIPE = {"max_len": 256, "truncation": "head_tail", "hidden": 128, "batch_size": 64, "tree_segment": 30,
          "embed_dim": 100, "epochs": 1, "learning_rate": 2e-3, "clip": 1.0, "frozen_epochs": 0, "rae_epochs": 1,
          "rae_sample": 5000, "device": "cpu"}


def load(data: Path, docs: int, seed: int) -> tuple[list[list[str]], np.ndarray, list[str]]:
    tokens = read_frame(data / "tokens.parquet", ["doc_id", "split", "tokens"])
    vocab = read_frame(data / "vocab.parquet", ["id", "token"]).sort_values("id")["token"].tolist()
    labels = read_frame(data / "corpus.parquet", ["doc_id", "label_id"]).set_index("doc_id")["label_id"]
    train = tokens[tokens["split"] == "train"].reset_index(drop=True)
    pick = np.sort(np.random.default_rng(seed).choice(len(train), size=min(docs, len(train)), replace=False))
    docs_ = [list(d) for d in train["tokens"].iloc[pick]]
    return docs_, labels.loc[train["doc_id"].to_numpy()[pick]].to_numpy().astype(np.int64), vocab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/families.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    docs, y, vocab = load(args.data, args.docs, args.seed)
    speed: dict[str, list[float]] = {name: [] for name in SPECS}
    trees_per_second: list[float] = []
    quiet = dict(verbose=False, log=lambda *_: None)
    for r in range(args.rounds):
        for name in SPECS:
            clf = NeuralClassifier(f"{name}@random", vocab=vocab, seed=r, **quiet, **RECIPE).fit(docs, y)
            speed[name].append(clf.tokens_per_second_)
            print(f"round {r + 1}: {name}: {speed[name][-1]:,.0f} tokens/s", flush=True)
            if name == "treelstm-rae":  # its auto-encoder, trained untimed in fit, builds every document's trees
                start = time.perf_counter()
                n = sum(len(d.trees) for d in clf.encode(docs))
                trees_per_second.append(n / (time.perf_counter() - start))
    tokens = int(sum(min(len(d), RECIPE["max_len"]) or 1 for d in docs))
    base = statistics.median(speed["lstm-bi-attention"])
    result = {"docs": len(docs), "tokens": tokens, "rounds": args.rounds, "threads": args.threads,
              "tokens_per_second": {n: round(statistics.median(v)) for n, v in speed.items()},
              "ratio_to_bilstm": {n: round(statistics.median(v) / base, 3) for n, v in speed.items()},
              "rae_trees_per_second": round(statistics.median(trees_per_second))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
