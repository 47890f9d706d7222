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
from nlpdag.models.recursive import TreeClassifier, TreeConfig, train_rae  # noqa: E402
from nlpdag.models.rnn import RNNClassifier, RNNConfig  # noqa: E402
from nlpdag.models.sequences import encode_docs, fit_classifier, vocab_index  # noqa: E402
from nlpdag.models.transformer import TransformerClassifier, TransformerConfig  # noqa: E402
from nlpdag.training.trainer import TrainerConfig  # noqa: E402

MAX_LEN, BATCH, SEGMENT = 256, 64, 30


def load(data: Path, docs: int, seed: int) -> tuple[list[np.ndarray], np.ndarray, int]:
    tokens = read_frame(data / "tokens.parquet", ["doc_id", "split", "tokens"])
    vocab = read_frame(data / "vocab.parquet", ["id", "token"]).sort_values("id")
    labels = read_frame(data / "corpus.parquet", ["doc_id", "label_id"]).set_index("doc_id")["label_id"]
    train = tokens[tokens["split"] == "train"].reset_index(drop=True)
    pick = np.sort(np.random.default_rng(seed).choice(len(train), size=min(docs, len(train)), replace=False))
    seqs = encode_docs(train["tokens"].iloc[pick].tolist(), vocab_index(vocab["token"].tolist()), MAX_LEN, "head_tail")
    return seqs, labels.loc[train["doc_id"].to_numpy()[pick]].to_numpy().astype(np.int64), len(vocab) + 2


def models(V: int, seqs: list[np.ndarray]) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    leaves = rng.normal(size=(V, 100)).astype(np.float32)
    rae = train_rae(leaves, seqs, SEGMENT, epochs=1, sample=5000, log=lambda *_: None)
    tree = lambda cell, shape: TreeClassifier(TreeConfig(V, 2, embed_dim=100, cell=cell, tree=shape, hidden=128,  # noqa: E731
                                                         segment=SEGMENT), rae=rae if shape == "rae" else None)
    return {"lstm-bi-attention": RNNClassifier(RNNConfig(V, 2, embed_dim=100, hidden=128, pooling="attention")),
            "treelstm-balanced": tree("treelstm", "balanced"), "treelstm-rae": tree("treelstm", "rae"),
            "recnn-balanced": tree("recnn", "balanced"), "recnn-rae": tree("recnn", "rae"),
            "transformer-2x128": TransformerClassifier(TransformerConfig(V, 2, embed_dim=100, layers=2, d_model=128))}


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
    seqs, y, V = load(args.data, args.docs, args.seed)
    nets = models(V, seqs)
    inputs = {name: net.prepare(seqs) if hasattr(net, "prepare") else seqs for name, net in nets.items()}
    speed: dict[str, list[float]] = {name: [] for name in nets}
    trees_per_second: list[float] = []
    tokens = int(sum(len(s) for s in seqs))
    for r in range(args.rounds):
        start = time.perf_counter()
        nets["treelstm-rae"].prepare(seqs)
        trees_per_second.append(sum(len(d.trees) for d in inputs["treelstm-rae"]) / (time.perf_counter() - start))
        for name, net in nets.items():
            trainer = fit_classifier(net, TrainerConfig(epochs=1, batch_size=BATCH, learning_rate=2e-3, clip=1.0, seed=r),
                                     inputs[name], y)
            speed[name].append(trainer.tokens_per_second_)
            print(f"round {r + 1}: {name}: {speed[name][-1]:,.0f} tokens/s", flush=True)
    base = statistics.median(speed["lstm-bi-attention"])
    result = {"docs": len(seqs), "tokens": tokens, "rounds": args.rounds, "threads": args.threads,
              "tokens_per_second": {n: round(statistics.median(v)) for n, v in speed.items()},
              "ratio_to_bilstm": {n: round(statistics.median(v) / base, 3) for n, v in speed.items()},
              "rae_trees_per_second": round(statistics.median(trees_per_second))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
