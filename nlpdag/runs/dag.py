"""The DVC pipeline as DVC itself reports it: stage graph and stale stages, via the `dvc` CLI.

The flow never keeps its own copy of the DAG: `dvc dag --dot` is the single source.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

_NODE = re.compile(r'^"([^"]+)";$')
_EDGE = re.compile(r'^"([^"]+)" -> "([^"]+)";$')


class PipelineError(RuntimeError):
    """A DVC command failed; the message is the command's last error line. `ours`: the line is a
    stage's own `error:` report (bad input or parameters, or a library's error on them): running it
    again cannot help, unlike a stage killed from outside (memory, a signal)."""

    def __init__(self, message: str, ours: bool = False):
        super().__init__(message)
        self.ours = ours


def find_root(start: str | Path | None = None) -> Path:
    """The repository root: the nearest folder above `start` (default: cwd) holding dvc.yaml,
    else the checkout this package was installed from."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    installed = Path(__file__).resolve().parents[2]  # nlpdag/runs/dag.py -> the checkout
    if (installed / "dvc.yaml").is_file():
        return installed
    raise PipelineError(f"{here}: no dvc.yaml here or above; run inside an nlpdag checkout or pass --repo")


def dvc_env() -> dict[str, str]:
    """The environment for DVC subprocesses: analytics off, this interpreter's venv first on PATH."""
    # NLPDAG_RESTORES: a failed stage's outputs are restored by the caller (flows/pipeline.py `restore`)
    env = dict(os.environ, DVC_NO_ANALYTICS="1", NLPDAG_RESTORES="1")
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


class DvcCall:
    """`dvc <args>` started in the background in `root`; `result()` waits for its stdout.

    Starting the read-only queries early lets them overlap Prefect's start-up."""

    def __init__(self, root: Path, *args: str):
        exe = Path(sys.executable).with_name("dvc")
        self.args = args
        self.proc = subprocess.Popen([str(exe) if exe.exists() else "dvc", *args], cwd=root, env=dvc_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self) -> str:
        out, err = self.proc.communicate()
        if self.proc.returncode != 0:
            lines = [l for l in (err + out).splitlines() if l.strip()]
            # A stage's own one-line message says more than DVC's "failed to reproduce" wrapper.
            ours = [l for l in lines if l.startswith("error:")]
            theirs = [l for l in lines if l.startswith("ERROR")]
            raise PipelineError((ours or theirs or lines or [f"dvc {' '.join(self.args)} failed"])[-1], bool(ours))
        return out


def dvc(root: Path, *args: str) -> str:
    """Run `dvc <args>` in `root`; return stdout, raise PipelineError with DVC's message on failure."""
    return DvcCall(root, *args).result()


def parse_dot(dot: str) -> dict[str, set[str]]:
    """`dvc dag --dot` output -> {stage: set of upstream stages}."""
    graph: dict[str, set[str]] = {}
    for line in dot.splitlines():
        line = line.strip()
        if m := _EDGE.match(line):
            graph.setdefault(m[2], set()).add(m[1])
            graph.setdefault(m[1], set())
        elif m := _NODE.match(line):
            graph.setdefault(m[1], set())
    return graph


def stage_order(graph: dict[str, set[str]]) -> list[str]:
    return list(TopologicalSorter(graph).static_order())


def stage_graph(root: Path) -> dict[str, set[str]]:
    return parse_dot(dvc(root, "dag", "--dot"))


def parse_status(status_json: str) -> set[str]:
    """`dvc status --json` output -> the stages whose deps, params, code or outputs differ from dvc.lock."""
    return {name.split(":")[-1] for name in json.loads(status_json or "{}")}


class Plan:
    """The DAG and its stale stages, queried from DVC concurrently."""

    def __init__(self, root: Path):
        self.root = root
        self._dag = DvcCall(root, "dag", "--dot")
        self._status = DvcCall(root, "status", "--json")

    def result(self) -> tuple[dict[str, set[str]], set[str]]:
        return parse_dot(self._dag.result()), parse_status(self._status.result())


