"""Scheduled retraining: a Prefect flow that reruns the DAG as an isolated DVC experiment.

Each scheduled run is `dvc exp run --temp`: DVC copies the workspace (committed state plus
uncommitted changes to tracked files) into `.dvc/tmp/exps/`, reruns only what changed against
the shared cache, and records the result as an experiment (`dvc exp show`), never touching the
workspace's outputs. Measured on the small test repository (2 cores): a user's `dvc repro` and a
`--temp` run in the same workspace both succeed whichever starts first, while an in-workspace
`dvc exp run` beside the user's `dvc repro` fails at once with "... is busy"; the isolation costs
~3 s per run (5.5 s for a `--temp` run with nothing to rerun, 2.2 s for a no-op `dvc repro`).

Import this module only after PREFECT_API_URL is set: Prefect reads its settings at import.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from nlpdag.runs.dag import PipelineError, dvc
from nlpdag.runs.lock import RunLock
from nlpdag.runs.repo import ran_stages, untracked_inputs
from flows.pipeline import metrics_rows


def experiment_name(prefix: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{prefix}-{now:%Y%m%d-%H%M%S}"


def experiment_rows(root: Path, name: str) -> list[dict]:
    """The metrics table of one experiment, as `dvc exp show` in `root` reports it."""
    shown = json.loads(dvc(root, "exp", "show", "--json") or "[]")
    metrics = experiment_metrics(shown, name)
    if metrics is None:
        raise PipelineError(f"experiment {name} is missing from `dvc exp show`")
    return metrics_rows({name: {"data": metrics}})


def experiment_metrics(exp_show: list[dict], name: str) -> dict | None:
    """`dvc exp show --json` -> the named experiment's metrics ({file: {"data": ...}}), or None."""
    for baseline in exp_show:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("name") == name or exp.get("name") == name:
                    return (rev.get("data") or {}).get("metrics") or {}
    return None


@task(task_run_name="dvc exp run --temp -n {name}")
def run_experiment(root: str, name: str) -> list[str]:
    """Rerun what changed in an isolated copy; record it as experiment `name`. Returns the stages run."""
    logger = get_run_logger()
    args = ["exp", "run", "--temp", "--name", name]
    for path in untracked_inputs(Path(root)):
        args += ["--copy-paths", path]
    out = dvc(Path(root), *args)
    for line in out.splitlines():
        if line.strip():
            logger.info(line)
    return ran_stages(out)


# exp show reads the workspace: retried in case a user's `dvc repro` holds DVC's lock right then.
@task(retries=3, retry_delay_seconds=10)
def publish_metrics(root: str, name: str, ran: list[str]) -> int:
    """The experiment's metrics as the `nlpdag-metrics` table artifact; returns the row count."""
    rows = experiment_rows(Path(root), name)
    create_table_artifact(key="nlpdag-metrics", table=rows,
                          description=f"Metrics of experiment `{name}` in {root} "
                                      f"(ran: {', '.join(ran) if ran else 'nothing, all cached'})")
    return len(rows)


@flow(name="nlpdag-scheduled", log_prints=True)
def scheduled(repo: str, prefix: str = "scheduled", wait: float = 6 * 3600) -> dict:
    """One scheduled retraining: `dvc exp run --temp` in `repo`, metrics published as an artifact.

    `repo` is the absolute checkout captured when the flow was served, so a run never depends on
    the runner's working directory. Scheduled runs of one checkout queue on a file lock (two
    `nlpdag serve` processes, or a run that outlasts its interval); `nlpdag run` does not wait for
    them, as they never write the workspace."""
    logger = get_run_logger()
    root = Path(repo)
    with RunLock(root, "scheduled", timeout=wait, poll=10, say=logger.info):
        name = experiment_name(prefix)  # after the wait: the name dates the run, not the queueing
        ran = run_experiment(str(root), name)
    publish_metrics(str(root), name, ran)
    logger.info("experiment %s recorded; ran %s", name, ", ".join(ran) if ran else "nothing (all cached)")
    return {"experiment": name, "ran": ran}


def serve(root: Path, name: str, cron: str | None = None, interval: float | None = None,
          prefix: str = "scheduled") -> None:
    """Serve `scheduled` on a cron or an interval until interrupted (one run at a time)."""
    scheduled.serve(name=name, cron=cron, interval=interval, limit=1, tags=["nlpdag"],
                    parameters={"repo": str(root.resolve()), "prefix": prefix},
                    description=f"Scheduled retraining of {root.resolve()} as DVC experiments")
