"""One pipeline stage on a Prefect worker, for `nlpdag run --pool`: a fresh clone, the stage, its
outputs and run-cache entry pushed to the DVC remote. The coordinator then restores the stage from
the run cache (nlpdag/runs/remote.py), so only it writes its workspace's dvc.lock.

The coordinator sends its dvc.lock entries of the stage's upstream stages: written into the clone,
they make `dvc repro --pull` restore each upstream stage exactly as the coordinator has it (its
lock entry, or its run-cache entry where the clone's tracked files differ, as for `cache: false`
outputs), never recompute it; measured with DVC 3.67 on the test repository, where a plain
`dvc pull --run-cache` first pulled every output of the commit. Only the stage itself is pushed.

Import this module only after PREFECT_API_URL is set: Prefect reads its settings at import.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.states import Failed

from nlpdag.runs.dag import PipelineError, dvc
from nlpdag.runs.repo import clone, lock_outputs, ran_stages, restored_stages, sync_objects

FLOW_NAME = "nlpdag-stage"


@task(retries=2, retry_delay_seconds=5, task_run_name="clone {rev:.10}")
def checkout(repo_url: str, rev: str, workdir: str, lock: dict[str, dict]) -> str:
    """A clone of `repo_url` at `rev` whose dvc.lock holds the coordinator's `lock` entries."""
    repo = clone(repo_url, rev, Path(workdir) / "repo")
    path = repo / "dvc.lock"
    ours = (yaml.safe_load(path.read_text()) if path.exists() else None) or {"schema": "2.0", "stages": {}}
    ours.setdefault("stages", {}).update(lock)
    path.write_text(yaml.safe_dump(ours, sort_keys=False))
    return str(repo)


@task(task_run_name="dvc repro --pull {stage}")
def repro(repo: str, stage: str, threads: int) -> dict:
    """The stage with its upstream stages restored; what ran, what came from the run cache."""
    from nlpdag.training.threads import child_env

    logger = get_run_logger()
    # The flow run is a process of its own (`prefect flow-run execute`): its environment is the stage's.
    os.environ.update(child_env(threads, dict(os.environ)))
    start = time.perf_counter()
    out = dvc(Path(repo), "repro", "--pull", stage)
    for line in out.splitlines():
        if line.strip():
            logger.info(line)
    ran, restored = ran_stages(out), restored_stages(out)
    if upstream := [s for s in ran if s != stage]:
        # The coordinator's entries could not restore them (objects missing from the DVC remote): the
        # stage still ran on their outputs, but the coordinator will rerun it unless they match its own.
        logger.warning("recomputed upstream stage(s) %s: not restorable from the DVC remote", ", ".join(upstream))
    return {"stage": stage, "outcome": "ran" if stage in ran else "restored" if stage in restored else "up to date",
            "upstream_ran": upstream, "seconds": round(time.perf_counter() - start, 1), "threads": threads,
            "host": socket.gethostname()}


@task(retries=2, retry_delay_seconds=5, task_run_name="dvc push --run-cache {stage}")
def push(repo: str, stage: str) -> None:
    """The stage's outputs and run-cache entries, then the objects of its `cache: false` outputs, which
    DVC's push leaves out and the coordinator's restore needs."""
    dvc(Path(repo), "push", "--run-cache", stage)
    entry = (yaml.safe_load((Path(repo) / "dvc.lock").read_text())["stages"]).get(stage) or {}
    sync_objects(Path(repo), "push", lock_outputs({stage: entry}))


@flow(name=FLOW_NAME, log_prints=True, flow_run_name="{stage}")
def stage_run(repo_url: str, rev: str, stage: str, threads: int = 1, lock: dict[str, dict] | None = None):
    """Run `stage` of commit `rev` of `repo_url` with `threads` threads, its upstream stages as in the
    coordinator's `lock` entries; push it to the DVC remote. The clone is temporary, removed at the
    end whatever happens. A failure is a Failed state with DVC's or the stage's one line (`error: ...`)."""
    logger = get_run_logger()
    workdir = tempfile.mkdtemp(prefix=f"nlpdag-{stage.replace('@', '-')}-", dir=os.environ.get("NLPDAG_SWEEP_TMP"))
    try:
        start = time.perf_counter()
        repo = checkout(repo_url, rev, workdir, lock or {})
        cloned = time.perf_counter()
        result = repro(repo, stage, threads)
        pushing = time.perf_counter()
        push(repo, stage)
        result |= {"clone_seconds": round(cloned - start, 1), "push_seconds": round(time.perf_counter() - pushing, 1)}
        create_table_artifact(key="nlpdag-stage", table=[result],
                              description=f"`{stage}` of commit {rev[:10]} on {result['host']}: {result['outcome']}")
        logger.info("%s: %s on %s: clone %.1f s, dvc repro --pull %.1f s, push %.1f s", stage, result["outcome"],
                    result["host"], result["clone_seconds"], result["seconds"], result["push_seconds"])
        return result
    except PipelineError as exc:
        return Failed(message=str(exc))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
