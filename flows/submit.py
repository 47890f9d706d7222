"""`nlpdag sweep` on the user's side: preflight checks, the deployment, one flow run per point.

Every check runs before the first flow run is created, and the user's side never pushes: a bad
grid, an unpushed commit, a missing DVC remote, an unreachable server or an empty pool leaves
nothing behind on any remote. Prefect is imported only after the checks that need no server.
"""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from nlpdag.runs.grid import GridError, describe, validate_points

POOL = "nlpdag"
DEPLOYMENT = "sweep"
ENTRYPOINT = "flows.sweep.sweep_point"  # a module path: any worker with nlpdag installed can load it


UNRESPONSIVE = "nlpdag sweep: crash unresponsive points"
HEARTBEAT_ENV = "NLPDAG_SWEEP_HEARTBEAT"
MISSED_HEARTBEATS = 3  # silent this many heartbeats: the point's worker is gone


def job_variables(heartbeat: int) -> dict:
    """The deployment's job variables. `prefect flow-run execute` (not the process worker's default
    `python -m prefect.engine`) is the runner that honours the SIGTERM behaviour: a worker stopped
    with SIGTERM (Ctrl-C, systemd, a preempted VM) puts its point back in the pool as SCHEDULED,
    and another worker runs it. The heartbeat feeds the automation of `ensure_unresponsive_automation`."""
    return {"command": "prefect flow-run execute",
            "env": {"PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR": "reschedule",
                    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(heartbeat)}}


def heartbeat_seconds() -> int:
    """Seconds between a running point's heartbeats: $NLPDAG_SWEEP_HEARTBEAT, default 60 (Prefect's
    floor is 30)."""
    value = os.environ.get(HEARTBEAT_ENV, "60")
    if not value.isdigit() or int(value) < 30:
        raise SweepError(f"{HEARTBEAT_ENV}={value!r}: expected whole seconds, at least 30")
    return int(value)


class SweepError(RuntimeError):
    """A preflight check failed; the message is one line saying what to do."""


@dataclass
class Target:
    repo_url: str     # what workers clone
    rev: str          # the commit every point starts from
    dvc_remote: str


@dataclass
class Submitted:
    name: str
    point: dict
    flow_run_id: str
    state: str = "SCHEDULED"
    extra: dict = field(default_factory=dict)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def check_targets(dvc_yaml: dict, targets: list[str]) -> None:
    stages = dvc_yaml.get("stages") or {}
    for target in targets:
        if target not in stages and target.split("@")[0] not in stages:
            raise SweepError(f"--target {target}: no such stage in dvc.yaml ({', '.join(stages)})")


def check_repo(root: Path, git_remote: str, points: list[dict], targets: list[str] = ()) -> Target:
    """The grid against params.yaml, then git and DVC remotes: everything checkable offline-ish."""
    try:
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
        validate_points(params, points)
    except GridError as exc:
        raise SweepError(str(exc)) from None
    check_targets(yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {}, list(targets))
    url = _git(root, "remote", "get-url", git_remote)
    if url.returncode != 0:
        raise SweepError(f"no git remote {git_remote!r}: workers clone the project from it "
                         f"(git remote add {git_remote} <url>, or pass --git-remote)")
    rev = _git(root, "rev-parse", "HEAD").stdout.strip()
    if not rev:
        raise SweepError(f"{root}: no commit to sweep from (git commit first)")
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", "params.yaml", "dvc.yaml",
                 "stages", "flows", ".dvc/config").stdout.strip()
    if dirty:
        raise SweepError(f"uncommitted changes to {dirty.splitlines()[0][3:]}: workers run commit {rev[:10]} "
                         "as pushed; commit and push them first")
    remote = _git(root, "ls-remote", git_remote)
    if remote.returncode != 0:
        last = (remote.stderr.strip().splitlines() or ["no answer"])[-1]
        raise SweepError(f"git remote {git_remote} ({url.stdout.strip()}) cannot be read: {last}")
    on_remote = rev in remote.stdout.split() or _git(root, "branch", "-r", "--contains", rev).stdout.strip()
    if not on_remote:
        raise SweepError(f"commit {rev[:10]} is not on git remote {git_remote}: git push {git_remote} first")
    dvc_remote = default_dvc_remote(_git(root, "show", f"{rev}:.dvc/config").stdout)
    if not dvc_remote:
        raise SweepError(f"no default DVC remote in .dvc/config of commit {rev[:10]} (workers read and write "
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


def experiment_prefix(now: datetime | None = None) -> str:
    return f"sweep-{(now or datetime.now(timezone.utc)):%Y%m%d-%H%M%S}"


def point_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i + 1:02d}" for i in range(count)]


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


