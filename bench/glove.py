"""Benchmark of the `glove` stage's trainer against Stanford GloVe's C `glove`, on the same counts.

Trains `stages.glove.Glove` on a co-occurrence Parquet (default data/cooccur.parquet, from
`dvc repro cooccur`) with the glove settings of params.yaml (command-line flags override them).
With --glove-bin DIR (a folder holding the compiled `glove` and `shuffle`), the same non-zeros are
written in the C tool's binary format in a temporary folder, shuffled once, and trained there with
the same size, x_max, alpha, eta and epochs, in the same run. Both vector sets are scored with
gensim: analogy accuracy (questions-words.txt, restricted to the 30,000 most frequent words),
Spearman rho on WordSim-353 and SimLex-999. Prints one row per tool and the per-epoch loss of both.

    python bench/glove.py [--epochs 15] [--batch-size N] [--glove-bin /path/to/GloVe/build]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlpdag.embeddings.glove import Glove, read_inputs  # noqa: E402
from nlpdag.training.progress import EpochProgress  # noqa: E402

ANALOGY_RESTRICT = 30000


def evaluate(kv) -> dict:
    from gensim.test.utils import datapath

    analogy, _ = kv.evaluate_word_analogies(datapath("questions-words.txt"), restrict_vocab=ANALOGY_RESTRICT)
    ws353 = kv.evaluate_word_pairs(datapath("wordsim353.tsv"))[1].statistic
    simlex = kv.evaluate_word_pairs(datapath("simlex999.txt"))[1].statistic
    return {"analogy": analogy, "ws353": ws353, "simlex": simlex}


def keyed_vectors(tokens: list[str], vectors: np.ndarray):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors(tokens, vectors.astype(np.float32))
    return kv


def run_ours(tokens, i, j, x, settings: dict, seed: int, threads: int | None) -> dict:
    progress = EpochProgress("glove", settings.get("epochs", 15))
    model = Glove(**settings, seed=seed, threads=threads,
                  callbacks=[lambda e, loss, m: progress({"epoch": e, "loss": loss, "seconds": m.seconds_[-1]})])
    start = time.perf_counter()
    model.fit(i, j, x, vocab_size=len(tokens))
    if model.device_.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "epochs": len(model.loss_), "loss": model.loss_,
            **evaluate(keyed_vectors(tokens, model.vectors_))}


def write_c_inputs(tokens, counts, i, j, x, work: Path) -> tuple[Path, Path]:
    """The C tool's input: records (int32 word1, int32 word2, float64 x), ids from 1; `word count` lines."""
    records = np.empty(len(i), dtype=[("w1", "<i4"), ("w2", "<i4"), ("x", "<f8")])
    records["w1"], records["w2"], records["x"] = i + 1, j + 1, x
    raw, shuffled, vocab = work / "cooccur.bin", work / "cooccur.shuf.bin", work / "vocab.txt"
    records.tofile(raw)
    with open(vocab, "w", encoding="utf-8") as f:
        f.writelines(f"{token} {count}\n" for token, count in zip(tokens, counts))
    return raw, vocab


