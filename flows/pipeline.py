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

from nlpdag.runs.dag import DvcCall, Plan, dvc, find_root, stage_order


@task(retries=1, retry_delay_seconds=[2, 10], task_run_name="{stage}")
def repro_stage(stage: str, root: str, stale: bool) -> str:
    """Bring one stage up to date through DVC; returns 'ran' or 'up to date'."""
    logger = get_run_logger()
    if not stale:
        logger.info("%s: up to date", stage)
        return "up to date"
    start = time.perf_counter()
    out = dvc(Path(root), "repro", "--single-item", stage)
    for line in out.splitlines():
        if line.strip():
            logger.info(line)
    ran = f"Stage '{stage}' didn't change" not in out
    logger.info("%s: %s in %.1f s", stage, "ran" if ran else "up to date", time.perf_counter() - start)
    return "ran" if ran else "up to date"


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
        results[stage] = task_fn(stage, str(root), stage in stale or upstream_ran)
    metrics = metrics or DvcCall(root, "metrics", "show", "--json")
    rows = metrics_rows(json.loads(metrics.result() or "{}"))
    if rows:
        create_table_artifact(key="nlpdag-metrics", table=rows,
                              description=f"Metrics of {root.name} after this run")
    return results
