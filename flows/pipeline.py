"""The Prefect flow: one task per DVC stage, each submitted once its upstream stages are done.

Each task runs `dvc --wait-for-lock repro --single-item <stage>` in its own process, so DVC's cache
decides what is skipped; a stage that DVC reports up to date, with nothing upstream rerun, finishes
without starting one. Ready stages run at once (`--jobs`) while their threads fit the cores and their
memory the machine: each task holds slots of two Prefect global concurrency limits sized to them
(nlpdag/runs/resources.py) for as long as its stage runs. Prefect holds back the dependants of a
failed stage; the others finish.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.concurrency.sync import concurrency
from prefect.futures import as_completed
from prefect.states import Failed

from nlpdag.runs.dag import (DvcCall, PipelineError, Plan, dvc, find_root, order_lock, run_stage, stage_order,
                             sweep_temporaries)
from nlpdag.runs.resources import (Need, limit_names, machine_cores, machine_memory_gb, read_dvc_yaml,
                                   stage_needs)
from nlpdag.runs.timeline import StageTime, summary, table_rows, write_gantt, write_timeline


def timing(stage: str, outcome: str, need: Need, ready: float, start: float, end: float,
           cpu: float | None = None, memory: float | None = None) -> dict:
    return {"stage": stage, "outcome": outcome, "threads": need.threads, "ready": ready, "start": start, "end": end,
            "cpu_seconds": cpu, "peak_memory_mb": memory}


@task(retries=1, retry_delay_seconds=[2, 10], task_run_name="{stage}")
def repro_stage(stage: str, root: str, stale: bool, upstream: list[dict], need: Need, slots: int,
                limits: tuple[str, str],
                clock: float, force: bool = False, pool: dict | None = None):
    """Bring one stage up to date through DVC; returns its timing (outcome: ran, restored, up to date).

    `upstream`: the upstream stages' timings (Prefect passes them once those tasks completed). A stage's
    own error (bad input or parameters) is a Failed state with its one line: retrying cannot help, and
    Prefect would print a traceback. Anything else (a stage killed from outside) raises, so Prefect
    retries it."""
    logger = get_run_logger()
    ready = max((u["end"] for u in upstream), default=0.0)
    if not (stale or force or any(u["outcome"] in ("ran", "restored") for u in upstream)):
        now = time.time() - clock
        logger.info("%s: up to date", stage)
        return timing(stage, "up to date", need, ready, now, now)
    cores, memory = limits
    remote = False
    if pool is not None:
        from nlpdag.runs.remote import run_on_pool, sent  # only with --pool

        remote = sent(pool, stage)
    # A stage sent to the pool uses a worker's cores, not this machine's.
    with (contextlib.nullcontext() if remote else concurrency(memory, occupy=max(1, math.ceil(need.memory_gb)))), \
            (contextlib.nullcontext() if remote else concurrency(cores, occupy=slots)):
        start = time.time() - clock
        try:
            if remote:
                outcome, cpu, peak, output = run_on_pool(Path(root), stage, threads=need.threads, **pool), None, None, ""
            else:
                done = run_stage(Path(root), stage, need.threads, force)
                outcome, cpu, peak, output = done.outcome, done.cpu_seconds, done.peak_memory_mb, done.output
            end = time.time() - clock  # before the slots go back, so the timeline never shows more threads than cores
        except PipelineError as exc:
            if not exc.ours:
                raise
            end = time.time() - clock
            return Failed(message=str(exc).removeprefix("error: "),
                          data={"stage": stage, "user_error": True, "timing": timing(stage, "failed", need, ready,
                                                                                      start, end)})
    for line in output.splitlines():
        if line.strip():
            logger.info(line)
    logger.info("%s: %s in %.1f s on %d thread(s)", stage, outcome, end - start, need.threads)
    return timing(stage, outcome, need, ready, start, end, cpu, peak)


def restore(root: Path, stage: str) -> bool:
    """The failed stage's previous outputs back from DVC's cache (DVC deleted them before running it), so
    what read them (`nlpdag predict`, the report) keeps working; `dvc status` still shows the stage stale."""
    try:
        dvc(root, "checkout", "--force", stage)  # --force: what the failed run half-wrote (a DVCLive file) goes
        return True
    except PipelineError:
        return False  # never run before, or its cache is gone


def failed(root: Path, stage: str, state, data) -> Failed:
    """The flow's end at a failed stage: one line naming it, its previous outputs restored."""
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


