"""Per-stage timing of one `nlpdag run`: when each stage was ready, started and ended, its CPU time,
threads and peak memory; the run's lower bound, and a Gantt-style chart of it.

The bound on a run's wall time is the larger of the critical path (the longest chain of stage wall
times through the DAG) and the CPU time of all stages over the cores: no schedule beats either.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

TIMELINE_JSON = Path("reports/timeline.json")   # not DVC outputs: a record of how this checkout's last run went
TIMELINE_HTML = Path("reports/timeline.html")


@dataclass
class StageTime:
    stage: str
    outcome: str           # ran | restored | up to date | failed | not run
    threads: int
    ready: float           # seconds since the run started: its upstream stages were done
    start: float           # it got its cores and started
    end: float
    cpu_seconds: float
    peak_memory_mb: float

    @property
    def wall(self) -> float:
        return self.end - self.start


def critical_path(times: dict[str, StageTime], graph: dict[str, set[str]]) -> tuple[float, list[str]]:
    """The longest chain of stage wall times through the DAG, and its stages in order."""
    best: dict[str, tuple[float, list[str]]] = {}

    def longest(stage: str) -> tuple[float, list[str]]:
        if stage not in best:
            own = times[stage].wall if stage in times else 0.0
            up = max((longest(u) for u in graph.get(stage, ()) if u in times or u in graph),
                     key=lambda pair: pair[0], default=(0.0, []))
            best[stage] = (up[0] + own, up[1] + [stage])
        return best[stage]

    return max((longest(s) for s in graph), key=lambda pair: pair[0], default=(0.0, []))


def summary(times: dict[str, StageTime], graph: dict[str, set[str]], cores: int, wall: float, jobs: int) -> dict:
    path_seconds, path = critical_path(times, graph)
    cpu = sum(t.cpu_seconds for t in times.values())
    bound = max(path_seconds, cpu / cores)
    return {"wall_seconds": round(wall, 1), "jobs": jobs or "auto", "cores": cores,
            "critical_path_seconds": round(path_seconds, 1), "critical_path": path,
            "cpu_seconds": round(cpu, 1), "cpu_over_cores_seconds": round(cpu / cores, 1),
            "bound_seconds": round(bound, 1),
            # Undefined when nothing ran (every stage up to date): null, not a ratio of zeros.
            "wall_over_bound": round(wall / bound, 3) if bound >= 1 else None,
            "waited_seconds": round(sum(max(0.0, t.start - t.ready) for t in times.values()), 1)}


def table_rows(times: dict[str, StageTime]) -> list[dict]:
    """The rows of Prefect's table artifact and of the JSON file, in start order."""
    return [{"stage": t.stage, "outcome": t.outcome, "threads": t.threads, "ready_s": round(t.ready, 1),
             "start_s": round(t.start, 1), "end_s": round(t.end, 1), "wall_s": round(t.wall, 1),
             "waited_s": round(max(0.0, t.start - t.ready), 1), "cpu_s": round(t.cpu_seconds, 1),
             "cpu_per_wall": round(t.cpu_seconds / t.wall, 2) if t.wall >= 0.5 else None,
             "peak_memory_mb": round(t.peak_memory_mb)}
            for t in sorted(times.values(), key=lambda t: (t.start, t.stage))]


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_timeline(root: Path, times: dict[str, StageTime], facts: dict) -> Path:
    path = root / TIMELINE_JSON
    write_atomic(path, json.dumps({"run": facts, "stages": table_rows(times)}, indent=1) + "\n")
    return path


def gantt_html(timeline: dict) -> str:
    """The timeline as a self-contained page: one bar per stage (ready -> start dotted: waiting for cores or
    for DVC's lock), coloured by outcome, the critical path outlined."""
    import plotly.graph_objects as go

    run, rows = timeline["run"], [r for r in timeline["stages"] if r["outcome"] != "not run"]
    on_path = set(run.get("critical_path") or [])
    colours = {"ran": "#2563eb", "restored": "#16a34a", "up to date": "#9ca3af", "failed": "#dc2626"}
    fig = go.Figure()
    for outcome, colour in colours.items():
        chosen = [r for r in rows if r["outcome"] == outcome]
        if not chosen:
            continue
        fig.add_bar(y=[r["stage"] for r in chosen], x=[max(r["wall_s"], 0.2) for r in chosen],
                    base=[r["start_s"] for r in chosen], orientation="h", name=outcome, marker_color=colour,
                    marker_line_color=["#111827" if r["stage"] in on_path else colour for r in chosen],
                    marker_line_width=[2.5 if r["stage"] in on_path else 0 for r in chosen],
                    customdata=[[r["threads"], r["cpu_s"], r["peak_memory_mb"], r["waited_s"]] for r in chosen],
                    hovertemplate="%{y}: %{x:.1f} s wall, %{customdata[1]:.1f} s CPU on %{customdata[0]} thread(s), "
                                  "peak %{customdata[2]} MB; waited %{customdata[3]:.1f} s<extra></extra>")
    waited = [r for r in rows if r["waited_s"] >= 0.5]
    if waited:
        fig.add_bar(y=[r["stage"] for r in waited], x=[r["waited_s"] for r in waited],
                    base=[r["ready_s"] for r in waited], orientation="h", name="ready, waiting",
                    marker_color="rgba(0,0,0,0)", marker_line_color="#f59e0b", marker_line_width=1.5,
                    hovertemplate="%{y}: waited %{x:.1f} s<extra></extra>")
    order = [r["stage"] for r in sorted(rows, key=lambda r: (r["start_s"], r["stage"]))]
    ratio = run.get("wall_over_bound")
    title = (f"{run['wall_seconds']:.0f} s wall with --jobs {run['jobs']} on {run['cores']} cores; bound "
             f"{run['bound_seconds']:.0f} s = max(critical path {run['critical_path_seconds']:.0f} s, CPU "
             f"{run['cpu_seconds']:.0f} s / {run['cores']} = {run['cpu_over_cores_seconds']:.0f} s)"
             + (f"; wall/bound {ratio:.2f}" if ratio else ""))
    fig.update_layout(barmode="overlay", title=dict(text=title, font_size=14), height=120 + 24 * len(order),
                      xaxis_title="seconds since the run started", legend_orientation="h", legend_y=-0.12,
                      yaxis=dict(categoryorder="array", categoryarray=order[::-1]), margin=dict(l=200))
    return fig.to_html(include_plotlyjs=True, full_html=True)


def write_gantt(root: Path, timeline_path: Path | None = None) -> Path:
    timeline = json.loads((timeline_path or root / TIMELINE_JSON).read_text())
    path = root / TIMELINE_HTML
    write_atomic(path, gantt_html(timeline))
    return path


def stage_times_dict(times: dict[str, StageTime]) -> list[dict]:
    return [asdict(t) for t in times.values()]