def run_c(bin_dir: Path, tokens, counts, i, j, x, settings: dict, seed: int, threads: int, work: Path) -> dict:
    raw, vocab = write_c_inputs(tokens, counts, i, j, x, work)
    shuffled = work / "cooccur.shuf.bin"
    with open(raw, "rb") as src, open(shuffled, "wb") as dst:
        subprocess.run([str(bin_dir / "shuffle"), "-memory", "4.0", "-verbose", "0", "-seed", str(seed + 1),
                        "-temp-file", str(work / "temp_shuffle")],
                       stdin=src, stdout=dst, stderr=subprocess.DEVNULL, check=True, cwd=work)
    raw.unlink()
    cmd = [str(bin_dir / "glove"), "-input-file", str(shuffled), "-vocab-file", str(vocab),
           "-save-file", str(work / "vectors"), "-gradsq-file", str(work / "gradsq"), "-verbose", "2",
           "-vector-size", str(settings["size"]), "-threads", str(threads), "-iter", str(settings["epochs"]),
           "-x-max", str(settings["x_max"]), "-alpha", str(settings["alpha"]),
           "-eta", str(settings["learning_rate"]), "-binary", "0", "-model", "2", "-write-header", "1",
           "-seed", str(seed + 1)]
    # Time the iterations from the process start to the line of the last one (so writing the
    # text vectors is not counted, as ours excludes it too); the loss is the C tool's "cost".
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=work)
    loss, seconds = [], None
    for line in proc.stderr:
        if "iter:" in line and "cost:" in line:
            loss.append(float(line.rsplit("cost:", 1)[1]))
            seconds = time.perf_counter() - start
            print(f"glove (C): epoch {len(loss)}/{settings['epochs']}  loss {loss[-1]:.6f}", flush=True)
    if proc.wait() != 0 or not loss:
        raise SystemExit(f"C glove failed with exit code {proc.returncode}")
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(str(work / "vectors.txt"))
    return {"seconds": seconds, "epochs": len(loss), "loss": loss, **evaluate(kv)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cooccur", type=Path, default=ROOT / "data/cooccur.parquet")
    parser.add_argument("--vocab", type=Path, default=ROOT / "data/vocab.parquet")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    parser.add_argument("--threads", type=int, default=2, help="threads of the C tool")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="CPU threads of ours (default: the stage's own choice)")
    parser.add_argument("--glove-bin", type=Path, default=None)
    parser.add_argument("--skip-ours", action="store_true", help="only run the C tool")
    args = parser.parse_args()

    params = yaml.safe_load((ROOT / "params.yaml").read_text()) or {}
    glove = dict(params.get("glove") or {})
    for key in ("epochs", "batch_size", "learning_rate", "device"):
        if getattr(args, key) is not None:
            glove[key] = getattr(args, key)
    settings = {k: glove[k] for k in ("size", "x_max", "alpha", "learning_rate", "epochs", "batch_size", "device")
                if k in glove}
    seed = int(params.get("seed", 0))

    import pyarrow.parquet as pq

    tokens, i, j, x = read_inputs(str(args.cooccur), str(args.vocab))
    counts = pq.read_table(args.vocab, columns=["count"]).column("count").to_numpy()
    print(f"{len(x)} non-zeros over {len(tokens)} words; settings {settings}, seed {seed}; "
          f"C threads {args.threads}, torch threads {args.torch_threads or 'default'}")
    rows = []
    if not args.skip_ours:
        rows.append(("nlpdag (PyTorch)", run_ours(tokens, i, j, x, settings, seed, args.torch_threads)))
    if args.glove_bin:
        with tempfile.TemporaryDirectory() as tmp:
            c_settings = {"size": 100, "x_max": 100.0, "alpha": 0.75, "learning_rate": 0.05, "epochs": 15,
                          **settings}
            rows.append(("Stanford GloVe (C)", run_c(args.glove_bin, tokens, counts, i, j, x, c_settings, seed,
                                                     args.threads, Path(tmp))))

    print()
    print(f"{'tool':<20}{'s/epoch':>9}{'epochs':>8}{'final loss':>12}{'analogy':>9}{'WS353':>8}{'SimLex':>8}")
    for name, r in rows:
        print(f"{name:<20}{r['seconds'] / r['epochs']:>9.2f}{r['epochs']:>8}{r['loss'][-1]:>12.6f}"
              f"{r['analogy']:>9.4f}{r['ws353']:>8.3f}{r['simlex']:>8.3f}")
    print()
    print(f"{'epoch':>5}" + "".join(f"{name:>20}" for name, _ in rows))
    for epoch in range(max(len(r["loss"]) for _, r in rows)):
        print(f"{epoch + 1:>5}" + "".join(f"{r['loss'][epoch]:>20.6f}" if epoch < len(r["loss"]) else " " * 20
                                          for _, r in rows))


if __name__ == "__main__":
    main()
