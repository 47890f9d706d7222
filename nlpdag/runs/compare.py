"""`nlpdag compare`: what changed between experiments or git revisions, side by side, best marked.

Pure functions turn `dvc exp show --json` (or metrics and params files read at revisions) into a
table; the wiring at the end queries DVC and git. The metrics files hold headline numbers only
(nlpdag/evaluation/headline.py), so every one of them can be a column; by default only the parameters
and metrics that differ between the versions are shown, as `dvc exp show --only-changed` does.
"""
from __future__ import annotations

import fnmatch
import html
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Lower is better for these (by substring of the metric name); everything else: higher is better.
LOWER_IS_BETTER = ("mse", "loss", "seconds", "oov", "perplexity", "error")


class CompareError(RuntimeError):
    """Not enough versions, or a revision that does not exist; one line for the user."""


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    better: str | None  # "max", "min", or None for context (parameters, corpus size): never marked


@dataclass
class Version:
    label: str
    metrics: dict[str, dict]          # metrics file -> its content
    params: dict[str, object] = field(default_factory=dict)  # flattened "group.key" -> value


@dataclass
class Table:
    versions: list[str]
    columns: list[Column]
    cells: dict[tuple[str, str], tuple[object, str]]   # (version, column key) -> (value, note)
    best: dict[str, set[str]]                          # column key -> versions holding the best value


