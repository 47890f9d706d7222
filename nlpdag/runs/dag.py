"""The DVC pipeline as DVC itself reports it: stage graph and stale stages, via the `dvc` CLI.

The flow never keeps its own copy of the DAG: `dvc dag --dot` is the single source.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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