def size_limits(root: Path, cores: int) -> tuple[str, str]:
    """The two global concurrency limits of this checkout, sized to this machine, with no slot held: the
    caller holds the checkout's run lock, so slots still held come from a run that was killed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    names = limit_names(root)
    with get_client(sync_client=True) as client:
        for name, limit in zip(names, (cores, max(1, int(machine_memory_gb())))):
            client.upsert_global_concurrency_limit_by_name(name, limit)
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
    return names


def record(root: Path, graph: dict, states: dict, cores: int, wall: float, jobs: int) -> dict:
    """The run's timeline: reports/timeline.json and .html, and a Prefect table artifact."""
    times = {}
    for stage, (_, data) in states.items():
        row = data.get("timing", data) if isinstance(data, dict) else None  # a failed stage's timing is in its data
        if row and "outcome" in row:
            times[stage] = StageTime(**{**row, "cpu_seconds": row["cpu_seconds"] or 0.0,
                                        "peak_memory_mb": row["peak_memory_mb"] or 0.0})
    facts = summary(times, graph, cores, wall, jobs)
    write_timeline(root, times, facts)
    try:
        write_gantt(root)
    except Exception as exc:  # noqa: BLE001 - the chart is a view; the JSON is the record
        get_run_logger().warning("timeline chart not drawn: %s", exc)
    create_table_artifact(key="nlpdag-timeline", table=table_rows(times),
                          description=f"Stages of {root.name}: {facts['wall_seconds']} s wall, bound "
                                      f"{facts['bound_seconds']} s (critical path {facts['critical_path_seconds']} s, "
                                      f"CPU {facts['cpu_seconds']} s / {cores} cores)")
    return facts


@flow(name="nlpdag-pipeline", log_prints=True)
def pipeline(repo: str | None = None, retries: int = 1, plan: Plan | None = None, jobs: int = 1,
             force: bool = False, pool: dict | None = None) -> dict:
    """Run the DVC pipeline, each stage once its upstream ones are done, `jobs` at most at once within the
    cores; publish the metrics and the timeline as artifacts. Returns {stage: outcome, "_run": facts}.

    `plan` may be started by the caller before Prefect starts up, to overlap the two."""
    root = find_root(repo)
    graph, stale = (plan or Plan(root)).result()
    # Nothing will change: read the metrics while the tasks are recorded.
    metrics = DvcCall(root, "metrics", "show", "--json") if not (stale or force) else None
    cores = machine_cores()
    params = yaml.safe_load((root / "params.yaml").read_text()) or {}
    needs = stage_needs(graph, read_dvc_yaml(root), params, cores, jobs)
    limits = size_limits(root, cores)
    if left := sweep_temporaries(root):
        get_run_logger().info("removed %d file(s) a killed run left half-written: %s", len(left), ", ".join(left[:5]))
    clock = time.time()
    task_fn = repro_stage.with_options(retries=retries)
    order = stage_order(graph)
    futures, states, results = {}, {}, {}

    def submit_ready() -> None:
        for stage in order:
            if stage not in futures and all(u in results for u in graph[stage]):
                # jobs=1: each stage holds every core, so one runs at a time whatever the task runner
                slots = cores if jobs == 1 else needs[stage].threads
                upstream = [results[u] for u in sorted(graph[stage])]
                futures[stage] = task_fn.submit(stage, str(root), stage in stale, upstream, needs[stage], slots,
                                                limits, clock, force, pool,
                                                wait_for=[futures[u] for u in sorted(graph[stage])])

    submit_ready()
    while len(states) < len(futures):
        future = next(as_completed([f for s, f in futures.items() if s not in states]))
        stage = next(s for s, f in futures.items() if f is future)
        data = future.result(raise_on_failure=False)  # the state's own data (future.state comes from the API, without it)
        states[stage] = (future.state, data)
        if future.state.is_completed():
            results[stage] = data
            submit_ready()  # a failed stage's dependants are never submitted; the others go on
    facts = record(root, graph, states, cores, time.time() - clock, jobs)
    order_lock(root)
    broken = [s for s in order if s in states and not states[s][0].is_completed()]
    if broken:
        first = min(broken, key=lambda s: (states[s][0].timestamp, s))
        return failed(root, first, *states[first])
    metrics = metrics or DvcCall(root, "metrics", "show", "--json")
    rows = metrics_rows(json.loads(metrics.result() or "{}"))
    if rows:
        create_table_artifact(key="nlpdag-metrics", table=rows,
                              description=f"Metrics of {root.name} after this run")
    return {**{stage: results[stage]["outcome"] for stage in order}, "_run": facts}
