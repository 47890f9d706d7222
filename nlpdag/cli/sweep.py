"""`nlpdag sweep`, `nlpdag resubmit`, `nlpdag worker`: parameter grids on Prefect workers.

Plain functions with typer defaults; nlpdag/cli/commands.py registers them as commands.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from nlpdag.cli.util import fail as _fail
from nlpdag.cli.util import find_checkout as _root
from nlpdag.cli.util import quiet_prefect as _quiet_prefect


def _sweep_server(root: Path) -> str:
    """The API URL workers and `nlpdag sweep` share: PREFECT_API_URL, else the checkout's own server."""
    from nlpdag.runs.server import healthy, plan

    _quiet_prefect(root)
    server = plan(root)
    if not server.external and not server.pid:
        _fail("no Prefect server: set PREFECT_API_URL to the one your workers poll, "
              "or start one with `nlpdag server start`")
    if not healthy(server.api_url):
        _fail(f"no Prefect server answers at {server.api_url} (is it running? is PREFECT_API_URL right?)")
    os.environ["PREFECT_API_URL"] = server.api_url  # before Prefect's first import
    return server.api_url


def _wait(client, runs: list, timeout: float) -> None:
    """Poll the points until all are final, print their table; exit 1 unless all completed."""
    from nlpdag.runs import submit as sub

    ok = sub.wait(client, runs, timeout, say=lambda line: typer.echo(f"nlpdag: {line}", err=True))
    typer.echo(sub.table(runs))
    if not ok:
        _fail(f"{sum(r.state != 'COMPLETED' for r in runs)} of {len(runs)} points did not complete", 1)


def sweep(
    set_param: Optional[list[str]] = typer.Option(None, "--set-param", "-S",
                                                  help="A swept parameter: key=v1,v2 (as `dvc exp run -S`); repeat."),
    grid_file: Optional[Path] = typer.Option(None, "--grid", help="Or a YAML file: {key: [values]}."),
    target: Optional[list[str]] = typer.Option(None, "--target", "-t",
                                               help="Run each point only up to this stage (repeat; default: all)."),
    pool: str = typer.Option("nlpdag", help="The Prefect work pool the workers poll."),
    git_remote: str = typer.Option("origin", help="The git remote workers clone from and push experiments to."),
    worker_check: bool = typer.Option(True, "--worker-check/--no-worker-check",
                                      help="Refuse to submit when no worker polls the pool."),
    wait: bool = typer.Option(False, "--wait", help="Wait for every point and print their states."),
    timeout: float = typer.Option(6 * 3600, min=1, help="With --wait: give up after so many seconds."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
) -> None:
    """Submit one Prefect flow run per grid point; workers run each as a DVC experiment and push it."""
    from nlpdag.runs.grid import GridError, grid_points, load_grid_file, parse_set_options
    from nlpdag.runs.pool import PreflightError, heartbeat_seconds
    from nlpdag.runs.submit import check_repo, experiment_prefix

    root = _root(repo)
    try:
        grid = parse_set_options(set_param or [])
        if grid_file is not None:
            for key, values in load_grid_file(grid_file).items():
                if key in grid:
                    raise GridError(f"{key}: in both --grid and -S")
                grid[key] = values
        if not grid:
            raise GridError("nothing to sweep: give -S key=v1,v2 or --grid FILE")
        points = grid_points(grid)
        heartbeat = heartbeat_seconds()
        dest = check_repo(root, git_remote, points, target or [])
    except (GridError, PreflightError) as exc:
        _fail(str(exc))
    url = _sweep_server(root)
    from prefect.client.orchestration import get_client

    from flows.sweep import sweep_point
    from nlpdag.runs import pool as pools
    from nlpdag.runs import submit as sub

    with get_client(sync_client=True) as client:
        workers = pools.online_workers(client, pool)
        if worker_check and not workers:
            _fail(f"no worker is polling work pool {pool} at {url}: start one with `nlpdag worker --pool {pool}` "
                  "(or pass --no-worker-check to queue the points anyway)")
        pools.ensure_pool(client, pool)
        deployment_id = sub.ensure_sweep_deployment(client, sweep_point, pool, heartbeat)
        pools.ensure_unresponsive_automation(client, sub.UNRESPONSIVE, deployment_id, heartbeat, "a sweep point",
                                             " (`nlpdag resubmit` runs it again)")
        prefix = experiment_prefix()
        runs = sub.submit(client, deployment_id, dest, prefix, points, target or [])
        typer.echo(f"nlpdag: {len(runs)} points of commit {dest.rev[:10]} submitted to pool {pool} "
                   f"({len(workers)} worker(s) online); experiments {prefix}-NN", err=True)
        typer.echo(sub.table(runs))
        if not wait:
            typer.echo(f"nlpdag: then `dvc exp pull {git_remote} <names>` and `dvc exp show`", err=True)
            return
        _wait(client, runs, timeout)
    typer.echo(f"nlpdag: all points done: `dvc exp pull {git_remote} {' '.join(r.name for r in runs)}`", err=True)


def resubmit(
    names: Optional[list[str]] = typer.Argument(None, help="Points (sweep-<time>-NN) or whole sweeps (sweep-<time>); "
                                                          "default: every crashed point."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the points and print their states."),
    timeout: float = typer.Option(6 * 3600, min=1, help="With --wait: give up after so many seconds."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
) -> None:
    """Put crashed sweep points back in the pool (a point is marked CRASHED when its worker stops
    sending heartbeats: SIGKILL, a lost machine); a worker runs each again from the start."""
    root = _root(repo)
    _sweep_server(root)
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from nlpdag.runs import submit as sub
    from flows.sweep import FLOW_NAME

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{sub.DEPLOYMENT}")
        except ObjectNotFound:
            _fail("no sweep was ever submitted to this Prefect server (no deployment "
                  f"{FLOW_NAME}/{sub.DEPLOYMENT})")
        runs = sub.crashed_points(client, deployment.id, list(names or []))
        if not runs:
            _fail(f"no crashed sweep point{' named ' + ', '.join(names) if names else ''} on this server", 1)
        sub.resubmit(client, runs)
        typer.echo(f"nlpdag: {len(runs)} crashed point(s) back in pool {deployment.work_pool_name}", err=True)
        typer.echo(sub.table(runs))
        if wait:
            _wait(client, runs, timeout)


def worker(
    pool: str = typer.Option("nlpdag", help="The work pool to poll."),
    limit: int = typer.Option(1, min=1, help="Points run at once by this worker."),
    name: Optional[str] = typer.Option(None, help="The worker's name (default: Prefect's)."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout (for its PREFECT_HOME and server)."),
) -> None:
    """`prefect worker start --pool nlpdag --type process`; on SIGTERM/Ctrl-C its running points go back
    to the pool for another worker."""
    root = _root(repo)
    _sweep_server(root)
    # The deployment's command is `prefect flow-run execute`: this venv's, whatever the PATH.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    exe = Path(sys.executable).with_name("prefect")
    args = [str(exe) if exe.exists() else "prefect", "worker", "start", "--pool", pool, "--type", "process",
            "--limit", str(limit)] + (["--name", name] if name else [])
    from nlpdag.runs.worker import supervise

    raise typer.Exit(supervise(args, dict(os.environ)))
