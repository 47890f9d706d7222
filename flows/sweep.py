"""One sweep point on a Prefect worker: a fresh clone, `dvc exp run`, `dvc exp push`.

The flow owns no state of its own: the code and params come from the git remote at `rev`, the
cached outputs (and DVC's run cache, so a stage already computed with the same inputs by any
worker is restored, not rerun) from the DVC remote, and the result goes back to both. A worker
therefore needs only this package installed, git, and access to the three services.

Import this module only after PREFECT_API_URL is set: Prefect reads its settings at import.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from nlpdag.runs.dag import dvc
from nlpdag.runs.grid import describe, set_args
from nlpdag.runs.repo import clone, ran_stages, sync_uncached_outputs
from flows.serve import experiment_rows

FLOW_NAME = "nlpdag-sweep-point"


@task(retries=2, retry_delay_seconds=5, task_run_name="clone {rev:.10}")
def checkout(repo_url: str, rev: str, workdir: str) -> str:
    """A clone of `repo_url` at `rev` with the outputs the DVC remote holds; returns its path."""
    repo = clone(repo_url, rev, Path(workdir) / "repo")
    # Outputs missing from the remote are recomputed, never an error: --allow-missing.
    dvc(repo, "pull", "--run-cache", "--allow-missing", "--quiet")
    sync_uncached_outputs(repo, "pull")
    return str(repo)


@task(task_run_name="dvc exp run -n {name}")
def run_point(repo: str, name: str, point: dict, targets: list[str]) -> list[str]:
    """The experiment itself; returns the stages that ran (the rest came from the caches)."""
    logger = get_run_logger()
    out = dvc(Path(repo), "exp", "run", "--name", name, *set_args(point), *targets)
    for line in out.splitlines():
        if line.strip():
            logger.info(line)
    return ran_stages(out)


@task(retries=2, retry_delay_seconds=5, task_run_name="dvc exp push origin {name}")
def push_point(repo: str, name: str) -> None:
    """Outputs to the DVC remote and run-cache entries, then the experiment's git ref: DVC pushes
    the cache first, so a ref on the git remote always has its outputs behind it."""
    sync_uncached_outputs(Path(repo), "push")
    dvc(Path(repo), "exp", "push", "--force", "--run-cache", "origin", name)


@task
def publish(repo: str, name: str, point: dict, ran: list[str]) -> dict:
    rows = experiment_rows(Path(repo), name)
    create_table_artifact(key="nlpdag-sweep-metrics", table=rows,
                          description=f"Sweep point `{name}` ({describe(point)}); ran: "
                                      f"{', '.join(ran) if ran else 'nothing, all cached'}")
    return {"experiment": name, "ran": ran, "metrics": len(rows)}


@flow(name=FLOW_NAME, log_prints=True, flow_run_name="{name}")
def sweep_point(repo_url: str, rev: str, name: str, params: dict, targets: list[str] | None = None) -> dict:
    """Run one grid point as DVC experiment `name` on commit `rev` of `repo_url`; push it back.

    `params` maps dotted params.yaml keys to values; `targets`, stages to stop at (default: the
    whole DAG), as `dvc exp run`'s. The workspace is a temporary clone, removed
    at the end whatever happens, so a worker never reuses another point's files."""
    logger = get_run_logger()
    workdir = tempfile.mkdtemp(prefix=f"nlpdag-{name}-", dir=os.environ.get("NLPDAG_SWEEP_TMP"))
    try:
        repo = checkout(repo_url, rev, workdir)
        ran = run_point(repo, name, params, list(targets or []))
        push_point(repo, name)
        result = publish(repo, name, params, ran)
        logger.info("experiment %s pushed; ran %s", name, ", ".join(ran) if ran else "nothing (all cached)")
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
