"""What each stage occupies while it runs (threads, memory), read from the stages' `meta` in dvc.yaml.

A stage's `meta.threads` is a whole number, `auto` (its share), or a params.yaml key whose value is one
of those (`word2vec.workers`); `meta.most_threads` caps what its code can use and `meta.memory_gb`
what it may hold at its peak. Undeclared: one thread, one GiB. The flow admits a stage while the
running stages' threads fit the cores and their memory the machine, through two Prefect global
concurrency limits sized to them (flows/pipeline.py); nothing here schedules.
"""
from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import yaml

from nlpdag.training.threads import machine_cores

DEFAULT_MEMORY_GB = 1.0


@dataclass(frozen=True)
class Need:
    threads: int
    memory_gb: float


def machine_memory_gb() -> float:
    """What the stages may hold together: 80% of the machine's memory (the rest: the OS, Prefect, DVC)."""
    try:
        import psutil

        return 0.8 * psutil.virtual_memory().total / 2**30
    except ImportError:  # pragma: no cover - psutil comes with the lock
        return 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def stage_meta(dvc_yaml: dict) -> dict[str, dict]:
    """{stage name as dvc.yaml writes it (without @item): its meta dict}."""
    metas = {}
    for name, stage in (dvc_yaml.get("stages") or {}).items():
        body = stage.get("do", stage) if "foreach" in stage else stage
        metas[name] = dict(body.get("meta") or {})
    return metas


def param_value(params: dict, dotted: str):
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def depths(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each stage's longest chain of upstream stages (0 for a root)."""
    memo: dict[str, int] = {}

    def depth(stage: str) -> int:
        if stage not in memo:
            memo[stage] = 1 + max((depth(up) for up in graph[stage]), default=-1)
        return memo[stage]

    for stage in graph:
        depth(stage)
    return memo


def auto_shares(graph: dict[str, set[str]], cores: int) -> dict[str, int]:
    """`auto` threads per stage: the cores split evenly among the stages at its depth of the DAG (those
    that can be ready together, e.g. the seven embedding stages after `tokenise`), at least one."""
    level = depths(graph)
    width: dict[int, int] = {}
    for d in level.values():
        width[d] = width.get(d, 0) + 1
    return {stage: max(1, cores // width[level[stage]]) for stage in graph}


def stage_needs(graph: dict[str, set[str]], dvc_yaml: dict, params: dict, cores: int,
                jobs: int | None = None) -> dict[str, Need]:
    """{stage: Need} for every stage of the graph. With `jobs == 1` (one stage at a time) `auto` is every core,
    as under plain `dvc repro`."""
    metas = stage_meta(dvc_yaml)
    shares = auto_shares(graph, cores) if jobs != 1 else {stage: cores for stage in graph}
    needs = {}
    for stage in graph:
        meta = metas.get(stage.split("@")[0], {})
        setting = meta.get("threads", 1)
        if isinstance(setting, str) and setting != "auto":
            try:
                setting = param_value(params, setting)
            except KeyError:
                raise ValueError(f"dvc.yaml: {stage}: meta.threads names {setting!r}, which params.yaml lacks") from None
        threads = shares[stage] if setting == "auto" else int(setting)
        if meta.get("most_threads"):
            threads = min(threads, int(meta["most_threads"]))
        needs[stage] = Need(max(1, min(threads, cores)), float(meta.get("memory_gb", DEFAULT_MEMORY_GB)))
    return needs


def limit_names(root: Path) -> tuple[str, str]:
    """The two Prefect global concurrency limits of this machine and checkout. Per checkout: a run holds
    the checkout's lock (nlpdag/runs/lock.py), so it may reset slots a killed run of the same checkout left."""
    tag = f"{socket.gethostname()}-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]}"
    return f"nlpdag-cores-{tag}", f"nlpdag-memory-gb-{tag}"


def read_dvc_yaml(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.yaml").read_text()) or {}


__all__ = ["Need", "auto_shares", "depths", "limit_names", "machine_cores", "machine_memory_gb", "read_dvc_yaml",
           "stage_needs"]