def direction(name: str) -> str:
    return "min" if any(word in name.lower() for word in LOWER_IS_BETTER) else "max"


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def flatten(node: object, prefix: str = "") -> dict[str, object]:
    """Nested dicts -> {"a.b.c": leaf}; lists and None kept as leaves."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, object] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def headline_metrics(metrics: dict[str, dict]) -> dict[Column, tuple[object, str]]:
    """One version's metrics files -> a column per number, "<file stem>.<path>" (the headline files of
    nlpdag/evaluation/headline.py: a classifier row's accuracy, an embedding's WS353...)."""
    out: dict[Column, tuple[object, str]] = {}
    for path, data in metrics.items():
        for key, value in flatten(data, Path(path).stem).items():
            if is_number(value) or value is None:
                out[Column(f"metric:{key}", key, direction(key))] = (value, "")
    return out


def _differs(values: list[object]) -> bool:
    return len({round(v, 6) if is_number(v) else json.dumps(v) for v in values}) > 1


def build_table(versions: list[Version], patterns: list[str] | None = None, everything: bool = False) -> Table:
    """Versions -> the table: the parameters that differ (context), then the metrics that differ, best
    marked. Seconds differ on every run: shown only when a pattern asks (e.g. "*.seconds") or with
    `everything` (every metric, changed or not)."""
    if len(versions) < 2:
        found = ", ".join(v.label for v in versions) or "none"
        raise CompareError(f"compare needs two versions or more, found {len(versions)} ({found}): "
                           "run an experiment (dvc exp run -S ...) or name two revisions")
    columns: list[Column] = []
    cells: dict[tuple[str, str], tuple[object, str]] = {}
    params = sorted({k for v in versions for k in v.params})
    for key in params:
        values = [json.dumps(v.params.get(key)) for v in versions]
        if len(set(values)) > 1:
            columns.append(Column(f"param:{key}", key, None))
            for v in versions:
                cells[(v.label, f"param:{key}")] = (v.params.get(key), "")
    found = {v.label: headline_metrics(v.metrics) for v in versions}
    metric_columns: list[Column] = []
    for v in versions:
        for column in found[v.label]:
            if column not in metric_columns:
                metric_columns.append(column)
    for column in metric_columns:
        values = [found[v.label].get(column, (None, ""))[0] for v in versions]
        name = column.label
        asked = any(fnmatch.fnmatchcase(name, p) for p in patterns or [])
        if asked or everything or (_differs(values) and not name.endswith("seconds")):
            columns.append(column)
            for v in versions:
                cells[(v.label, column.key)] = found[v.label].get(column, (None, ""))
    best: dict[str, set[str]] = {}
    for column in columns:
        if column.better is None:
            continue
        values = {v.label: cells[(v.label, column.key)][0] for v in versions
                  if is_number(cells.get((v.label, column.key), (None,))[0])}
        if len(set(round(x, 6) for x in values.values())) < 2:
            continue  # all equal (or one value): nothing to mark
        top = (max if column.better == "max" else min)(values.values())
        best[column.key] = {label for label, x in values.items() if round(x, 6) == round(top, 6)}
    return Table([v.label for v in versions], columns, cells, best)


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if is_number(value):
        if float(value).is_integer() and abs(value) >= 1:
            return f"{int(value)}"
        if value and abs(value) < 0.01:  # losses and errors: keep what differs
            return f"{value:.3g}"
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return value if isinstance(value, str) else json.dumps(value)


def text_grid(table: Table, transpose: bool = False) -> list[list[str]]:
    head = ["version"] + [c.label for c in table.columns]
    rows = [head]
    for label in table.versions:
        row = [label]
        for c in table.columns:
            value, note = table.cells.get((label, c.key), (None, ""))
            mark = "*" if label in table.best.get(c.key, ()) else ""
            row.append(f"{mark}{fmt(value)}" + (f" {note}" if note else ""))
        rows.append(row)
    return [list(r) for r in zip(*rows)] if transpose else rows


def render_text(table: Table, width: int = 100) -> str:
    """Aligned columns; turned a quarter (one line per metric) when versions-as-rows would not fit."""
    def lay(grid: list[list[str]]) -> list[str]:
        widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
        return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in grid]

    lines = lay(text_grid(table))
    if max(map(len, lines)) > width:
        lines = lay(text_grid(table, transpose=True))
    notes = ["* best in its column (lower is better for losses, errors, seconds)"]
    if not any(c.key.startswith("metric:") for c in table.columns):
        notes.append("no metric differs between these versions (--all shows every one)")
    return "\n".join(lines + notes)


def render_html(table: Table, title: str = "nlpdag compare") -> str:
    """A self-contained page (inline CSS, no scripts, nothing fetched)."""
    esc = html.escape
    head = "".join(f'<th class="{"ctx" if c.better is None else "metric"}">{esc(c.label)}'
                   + ("" if c.better is None else f' <span class="dir">{"↓" if c.better == "min" else "↑"}</span>')
                   + "</th>" for c in table.columns)
    body = []
    for label in table.versions:
        cells = []
        for c in table.columns:
            value, note = table.cells.get((label, c.key), (None, ""))
            text = esc(fmt(value)) + (f' <small>{esc(note)}</small>' if note else "")
            if label in table.best.get(c.key, ()):
                text = f'<strong>{text}</strong>'
            cells.append(f'<td class="{"best" if label in table.best.get(c.key, ()) else ""}">{text}</td>')
        body.append(f"<tr><th>{esc(label)}</th>{''.join(cells)}</tr>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
             "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap}"
             "thead th{background:#f3f3f3;vertical-align:bottom}tbody th{text-align:left}"
             "th.ctx{background:#fafae8}td.best{background:#e3f5e3}small{color:#777}.dir{color:#999}")
    return (f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{style}</style></head><body><h1>{esc(title)}</h1>\n"
            f"<p>Bold: best in its column (↑ higher is better, ↓ lower). Yellow columns: parameters "
            f"that differ. Small print: the model or method that scored it.</p>\n"
            f"<table><thead><tr><th>version</th>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
            + "\n</tbody></table></body></html>\n")


def _metrics_of(data: dict) -> dict[str, dict]:
    return {path: (m or {}).get("data") or {} for path, m in (data.get("metrics") or {}).items()}


def _params_of(data: dict) -> dict[str, object]:
    out: dict[str, object] = {}
    for content in (data.get("params") or {}).values():
        out.update(flatten((content or {}).get("data") or {}))
    return out


def versions_from_exp_show(shown: list[dict]) -> list[Version]:
    """`dvc exp show --json` -> baselines and their finished experiments (queued or failed ones
    have no metrics); the workspace only when it differs from the commit it sits on."""
    versions: list[Version] = []
    workspace = None
    for baseline in shown:
        data = baseline.get("data") or {}
        if baseline.get("rev") == "workspace":
            workspace = Version("workspace", _metrics_of(data), _params_of(data))
            continue
        if not data or baseline.get("error"):
            continue
        rev = baseline.get("rev", "")
        label = f"{baseline['name']} ({rev[:7]})" if baseline.get("name") else rev[:7]
        versions.append(Version(label, _metrics_of(data), _params_of(data)))
        for exp in baseline.get("experiments") or []:
            for run in exp.get("revs") or []:
                data = run.get("data") or {}
                if run.get("error") or not data.get("metrics"):
                    continue
                label = run.get("name") or exp.get("name") or run.get("rev", "")[:7]
                if any(v.label == label for v in versions):  # one name under two baselines (-A)
                    label = f"{label} ({run.get('rev', '')[:7]})"
                versions.append(Version(label, _metrics_of(data), _params_of(data)))
    if workspace and not any(v.metrics == workspace.metrics and v.params == workspace.params
                             for v in versions[:1]):
        versions.insert(0, workspace)
    return versions


def metrics_files(dvc_yaml: dict) -> list[str]:
    """The metrics files dvc.yaml declares, in its order."""
    out: list[str] = []
    for stage in (dvc_yaml.get("stages") or {}).values():
        for m in stage.get("do", stage).get("metrics", []):
            path = m if isinstance(m, str) else next(iter(m))
            if path not in out:
                out.append(path)
    return out


# ---- wiring: git and DVC ----------------------------------------------------------------------

def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def resolve(root: Path, rev: str) -> str:
    """A git revision or an experiment name -> a commit sha."""
    proc = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if proc.returncode == 0:
        return proc.stdout.strip()
    refs = _git(root, "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps").stdout.splitlines()
    hits = [line.split()[0] for line in refs if line.split()[1].rsplit("/", 1)[-1] == rev]
    if len(hits) == 1:
        return hits[0]
    raise CompareError(f"{rev!r}: no such git revision or experiment" if not hits
                       else f"{rev!r}: names {len(hits)} experiments; give a commit instead")


def _read(root: Path, sha: str | None, path: str) -> str | None:
    """A file's text at a commit (None: the workspace); None when it is missing there."""
    if sha is None:
        p = root / path
        return p.read_text() if p.is_file() else None
    proc = _git(root, "show", f"{sha}:{path}")
    return proc.stdout if proc.returncode == 0 else None


