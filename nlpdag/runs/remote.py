"""`nlpdag run --pool`: the coordinator's side of a run whose stages run on Prefect workers.

The coordinator (the user's checkout) decides what runs when, as for a local run; for each stage
it pushes what the stage's worker needs, creates a flow run of flows/stage.py, waits for it, and
restores the stage from the run cache the worker pushed (`dvc repro --pull --single-item`: DVC
finds an entry for exactly its own inputs, and checks the outputs out). So only the coordinator
writes its dvc.lock, and a stage that the worker could not reproduce exactly (other inputs) is
rerun here rather than recorded wrongly: `run_on_pool` warns when that happens.

Prefect is imported inside the functions: the caller sets PREFECT_API_URL first.
"""
from __future__ import annotations

import logging
import os
import time
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from nlpdag.runs.dag import PipelineError, dvc, parse_status, stage_graph
from nlpdag.runs.pool import (FINAL, PreflightError, check_pushed, ensure_deployment, ensure_pool,
                              ensure_unresponsive_automation, heartbeat_seconds, online_workers)
from nlpdag.runs.repo import lock_outputs, ran_stages, sync_objects, untracked_inputs, user_inputs

DEPLOYMENT = "pool"
ENTRYPOINT = "flows.stage.stage_run"
UNRESPONSIVE = "nlpdag run --pool: crash unresponsive stages"
POLL = 2.0             # seconds between looks at a flow run's state
WORKERLESS = 120.0     # a stage still queued this long with no worker online: the run stops


def _log():
    """The Prefect task's logger when called from one (the coordinator's flow), else a plain one."""
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a flow or task run: MissingContextError
        return logging.getLogger("nlpdag.remote")


def _flow_run_id():
    """The coordinator's flow run, when called from one of its tasks."""
    from prefect.context import TaskRunContext

    context = TaskRunContext.get()
    return context.task_run.flow_run_id if context else None


def prepare_pool(root: Path, pool: str, flow, git_remote: str = "origin", send: list[str] | None = None) -> dict:
    """Preflight for `nlpdag run --pool`, before any stage runs (PREFECT_API_URL already set to the
    server the workers poll): the workspace is committed and pushed to `git_remote`, its commit names
    a default DVC remote, a worker polls `pool`; then the pool, the deployment of `flow` (flows/stage.py's
    `stage_run`, passed in: the library does not import the flows that wrap it), and
    this checkout's outputs and run cache pushed. `send`: the stages that go to the pool, as
    shell-style patterns (`neural@*`; default all); the others run here (`sent`). Raises
    PreflightError (a PipelineError) with one line saying what to do. Returns the JSON-able keyword
    arguments of `run_on_pool`."""
    send = list(send or ["*"])
    inputs, _ = user_inputs(root)
    # What workers clone must be what the stages read here: every input that no stage writes.
    target = check_pushed(root, git_remote, ["params.yaml", "dvc.yaml", ".dvc/config", "*.dvc", *inputs], "run")
    if untracked := untracked_inputs(root):
        raise PreflightError(f"{untracked[0]} is not in git, so workers would not see it: git add (or dvc add) it, "
                             "commit and push")
    heartbeat = heartbeat_seconds()
    graph = stage_graph(root)
    for pattern in send:
        if not any(fnmatchcase(stage, pattern) for stage in graph):
            raise PreflightError(f"--send {pattern}: no stage matches ({', '.join(sorted(graph))})")

    import httpx
    from prefect.client.orchestration import get_client

    url = os.environ.get("PREFECT_API_URL", "")
    try:
        with get_client(sync_client=True) as client:
            workers = online_workers(client, pool)
            if not workers:
                raise PreflightError(f"no worker is polling work pool {pool} at {url}: start one with "
                                     f"`nlpdag worker --pool {pool}`")
            ensure_pool(client, pool)
            deployment_id = ensure_deployment(
                client, pool, flow, DEPLOYMENT, ENTRYPOINT,
                "One stage of `nlpdag run --pool`: clone, dvc repro --pull <stage>, dvc push --run-cache",
                ["nlpdag", "run"], heartbeat)
            ensure_unresponsive_automation(client, UNRESPONSIVE, deployment_id, heartbeat, "a stage's flow run",
                                           " (the coordinator retries the stage)")
    except httpx.HTTPError as exc:
        raise PreflightError(f"no Prefect server answers at {url} ({exc.__class__.__name__}): is it running? "
                             "is PREFECT_API_URL right?") from None
    push_outputs(root, list(read_lock(root)))
    return {"pool": pool, "deployment_id": str(deployment_id), "repo_url": target.repo_url, "rev": target.rev,
            "upstream": {stage: sorted(ups) for stage, ups in graph.items()}, "workers": workers, "send": send}


def sent(prepared: dict, stage: str) -> bool:
    """Whether `stage` goes to the pool (`prepare_pool`'s `send`), or runs here like a local stage."""
    return any(fnmatchcase(stage, pattern) for pattern in prepared.get("send", ["*"]))


