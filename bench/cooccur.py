"""Benchmark of the `cooccur` stage on the current data/tokens.parquet (run `dvc repro tokenise` first).

Prints wall seconds, non-zeros and peak RSS of `python -m stages.cooccur` run as its own process,
over --repeat runs. With --glove-bin DIR (a folder holding Stanford GloVe's compiled `vocab_count`
and `cooccur`), the C tool counts the same training tokens with the same window, weighting and
min_count, and its figures are printed beside ours from the same run.

    python bench/cooccur.py [--repeat 3] [--glove-bin /path/to/GloVe/build]
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]



def measure(cmd: list[str], **popen) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, from its own rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, **popen)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed with exit code {os.waitstatus_to_exitcode(status)}")
    return seconds, usage.ru_maxrss / 1024


def run_ours(env: dict) -> dict:
    seconds, peak = measure([sys.executable, "-m", "stages.cooccur"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    metrics = json.loads((ROOT / "reports/metrics/cooccur.json").read_text())
    return {"seconds": seconds, "peak_mb": peak, "nonzeros": metrics["nonzeros"],
            "vocab": metrics["vocab_size"], "tokens": metrics["tokens"]}


def run_glove_c(bin_dir: Path, window: int, min_count: int, harmonic: bool, work: Path) -> dict:
    table = pq.read_table(ROOT / "data/tokens.parquet", columns=["split", "tokens"])
    train = table.filter(pc.equal(table.column("split"), "train")).column("tokens").to_pylist()
    corpus = work / "train.txt"
    with open(corpus, "w", encoding="utf-8") as f:
        for doc in train:
            f.write(" ".join(doc) + "\n")
    vocab = work / "vocab.txt"
    with open(corpus, "rb") as src, open(vocab, "wb") as dst:
        subprocess.run([str(bin_dir / "vocab_count"), "-min-count", str(min_count), "-verbose", "0"],
                       stdin=src, stdout=dst, check=True)
    out = work / "cooccurrence.bin"
    cmd = [str(bin_dir / "cooccur"), "-vocab-file", str(vocab), "-window-size",
           str(window), "-distance-weighting", "1" if harmonic else "0", "-verbose", "0", "-memory", "4.0",
           "-overflow-file", str(work / "overflow")]
    with open(corpus, "rb") as src, open(out, "wb") as dst:
        seconds, peak = measure(cmd, stdin=src, stdout=dst, stderr=subprocess.DEVNULL, cwd=work)
    # The C tool writes one (int, int, double) record per non-zero after merging.
    nonzeros = out.stat().st_size // struct.calcsize("iid")
    n_vocab = sum(1 for _ in open(vocab, encoding="utf-8", errors="replace"))
    return {"seconds": seconds, "peak_mb": peak, "nonzeros": nonzeros, "vocab": n_vocab}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--glove-bin", type=Path, default=None)
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    window, weighting = params["cooccur"]["window"], params["cooccur"]["weighting"]
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    rows = []
    for _ in range(args.repeat):
        rows.append(("nlpdag cooccur", run_ours(env)))
        if args.glove_bin:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(("GloVe C cooccur", run_glove_c(args.glove_bin, window, params["tokenise"]["min_count"],
                                                            weighting == "harmonic", Path(tmp))))
    print(f"window {window}, weighting {weighting}, min_count {params['tokenise']['min_count']}")
    print(f"{'tool':<18}{'seconds (min/median/max)':>28}{'peak MB (max)':>15}{'non-zeros':>12}{'vocab':>8}")
    for name in dict.fromkeys(n for n, _ in rows):
        runs = [r for n, r in rows if n == name]
        s = np.array([r["seconds"] for r in runs])
        print(f"{name:<18}{s.min():>10.2f}{np.median(s):>9.2f}{s.max():>9.2f}{max(r['peak_mb'] for r in runs):>15.0f}"
              f"{runs[0]['nonzeros']:>12}{runs[0]['vocab']:>8}")


if __name__ == "__main__":
    main()
