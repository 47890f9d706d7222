"""The Prefect flow: one task per DVC stage, in the order of the DAG that `dvc.yaml` defines.

Each task runs `dvc repro --single-item <stage>`, so DVC's cache decides what is skipped; stages
that DVC reports up to date, with nothing upstream rerun, finish without starting a process.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.states import Failed

from nlpdag.runs.dag import DvcCall, PipelineError, Plan, dvc, find_root, stage_order


@task(retries=1, retry_delay_seconds=[2, 10], task_run_name="{stage}")
def repro_stage(stage: str, root: str, stale: bool):
    """Bring one stage up to date through DVC; returns 'ran' or 'up to date'.

    A stage's own error (bad input or parameters) is a Failed state with its one line: retrying
    cannot help, and Prefect would print a traceback. Anything else (a stage killed from outside)
    raises, so Prefect retries it."""
    logger = get_run_logger()
    if not stale:
        logger.info("%s: up to date", stage)
        return "up to date"
    start = time.perf_counter()
    try:
        out = dvc(Path(root), "repro", "--single-item", stage)
    except PipelineError as exc:
        if not exc.ours:
            raise
        return Failed(message=str(exc).removeprefix("error: "), data={"stage": stage, "user_error": True})
    for line in out.splitlines():
        if line.strip():
            logger.info(line)
    ran = f"Stage '{stage}' didn't change" not in out
    logger.info("%s: %s in %.1f s", stage, "ran" if ran else "up to date", time.perf_counter() - start)
    return "ran" if ran else "up to date"


def restore(root: Path, stage: str) -> bool:
    """The failed stage's previous outputs back from DVC's cache (DVC deleted them before running it), so
    what read them (`nlpdag predict`, the report) keeps working; `dvc status` still shows the stage stale."""
    try:
        dvc(root, "checkout", "--force", stage)  # --force: what the failed run half-wrote (a DVCLive file) goes
        return True
    except PipelineError:
        return False  # never run before, or its cache is gone


def failed(root: Path, stage: str, state) -> Failed:
    """The flow's end at a failed stage: one line naming it, its previous outputs restored."""
    data = state.result(raise_on_failure=False)
    user_error = isinstance(data, dict) and data.get("user_error", False)
    message = state.message if user_error else f"{stage}: {str(data).splitlines()[-1] if str(data) else state.message}"
    back = restore(root, stage)
    note = (f"; its previous outputs are back (dvc checkout --force {stage}), `dvc status` shows it stale" if back else "")
    return Failed(message=message + note, data={"stage": stage, "user_error": user_error})


def metrics_rows(metrics: dict) -> list[dict]:
    """`dvc metrics show --json` -> flat rows (file, metric, value) for a table artifact."""
    rows = []
    for rev in metrics.values():
        for path, content in rev.get("data", {}).items():
            def walk(node, prefix=""):
                if isinstance(node, dict):
                    for key, value in node.items():
                        walk(value, f"{prefix}.{key}" if prefix else str(key))
                elif isinstance(node, (int, float)) and not isinstance(node, bool):
                    rows.append({"file": path, "metric": prefix, "value": node})
            walk(content.get("data", {}))
    return rows


@flow(name="nlpdag-pipeline", log_prints=True)
def pipeline(repo: str | None = None, retries: int = 1, plan: Plan | None = None) -> dict[str, str]:
    """Run the DVC pipeline stage by stage; publish the metrics table as an artifact.

    `plan` may be started by the caller before Prefect starts up, to overlap the two."""
    root = find_root(repo)
    graph, stale = (plan or Plan(root)).result()
    # Nothing will change: read the metrics while the tasks are recorded.
    metrics = DvcCall(root, "metrics", "show", "--json") if not stale else None
    results: dict[str, str] = {}
    task_fn = repro_stage.with_options(retries=retries)
    for stage in stage_order(graph):
        upstream_ran = any(results.get(up) == "ran" for up in graph[stage])
        state = task_fn(stage, str(root), stage in stale or upstream_ran, return_state=True)
        if not state.is_completed():
            return failed(root, stage, state)
        results[stage] = state.result()
    metrics = metrics or DvcCall(root, "metrics", "show", "--json")
    rows = metrics_rows(json.loads(metrics.result() or "{}"))
    if rows:
        create_table_artifact(key="nlpdag-metrics", table=rows,
                              description=f"Metrics of {root.name} after this run")
    return results