def version_at(root: Path, rev: str) -> Version:
    """Metrics and params of a revision, read from git (metrics are `cache: false`, so committed)."""
    sha = None if rev == "workspace" else resolve(root, rev)
    spec = yaml.safe_load(_read(root, sha, "dvc.yaml") or "{}") or {}
    metrics = {}
    for path in metrics_files(spec):
        text = _read(root, sha, path)
        if text is not None:
            metrics[path] = json.loads(text)
    params = flatten(yaml.safe_load(_read(root, sha, "params.yaml") or "{}") or {})
    if not metrics:
        raise CompareError(f"{rev!r}: no metrics files there (was the pipeline run and committed?)")
    return Version(rev, metrics, params)


def collect(root: Path, revs: list[str], all_experiments: bool = False) -> list[Version]:
    """The versions to compare: the named revisions, else the experiments `dvc exp show` lists."""
    if revs:
        return [version_at(root, rev) for rev in revs]
    from nlpdag.runs.dag import dvc

    shown = json.loads(dvc(root, "exp", "show", "--json", *(["-A"] if all_experiments else [])) or "[]")
    return versions_from_exp_show(shown)


def write_html(root: Path, table: Table, path: Path | None = None) -> Path:
    from nlpdag.io.tables import atomic_path

    path = path or root / "reports" / "compare.html"
    with atomic_path(path) as tmp:
        tmp.write_text(render_html(table, f"nlpdag compare — {root.name}"), encoding="utf-8")
    return path
