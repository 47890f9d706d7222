"""One sweep point on a Prefect worker: a fresh clone, `dvc exp run`, `dvc exp push`.

The flow owns no state of its own: the code and params come from the git remote at `rev`, the
cached outputs (and DVC's run cache, so a stage already computed with the same inputs by any
worker is restored, not rerun) from the DVC remote, and the result goes back to both. A worker
therefore needs only this package installed, git, and access to the three services.

Import this module only after PREFECT_API_URL is set: Prefect reads its settings at import.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from nlpdag.runs.dag import PipelineError, dvc, dvc_env
from nlpdag.runs.grid import describe, set_args
from flows.serve import experiment_rows, ran_stages

FLOW_NAME = "nlpdag-sweep-point"


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=dvc_env())
    if proc.returncode != 0:
        lines = [l for l in (proc.stderr + proc.stdout).splitlines() if l.strip()]
        raise PipelineError(f"git {' '.join(args)}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def run_cache_outputs(repo: Path) -> set[str]:
    """md5s of the file outputs recorded in the local run cache (`.dvc/cache/runs/*/*/*`)."""
    md5s = set()
    for entry in (repo / ".dvc/cache/runs").glob("*/*/*"):
        try:
            outs = (yaml.safe_load(entry.read_text()) or {}).get("outs") or []
        except (OSError, yaml.YAMLError):
            continue
        md5s.update(o["md5"] for o in outs if isinstance(o.get("md5"), str) and not o["md5"].endswith(".dir"))
    return md5s


def sync_uncached_outputs(repo: Path, direction: str) -> int:
    """Push or pull the objects of run-cache outputs that DVC itself leaves behind.

    Measured with DVC 3.67: `dvc exp push --run-cache` (and `dvc push --run-cache`) push the run
    cache's entries but not the objects of `cache: false` outputs (every stage's metrics file), and
    a stage restores from the run cache only when all its outputs' objects are there; so without
    this another worker recomputes a stage that one already ran with the same inputs."""
    from dvc.repo import Repo
    from dvc_data.hashfile.hash_info import HashInfo

    # Entries from before this fix, or from a plain `dvc push --run-cache`, lack those objects on
    # the remote: DVC warns about each; such an entry is simply not restorable, which is no error.
    logging.getLogger("dvc.data_cloud").setLevel(logging.ERROR)
    with Repo(str(repo)) as dvc_repo:
        odb = dvc_repo.cache.local
        objs = {HashInfo("md5", m) for m in run_cache_outputs(repo)}
        if direction == "push":
            objs = {h for h in objs if odb.exists(h.value)}
            return len(dvc_repo.cloud.push(objs).transferred) if objs else 0
        objs = {h for h in objs if not odb.exists(h.value)}
        return len(dvc_repo.cloud.pull(objs).transferred) if objs else 0


@task(retries=2, retry_delay_seconds=5, task_run_name="clone {rev:.10}")
def checkout(repo_url: str, rev: str, workdir: str) -> str:
    """A clone of `repo_url` at `rev` with the outputs the DVC remote holds; returns its path."""
    repo = Path(workdir) / "repo"
    shutil.rmtree(repo, ignore_errors=True)  # a retry starts clean
    git(Path(workdir), "clone", "--quiet", "--no-checkout", repo_url, str(repo))
    git(repo, "checkout", "--quiet", "--detach", rev)
    if not _has_identity(repo):
        # `dvc exp run` commits the experiment; a worker account may have no git identity.
        git(repo, "config", "user.name", "nlpdag worker")
        git(repo, "config", "user.email", "nlpdag-worker@localhost")
    # Outputs missing from the remote are recomputed, never an error: --allow-missing.
    dvc(repo, "pull", "--run-cache", "--allow-missing", "--quiet")
    sync_uncached_outputs(repo, "pull")
    return str(repo)


def _has_identity(repo: Path) -> bool:
    proc = subprocess.run(["git", "config", "user.email"], cwd=repo, capture_output=True, text=True)
    return proc.returncode == 0 and bool(proc.stdout.strip())


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
