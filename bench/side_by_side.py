"""The full default run twice, one right after the other: `dvc repro` (one stage at a time), then
`nlpdag run --jobs auto --force` (stages at once within the cores). Writes bench/results/side_by_side.json.

    .venv/bin/python bench/side_by_side.py            # both (about 45 min on 2 cores)
    .venv/bin/python bench/side_by_side.py --report   # only the analysis of the last two runs

The sequential run's stage times come from DVC's own "Running stage" lines, timestamped as they
arrive; the parallel run's from reports/timeline.json. The lower bound on a run's wall time is the
larger of the critical path (longest chain of stage wall times) and the CPU time of all stages over
the cores; it is computed twice: from the parallel run's own stage times (inflated where stages
shared cores) and from the sequential run's (each stage alone), and the parallel run is set against both.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlpdag.runs.dag import parse_dot  # noqa: E402
from nlpdag.runs.timeline import StageTime, critical_path  # noqa: E402

OUT = ROOT / "bench/out"
RESULT = ROOT / "bench/results/side_by_side.json"
RUNNING = re.compile(r"^Running stage '([^']+)'")


def env() -> dict:
    # Unbuffered: DVC's "Running stage" lines must arrive when DVC prints them, as they time the stages.
    return dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONUNBUFFERED="1",
                PATH=f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}")


def timed(args: list[str], log: Path) -> tuple[float, float, list[tuple[float, str]]]:
    """Run a command; returns (wall s, CPU s of it and all its children, [(seconds since start, line)])."""
    start = time.time()
    before = os.times()
    lines = []
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            lines.append((time.time() - start, line.rstrip("\n")))
            out.write(f"{lines[-1][0]:9.2f} {line}")
        proc.wait()
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {proc.returncode}); see {log}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return time.time() - start, cpu, lines


def sequential_stage_walls(lines: list[tuple[float, str]], wall: float) -> dict[str, float]:
    starts = [(t, m[1]) for t, line in lines if (m := RUNNING.match(line))]
    ends = [t for t, _ in starts[1:]] + [wall]
    return {stage: end - t for (t, stage), end in zip(starts, ends)}


def analyse(seq: dict, timeline: dict, graph: dict[str, set[str]]) -> dict:
    rows = {r["stage"]: r for r in timeline["stages"]}
    cores = timeline["run"]["cores"]
    par_wall = timeline["run"]["wall_seconds"]
    alone = {s: StageTime(s, "ran", 1, 0, 0, w, 0, 0) for s, w in seq["stage_walls"].items()}
    path_alone, chain_alone = critical_path(alone, graph)
    cpu = timeline["run"]["cpu_seconds"]
    bound_alone = max(path_alone, cpu / cores)
    return {
        "cores": cores,
        "sequential": {"command": "dvc repro --force", "wall_seconds": round(seq["wall"], 1),
                       "cpu_seconds": round(seq["cpu"], 1)},
        "parallel": {"command": "nlpdag run --jobs auto --force", "wall_seconds": round(seq["parallel_wall"], 1),
                     "stages_wall_seconds": par_wall, "cpu_seconds": cpu,
                     "waited_seconds": timeline["run"]["waited_seconds"]},
        "speedup": round(seq["wall"] / seq["parallel_wall"], 3),
        "bound_from_parallel_stage_times": {
            "critical_path_seconds": timeline["run"]["critical_path_seconds"],
            "critical_path": timeline["run"]["critical_path"],
            "cpu_over_cores_seconds": timeline["run"]["cpu_over_cores_seconds"],
            "bound_seconds": timeline["run"]["bound_seconds"],
            "parallel_over_bound": timeline["run"]["wall_over_bound"]},
        "bound_from_sequential_stage_times": {
            "critical_path_seconds": round(path_alone, 1), "critical_path": chain_alone,
            "cpu_over_cores_seconds": round(cpu / cores, 1), "bound_seconds": round(bound_alone, 1),
            "parallel_over_bound": round(par_wall / bound_alone, 3)},
        "stages": {s: {"sequential_wall": round(seq["stage_walls"].get(s, 0.0), 1),
                       "parallel_wall": rows[s]["wall_s"], "threads": rows[s]["threads"], "cpu": rows[s]["cpu_s"],
                       "waited": rows[s]["waited_s"], "peak_memory_mb": rows[s]["peak_memory_mb"]}
                   for s in rows},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", action="store_true", help="only analyse the logs of the last two runs")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    raw = OUT / "side_by_side_raw.json"
    if not args.report:
        wall, cpu, lines = timed([str(ROOT / ".venv/bin/dvc"), "repro", "--force"], OUT / "sequential.log")
        shutil.copy(ROOT / "dvc.lock", OUT / "sequential.dvc.lock")
        print(f"dvc repro: {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)
        pwall, pcpu, _ = timed([str(ROOT / ".venv/bin/nlpdag"), "run", "--jobs", "auto", "--force"], OUT / "parallel.log")
        print(f"nlpdag run --jobs auto --force: {pwall:.0f} s wall, {pcpu:.0f} s CPU", flush=True)
        raw.write_text(json.dumps({"wall": wall, "cpu": cpu, "parallel_wall": pwall, "parallel_cpu": pcpu,
                                   "stage_walls": sequential_stage_walls(lines, wall)}, indent=1))
    seq = json.loads(raw.read_text())
    graph = parse_dot(subprocess.run([str(ROOT / ".venv/bin/dvc"), "dag", "--dot"], cwd=ROOT, env=env(),
                                     capture_output=True, text=True, check=True).stdout)
    result = analyse(seq, json.loads((ROOT / "reports/timeline.json").read_text()), graph)
    # The two runs' dvc.lock, stage by stage, through the one DVC cache both wrote to.
    from nlpdag.runs.lockdiff import compare_locks, load_lock

    same = compare_locks(load_lock(OUT / "sequential.dvc.lock"), load_lock(ROOT / "dvc.lock"), ROOT / ".dvc/cache")
    result["locks"] = {stage: v for stage, v in sorted(same.items())}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "stages"}, indent=1))


if __name__ == "__main__":
    main()
