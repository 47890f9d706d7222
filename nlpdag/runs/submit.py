"""`nlpdag sweep` on the user's side: its preflight, its deployment, one flow run per point.

Every check runs before the first flow run is created, and the user's side never pushes: a bad
grid, an unpushed commit, a missing DVC remote, an unreachable server or an empty pool leaves
nothing behind on any remote (the pool and server parts: nlpdag/runs/pool.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from nlpdag.runs.grid import GridError, describe, validate_points
from nlpdag.runs.pool import FINAL, PreflightError, Target, check_pushed, ensure_deployment

DEPLOYMENT = "sweep"
ENTRYPOINT = "flows.sweep.sweep_point"
UNRESPONSIVE = "nlpdag sweep: crash unresponsive points"
SWEPT = ["params.yaml", "dvc.yaml", "stages", "flows", ".dvc/config"]  # committed before a sweep


@dataclass
class Submitted:
    name: str
    point: dict
    flow_run_id: str
    state: str = "SCHEDULED"
    extra: dict = field(default_factory=dict)


def check_targets(dvc_yaml: dict, targets: list[str]) -> None:
    stages = dvc_yaml.get("stages") or {}
    for target in targets:
        if target not in stages and target.split("@")[0] not in stages:
            raise PreflightError(f"--target {target}: no such stage in dvc.yaml ({', '.join(stages)})")


def check_repo(root: Path, git_remote: str, points: list[dict], targets: list[str] = ()) -> Target:
    """The grid against params.yaml, then git and DVC remotes: everything checkable offline-ish."""
    try:
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
        validate_points(params, points)
    except GridError as exc:
        raise PreflightError(str(exc)) from None
    check_targets(yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {}, list(targets))
    return check_pushed(root, git_remote, SWEPT, "sweep")


def experiment_prefix(now: datetime | None = None) -> str:
    return f"sweep-{(now or datetime.now(timezone.utc)):%Y%m%d-%H%M%S}"


def point_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i + 1:02d}" for i in range(count)]


# ---- against the Prefect server (PREFECT_API_URL set before this is called) ----------------------

def ensure_sweep_deployment(client, flow, pool: str, heartbeat: int = 60):
    """`flow`: flows/sweep.py's `sweep_point`, passed in (the library does not import the flows that wrap it)."""
    return ensure_deployment(
        client, pool, flow, DEPLOYMENT, ENTRYPOINT,
        "One nlpdag sweep point: clone, dvc exp run, dvc exp push (see `nlpdag sweep`)", ["nlpdag", "sweep"],
        heartbeat)


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
