"""Scale benchmark of the front stages (ingest, tokenise, bow, cooccur) at 1x and 10x the default corpus.

The Nx corpus is the default corpus N times over, every copy with distinct ids and its rows
shuffled together; copy c gets c trailing spaces on each text, which leaves the tokens as they are
but makes the copies distinct texts, so ingest's duplicate dropping keeps them (the 96 duplicates
inside the default corpus stay duplicates). Each stage runs as its own process, in order, in a
scratch copy of this checkout under --work (never in the checkout itself), with `data.path`
pointing at the corpus; its wall time and peak RSS (the child's rusage) are printed.

With --baseline-ref REF, the same stages of REF (`git archive`, e.g. HEAD: the code before a change)
also run at 1x on the same corpus, side by side with the working tree.

    python bench/scale.py [--scales 1 10] [--baseline-ref HEAD] [--work /tmp/nlpdag-scale]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["ingest", "tokenise", "bow", "cooccur"]
sys.path.insert(0, str(ROOT))


def build_corpus(scale: int, path: Path, seed: int = 0) -> int:
    """Write the `scale`x corpus (id, text, label, source) to `path`; returns its row count."""
    if path.is_file():
        return pq.ParquetFile(path).metadata.num_rows
    from nlpdag.text.corpus import default_corpus_path

    base = pd.read_csv(default_corpus_path(), keep_default_na=False, na_values=[""])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(base) * scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, pa.schema([("id", pa.int64()), ("text", pa.string()), ("label", pa.int64()),
                                          ("source", pa.string())]), compression="zstd") as writer:
        # Written 10,000 shuffled rows at a time: the file has row groups a reader can stream.
        for lo in range(0, len(order), 10_000):
            rows = order[lo:lo + 10_000]
            copy, row = rows // len(base), rows % len(base)
            part = base.iloc[row]
            texts = [t + " " * int(c) for t, c in zip(part["text"], copy)]
            writer.write_table(pa.table({"id": rows.astype(np.int64), "text": texts,
                                         "label": part["label"].to_numpy(np.int64),
                                         "source": part["source"].astype(str).to_numpy()}))
    tmp.rename(path)
    return len(order)


def scratch_copy(dest: Path, ref: str | None) -> Path:
    """A copy of the working tree (tests/conftest.copy_repo) or, with `ref`, of that commit."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if ref is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import copy_repo

        copy_repo(dest)
    else:
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
    return dest


def set_corpus(repo: Path, corpus: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["path"] = str(corpus)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def measure(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, from its own rusage."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONHASHSEED="0")
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} in {cwd} failed: see {log}")
    return seconds, usage.ru_maxrss / 1024


def run_stages(repo: Path, corpus: Path, label: str, stages: list[str]) -> list[dict]:
    set_corpus(repo, corpus)
    rows = []
    for stage in stages:
        load = os.getloadavg()[0]
        seconds, peak = measure([sys.executable, "-m", f"stages.{stage}"], repo, repo / f"{label}-{stage}.log")
        rows.append({"run": label, "stage": stage, "seconds": round(seconds, 1), "peak_mb": round(peak),
                     "load_before": round(load, 1)})
        print(f"  {label:<12}{stage:<10}{seconds:>8.1f} s{peak:>8.0f} MB   (load {load:.1f})", flush=True)
    metrics = {s: json.loads((repo / f"reports/metrics/{s}.json").read_text()) for s in stages
               if (repo / f"reports/metrics/{s}.json").is_file()}
    for row in rows:
        row["metrics"] = metrics.get(row["stage"], {})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--stages", nargs="+", default=STAGES, choices=STAGES)
    parser.add_argument("--baseline-ref", default=None, help="also run this commit's stages at 1x (e.g. HEAD)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/nlpdag-scale"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start", flush=True)
    corpora = {}
    for scale in sorted(set(args.scales) | ({1} if args.baseline_ref else set())):
        corpora[scale] = args.work / f"corpus_{scale}x.parquet"
        print(f"{scale}x corpus: {build_corpus(scale, corpora[scale]):,} rows in {corpora[scale]}", flush=True)
    rows = []
    if args.baseline_ref:
        repo = scratch_copy(args.work / "baseline", args.baseline_ref)
        rows += run_stages(repo, corpora[1], f"{args.baseline_ref} 1x", args.stages)
    repo = scratch_copy(args.work / "repo", None)
    for scale in args.scales:
        rows += run_stages(repo, corpora[scale], f"{scale}x", args.stages)

    print(f"\n{'run':<12}{'stage':<10}{'seconds':>9}{'peak MB':>9}{'docs':>9}{'tokens':>12}")
    for r in rows:
        m = r["metrics"]
        docs = m.get("docs", "")
        tokens = m.get("tokens", "")
        print(f"{r['run']:<12}{r['stage']:<10}{r['seconds']:>9.1f}{r['peak_mb']:>9}{docs:>9}{tokens:>12}")
    by = {(r["run"], r["stage"]): r for r in rows}
    if 1 in args.scales and 10 in args.scales:
        print("\n10x / 1x (target: time <= 11x, cooccur peak RSS < 2x)")
        for stage in args.stages:
            one, ten = by[("1x", stage)], by[("10x", stage)]
            print(f"  {stage:<10} time {ten['seconds'] / one['seconds']:>5.1f}x   peak RSS {ten['peak_mb'] / one['peak_mb']:>4.1f}x")
    (args.work / "scale.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nload {os.getloadavg()[0]:.1f} at end; figures in {args.work / 'scale.json'}")


if __name__ == "__main__":
    main()