def run_on_pool(root: Path, stage: str, *, threads: int, pool: str, deployment_id: str, repo_url: str, rev: str,
                upstream: dict[str, list[str]], workers: list[str] = (), send: list[str] = ("*",)) -> str:
    """Run one stage on a worker and restore it here. Returns "ran" (the worker computed it),
    "restored" (the worker found it in the run cache: computed before with the same inputs) or
    "up to date" (it was not stale after all: nothing sent). A failed flow run raises
    PipelineError(its one line, ours=True when it is the stage's own `error:` line). `workers` (those
    online at the preflight) and `send` are for the caller."""
    log = _log()
    if stage not in parse_status(dvc(root, "--wait-for-lock", "status", "--json", stage)):
        return "up to date"  # an upstream stage ran and wrote what it had before (`check` always does)
    closure = upstream_closure(upstream, stage)
    lock = read_lock(root, closure)
    clock = [time.perf_counter()]

    def lap() -> float:
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    push_outputs(root, sorted(closure), lock)
    pushed = lap()
    outcome = _wait_for_run(root, stage, threads, pool, deployment_id, repo_url, rev, lock, log)
    remote = lap()
    out = dvc(root, "--wait-for-lock", "repro", "--pull", "--single-item", stage)
    log.info("%s: pushed its inputs in %.1f s, %s on pool %s in %.1f s, restored here in %.1f s",
             stage, pushed, outcome, pool, remote, lap())
    if stage in ran_stages(out):
        log.warning("%s: rerun here: the worker's run-cache entry does not match this checkout's inputs", stage)
        return "ran"
    if f"Stage '{stage}' didn't change" in out:
        return "up to date"
    return "ran" if outcome == "ran" else "restored"


def upstream_closure(upstream: dict[str, list[str]], stage: str) -> set[str]:
    seen: set[str] = set()
    todo = list(upstream.get(stage, []))
    while todo:
        if (up := todo.pop()) not in seen:
            seen.add(up)
            todo += upstream.get(up, [])
    return seen


def read_lock(root: Path, stages: set[str] | None = None, tries: int = 20) -> dict[str, dict]:
    """dvc.lock's entries of `stages` (default all). DVC rewrites the file in place while other stages
    of this run finish, so a half-written file is read again."""
    for attempt in range(tries):
        try:
            entries = (yaml.safe_load((root / "dvc.lock").read_text()) or {}).get("stages") or {}
        except FileNotFoundError:
            entries = {}
        except yaml.YAMLError:
            time.sleep(0.2)
            continue
        if stages is None:
            return entries
        if not (missing := stages - set(entries)):
            return {s: entries[s] for s in stages}
        if attempt == tries - 1:
            raise PipelineError(f"dvc.lock has no entry for upstream stage {sorted(missing)[0]}: run it first")
        time.sleep(0.2)
    raise PipelineError(f"{root / 'dvc.lock'}: not readable YAML")


def push_outputs(root: Path, stages: list[str], lock: dict[str, dict] | None = None) -> None:
    """What a worker needs of this checkout: its outputs and run-cache entries (`dvc push` skips what the
    remote has), and the objects of the `cache: false` outputs of `stages`, which DVC's push leaves out
    and a worker needs to restore those stages."""
    dvc(root, "--wait-for-lock", "push", "--run-cache")
    lock = read_lock(root, set(stages)) if lock is None else lock
    sync_objects(root, "push", lock_outputs(lock))


def _wait_for_run(root: Path, stage: str, threads: int, pool: str, deployment_id: str, repo_url: str, rev: str,
                  lock: dict[str, dict], log) -> str:
    """Create the stage's flow run and wait for its end; the worker's outcome, or PipelineError."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Cancelling

    coordinator = _flow_run_id()
    with get_client(sync_client=True) as client:
        if coordinator and client.read_flow_run(coordinator).state.type.value in FINAL:
            raise PipelineError(f"{stage}: the run was interrupted")  # a retry after Ctrl-C: send nothing
        run = client.create_flow_run_from_deployment(
            UUID(deployment_id), name=stage, tags=["nlpdag", "run", rev[:10]],
            parameters={"repo_url": repo_url, "rev": rev, "stage": stage, "threads": threads, "lock": lock})
        log.info("%s: flow run %s on pool %s (%d threads)", stage, run.id, pool, threads)
        queued_alone = None  # since when the run waits with no worker online
        kind = "SCHEDULED"
        try:
            while True:
                state = client.read_flow_run(run.id).state
                kind = state.type.value if state else "SCHEDULED"
                if kind in FINAL:
                    break
                if coordinator and client.read_flow_run(coordinator).state.type.value in FINAL:
                    # Ctrl-C (or a cancel in the UI) ended the coordinator's flow run; Python then waits
                    # for this thread, so the stage's worker must stop, not the coordinator wait for it.
                    raise PipelineError(f"{stage}: the run was interrupted")
                if kind in ("SCHEDULED", "PENDING") and not online_workers(client, pool):
                    queued_alone = queued_alone or time.monotonic()
                    if time.monotonic() - queued_alone > WORKERLESS:
                        raise PipelineError(f"{stage}: no worker has polled pool {pool} for {WORKERLESS:.0f} s: "
                                            f"start one (`nlpdag worker --pool {pool}`)")
                else:
                    queued_alone = None
                time.sleep(POLL)
        except BaseException:
            # The coordinator stops (Ctrl-C, no worker left): the stage's worker stops too.
            if kind not in FINAL:  # a queued run is simply dropped; a running one is stopped by its worker
                stop = Cancelled() if kind in ("SCHEDULED", "PENDING") else Cancelling()
                client.set_flow_run_state(run.id, stop, force=True)
            raise
        if kind != "COMPLETED":
            message = (state.message or f"flow run {kind.lower()}").strip().splitlines()[-1]
            ours = message.startswith("error:")
            raise PipelineError(message if ours else f"{stage} on pool {pool}: {message}", ours)
        return _worker_outcome(client, run.id)


def _worker_outcome(client, flow_run_id) -> str:
    """What the worker did, from the `nlpdag-stage` artifact its flow run wrote."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    arts = client.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=["nlpdag-stage"])))
    for art in arts:
        data = art.data
        rows = yaml.safe_load(data) if isinstance(data, str) else data
        if rows and isinstance(rows, list) and isinstance(rows[0], dict):
            return rows[0].get("outcome", "ran")
    return "ran"