@dataclass
class StageRun:
    """One `dvc repro --single-item` of a stage: what DVC did and what it cost (the process and its children)."""
    outcome: str          # ran | restored (from the run cache) | up to date
    output: str
    cpu_seconds: float
    peak_memory_mb: float


def outcome(output: str, stage: str) -> str:
    if f"Stage '{stage}' didn't change" in output:
        return "up to date"
    if f"Stage '{stage}' is cached" in output:
        return "restored"
    return "ran"


def run_stage(root: Path, stage: str, threads: int, force: bool = False) -> StageRun:
    """`dvc --wait-for-lock repro --single-item <stage>` in its own process, with `threads` as its share
    (nlpdag/training/threads.py). Stages run at once this way: DVC releases its repository lock while a
    stage's command runs, and each process rewrites only its own stage's entry of dvc.lock.
    Raises PipelineError like `dvc()`."""
    from nlpdag.training.threads import child_env

    exe = Path(sys.executable).with_name("dvc")
    args = [str(exe) if exe.exists() else "dvc", "--wait-for-lock", "repro", "--single-item", stage]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(args + (["--force"] if force else []), cwd=root, env=child_env(threads, dvc_env()),
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        # wait4: the rusage of DVC and every process under it (the stage's command), which Popen.wait drops.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        lines = [l for l in output.splitlines() if l.strip()]
        ours = [l for l in lines if l.startswith("error:")]
        theirs = [l for l in lines if l.startswith("ERROR")]
        raise PipelineError((ours or theirs or lines or [f"dvc repro {stage} failed"])[-1], bool(ours))
    return StageRun(outcome(output, stage), output, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def foreach_keys(foreach, params: dict) -> list[str]:
    """The item names of a dvc.yaml `foreach`: a list, a dict, or `${a.b}` naming one in params.yaml."""
    if isinstance(foreach, str) and foreach.startswith("${") and foreach.endswith("}"):
        node = params
        for part in foreach[2:-1].split("."):
            node = node.get(part) if isinstance(node, dict) else None
        foreach = node
    if isinstance(foreach, dict):
        return [str(k) for k in foreach]
    if isinstance(foreach, list):
        return [str(v) for v in foreach if not isinstance(v, (dict, list))]
    return []


def order_lock(root: Path) -> bool:
    """Rewrite dvc.lock with its stages in the order `dvc repro` writes them into an empty one: dvc.yaml's
    order, a foreach's items in their own order; whatever order the stages finished in. The entries are
    left as DVC wrote them. Returns whether it changed anything."""
    import yaml
    from dvc.utils.serialize import dump_yaml, load_yaml

    path = root / "dvc.lock"
    if not path.exists():
        return False
    declared = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages") or {}
    params_path = root / "params.yaml"
    params = (yaml.safe_load(params_path.read_text()) or {}) if params_path.exists() else {}
    rank = {}
    for i, (name, stage) in enumerate(declared.items()):
        rank[name] = (i, 0)
        for j, item in enumerate(foreach_keys(stage.get("foreach"), params)):
            rank[f"{name}@{item}"] = (i, j)
    lock = load_yaml(path)
    stages = lock.get("stages") or {}
    ordered = sorted(stages, key=lambda s: (rank.get(s, rank.get(s.split("@")[0], (len(rank), 0))), s))
    if ordered == list(stages):
        return False
    lock["stages"] = {name: stages[name] for name in ordered}
    tmp = path.with_name(".dvc.lock.tmp")
    dump_yaml(tmp, lock)
    os.replace(tmp, path)
    return True


def sweep_temporaries(root: Path) -> list[str]:
    """Remove what killed stages left half-written under data/ and reports/: outputs go to `.<name>...tmp` first
    and are renamed into place (nlpdag/io/tables.py), so such a path is never an output (.dvcignore hides it from
    DVC's hashes). Call only while holding the run lock: then no stage of this checkout is writing one."""
    import shutil

    removed = []
    for top in ("data", "reports"):
        for path in sorted((root / top).rglob(".*.tmp")) if (root / top).is_dir() else ():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.relative_to(root).as_posix())
    return removed
