"""Prefect work pools as sweeps and `nlpdag run --pool` use them: the preflight checks on the user's
side, the pool, a deployment of a worker-side flow, and the automation that notices a dead worker.

Every check runs before anything is created on the server or either remote, and fails with one
line saying what to do. Prefect is imported inside the functions: they run only after the caller
has set PREFECT_API_URL (Prefect reads its settings at import).
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nlpdag.runs.dag import PipelineError

POOL = "nlpdag"
HEARTBEAT_ENV = "NLPDAG_SWEEP_HEARTBEAT"
MISSED_HEARTBEATS = 3  # silent this many heartbeats: the flow run's worker is gone
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class PreflightError(PipelineError):
    """A check before anything is submitted failed; the message is one line saying what to do."""


@dataclass
class Target:
    repo_url: str     # what workers clone
    rev: str          # the commit they check out
    dvc_remote: str   # the default DVC remote of that commit: where outputs and run-cache entries meet


def heartbeat_seconds() -> int:
    """Seconds between a running flow run's heartbeats: $NLPDAG_SWEEP_HEARTBEAT, default 60 (Prefect's
    floor is 30)."""
    value = os.environ.get(HEARTBEAT_ENV, "60")
    if not value.isdigit() or int(value) < 30:
        raise PreflightError(f"{HEARTBEAT_ENV}={value!r}: expected whole seconds, at least 30")
    return int(value)


def job_variables(heartbeat: int) -> dict:
    """A deployment's job variables. `prefect flow-run execute` (not the process worker's default
    `python -m prefect.engine`) is the runner that honours the SIGTERM behaviour: a worker stopped
    with SIGTERM (Ctrl-C, systemd, a preempted VM) puts its flow run back in the pool as SCHEDULED,
    and another worker runs it. The heartbeat feeds the automation of `ensure_unresponsive_automation`."""
    return {"command": "prefect flow-run execute",
            "env": {"PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR": "reschedule",
                    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(heartbeat)}}


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def check_pushed(root: Path, git_remote: str, paths: list[str], what: str) -> Target:
    """What workers will clone: `root`'s HEAD, with `paths` committed, on `git_remote`, whose
    `.dvc/config` names a default DVC remote. `what` names the work in messages ("sweep", "run")."""
    url = _git(root, "remote", "get-url", git_remote)
    if url.returncode != 0:
        raise PreflightError(f"no git remote {git_remote!r}: workers clone the project from it "
                             f"(git remote add {git_remote} <url>, or pass --git-remote)")
    rev = _git(root, "rev-parse", "HEAD").stdout.strip()
    if not rev:
        raise PreflightError(f"{root}: no commit to {what} from (git commit first)")
    # Porcelain lines are "XY path": the status column may be a space, so no strip() before the split.
    dirty = [l for l in _git(root, "status", "--porcelain", "--untracked-files=no", "--", *paths).stdout.splitlines()
             if l.strip()]
    if dirty:
        raise PreflightError(f"uncommitted changes to {dirty[0][3:]}: workers run commit {rev[:10]} "
                             "as pushed; commit and push them first")
    remote = _git(root, "ls-remote", git_remote)
    if remote.returncode != 0:
        last = (remote.stderr.strip().splitlines() or ["no answer"])[-1]
        raise PreflightError(f"git remote {git_remote} ({url.stdout.strip()}) cannot be read: {last}")
    on_remote = rev in remote.stdout.split() or _git(root, "branch", "-r", "--contains", rev).stdout.strip()
    if not on_remote:
        raise PreflightError(f"commit {rev[:10]} is not on git remote {git_remote}: git push {git_remote} first")
    dvc_remote = default_dvc_remote(_git(root, "show", f"{rev}:.dvc/config").stdout)
    if not dvc_remote:
        raise PreflightError(f"no default DVC remote in .dvc/config of commit {rev[:10]} (workers read and write "
                             "the shared cache there): dvc remote add -d <name> <url>, commit and push")
    return Target(url.stdout.strip(), rev, dvc_remote)


def default_dvc_remote(config_text: str) -> str | None:
    """The default remote's name in a .dvc/config (configobj syntax, as DVC writes it), if defined."""
    from configobj import ConfigObj, ConfigObjError

    try:
        config = ConfigObj(config_text.splitlines())
    except ConfigObjError:
        return None
    name = (config.get("core") or {}).get("remote")
    return name if name and f'remote "{name}"' in config else None


# ---- against the Prefect server (PREFECT_API_URL set before this is called) ----------------------

def online_workers(client, pool: str) -> list[str]:
    from prefect.client.schemas.filters import WorkerFilter, WorkerFilterStatus
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    try:
        workers = client.read_workers_for_work_pool(
            pool, worker_filter=WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"])))
    except ObjectNotFound:
        return []
    except PrefectHTTPStatusError as exc:  # what this call raises for a pool that does not exist
        if exc.response.status_code == 404:
            return []
        raise
    return [w.name for w in workers]


def ensure_pool(client, pool: str) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        client.read_work_pool(pool)
    except ObjectNotFound:
        try:
            client.create_work_pool(WorkPoolCreate(
                name=pool, type="process", base_job_template=ProcessWorker.get_default_base_job_template()))
        except ObjectAlreadyExists:  # a worker created it meanwhile
            pass


def ensure_deployment(client, pool: str, flow, name: str, entrypoint: str, description: str, tags: list[str],
                      heartbeat: int = 60):
    """Create or update the deployment `name` of `flow` (idempotent: keyed by flow and deployment name).
    `entrypoint` is a module path, so any worker with this package installed can load the flow."""
    from prefect.utilities.callables import parameter_schema

    flow_id = client.create_flow_from_name(flow.name)
    return client.create_deployment(
        flow_id=flow_id, name=name, work_pool_name=pool, entrypoint=entrypoint,
        parameter_openapi_schema=parameter_schema(flow).model_dump_for_openapi(),
        description=description, tags=tags, job_variables=job_variables(heartbeat))


def ensure_unresponsive_automation(client, name: str, deployment_id, heartbeat: int, what: str,
                                   then: str = "") -> None:
    """A flow run whose worker died without a word (SIGKILL, a lost machine) would stay RUNNING for
    good: Prefect's answer (docs, "detect zombie flows") is an automation that marks a flow run
    CRASHED when its heartbeats stop. Automation `name` watches the runs of one deployment (`what`
    they are, and `then` what to do next, for its messages); created or updated, one per server."""
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    silence = MISSED_HEARTBEATS * heartbeat
    automation = AutomationCore(
        name=name,
        description=f"Marks {what} CRASHED when its worker stops sending heartbeats",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},  # any later event of the run: a heartbeat or a new state
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification({"prefect.resource.role": "deployment",
                                                 "prefect.resource.id": f"prefect.deployment.{deployment_id}"}),
            for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
            within=timedelta(seconds=silence)),
        actions=[ChangeFlowRunState(
            state=StateType.CRASHED,
            message=f"no heartbeat for {silence} s: its worker is gone{then}")])
    existing = client.read_automations_by_name(name)
    if existing:
        client.update_automation(existing[0].id, automation)
    else:
        client.create_automation(automation)