def ensure_deployment(client, pool: str, heartbeat: int = 60):
    """Create or update the sweep deployment (idempotent: keyed by flow and deployment name)."""
    from prefect.utilities.callables import parameter_schema

    from flows.sweep import FLOW_NAME, sweep_point

    flow_id = client.create_flow_from_name(FLOW_NAME)
    return client.create_deployment(
        flow_id=flow_id, name=DEPLOYMENT, work_pool_name=pool, entrypoint=ENTRYPOINT,
        parameter_openapi_schema=parameter_schema(sweep_point).model_dump_for_openapi(),
        description="One nlpdag sweep point: clone, dvc exp run, dvc exp push (see `nlpdag sweep`)",
        tags=["nlpdag", "sweep"], job_variables=job_variables(heartbeat))


def ensure_unresponsive_automation(client, deployment_id, heartbeat: int) -> None:
    """A point whose worker died without a word (SIGKILL, a lost machine) would stay RUNNING for good:
    Prefect's answer (docs, "detect zombie flows") is an automation that marks a flow run CRASHED
    when its heartbeats stop. This one watches the sweep deployment's runs only; `nlpdag resubmit`
    puts crashed points back in the pool. Created or updated, one per server."""
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    silence = MISSED_HEARTBEATS * heartbeat
    automation = AutomationCore(
        name=UNRESPONSIVE,
        description="Marks a sweep point CRASHED when its worker stops sending heartbeats (nlpdag sweep)",
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
            message=f"no heartbeat for {silence} s: its worker is gone (`nlpdag resubmit` runs it again)")])
    existing = client.read_automations_by_name(UNRESPONSIVE)
    if existing:
        client.update_automation(existing[0].id, automation)
    else:
        client.create_automation(automation)


def crashed_points(client, deployment_id, names: list[str]) -> list[Submitted]:
    """The sweep deployment's CRASHED flow runs, those named in `names` (a name or a sweep prefix) or all."""
    from prefect.client.schemas.filters import (DeploymentFilter, DeploymentFilterId, FlowRunFilter,
                                                FlowRunFilterState, FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType

    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CRASHED]))))
    chosen = [r for r in runs if not names or any(r.name == n or r.name.startswith(n + "-") for n in names)]
    return [Submitted(r.name, r.parameters.get("params") or {}, str(r.id), "CRASHED")
            for r in sorted(chosen, key=lambda r: r.name)]


def resubmit(client, runs: list[Submitted]) -> None:
    """Back in the pool: SCHEDULED now (forced: Prefect refuses a crashed run's way back otherwise);
    a worker runs the point again from a fresh clone, and its run count goes up by one."""
    from uuid import UUID

    from prefect.states import Scheduled

    for run in runs:
        client.set_flow_run_state(UUID(run.flow_run_id), Scheduled(name="Resubmitted"), force=True)
        run.state = "SCHEDULED"


def submit(client, deployment_id, target: Target, prefix: str, points: list[dict],
           stages: list[str]) -> list[Submitted]:
    out = []
    for name, point in zip(point_names(prefix, len(points)), points):
        run = client.create_flow_run_from_deployment(
            deployment_id, name=name, tags=["nlpdag", "sweep", prefix],
            parameters={"repo_url": target.repo_url, "rev": target.rev, "name": name, "params": point,
                        "targets": stages})
        out.append(Submitted(name, point, str(run.id)))
    return out


FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def wait(client, runs: list[Submitted], timeout: float, poll: float = 2.0,
         say=lambda line: None) -> bool:
    """Poll until every run is final (or `timeout`); True if all completed."""
    from uuid import UUID

    deadline = time.monotonic() + timeout
    while True:
        for run in runs:
            if run.state not in FINAL:
                state = client.read_flow_run(UUID(run.flow_run_id)).state
                new = state.type.value if state else "SCHEDULED"
                if new != run.state:
                    say(f"{run.name}: {new}")
                run.state = new
        if all(r.state in FINAL for r in runs) or time.monotonic() > deadline:
            return all(r.state == "COMPLETED" for r in runs)
        time.sleep(poll)


def table(runs: list[Submitted]) -> str:
    width = max(len(r.name) for r in runs)
    return "\n".join(f"{r.name:<{width}}  {r.state:<10} {r.flow_run_id}  {describe(r.point)}" for r in runs)
