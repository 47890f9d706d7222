"""Benchmark: GloVe epochs in one process (1 and 2 threads) against N torch.distributed processes
(`torchrun --standalone --nproc_per_node N`, gloo on the CPU, NCCL on GPUs), on the same counts
(default data/cooccur.parquet) and glove settings of params.yaml, side by side in one run.

    python bench/glove_ddp.py [--epochs 1] [--processes 2] [--cooccur data/cooccur.parquet]

Prints seconds per epoch and final loss for each way; the distributed state is the single-process
one (tests/test_ddp.py checks it bit for bit on a tiny corpus), so the losses should agree.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train(args, threads: int) -> dict:
    import torch

    from nlpdag.training import distributed as dd
    from nlpdag.embeddings.glove import Glove, read_inputs
    from nlpdag.config.params import load_params

    config = load_params(ROOT / "params.yaml").glove
    tokens, i, j, x = read_inputs(args.cooccur, args.vocab)
    torch.set_num_threads(threads)
    with dd.setup():
        start = time.perf_counter()
        model = Glove(size=config.size, x_max=config.x_max, alpha=config.alpha, learning_rate=config.learning_rate,
                      epochs=args.epochs, batch_size=config.batch_size, device=config.device, threads=threads)
        model.fit(i, j, x, vocab_size=len(tokens))
        seconds = time.perf_counter() - start
        return {"seconds_per_epoch": seconds / args.epochs, "loss": model.loss_[-1], "nonzeros": len(x),
                "processes": dd.world_size(), "device": model.device_, "rank": dd.rank()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cooccur", default=str(ROOT / "data/cooccur.parquet"))
    parser.add_argument("--vocab", default=str(ROOT / "data/vocab.parquet"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one torchrun process
        result = train(args, threads=1)
        if result["rank"] == 0:
            print("RESULT " + json.dumps(result), flush=True)
        return

    rows = []
    for threads in (1, 2):
        rows.append({"way": f"1 process, {threads} thread(s)", **train(args, threads)})
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(args.processes),
           __file__, "--worker", "--epochs", str(args.epochs), "--cooccur", args.cooccur, "--vocab", args.vocab]
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    rows.append({"way": f"torchrun {args.processes} processes", **result,
                 "wall_with_startup": time.perf_counter() - start})
    base = rows[0]["seconds_per_epoch"]
    print(f"{'way':28} {'s/epoch':>9} {'speed':>6} {'final loss':>12}  device")
    for row in rows:
        print(f"{row['way']:28} {row['seconds_per_epoch']:9.1f} {base / row['seconds_per_epoch']:6.2f} "
              f"{row['loss']:12.6f}  {row['device']}")


if __name__ == "__main__":
    main()
