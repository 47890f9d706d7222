"""Sweep grids: `-S key=v1,v2` options or a YAML file -> validated grid points. No Prefect, no I/O
beyond reading files, so the checks run before anything is submitted or pushed.
"""
from __future__ import annotations

import copy
import itertools
from pathlib import Path

import yaml

from nlpdag.errors import StageError
from nlpdag.config.params import parse_params


class GridError(ValueError):
    """A malformed or invalid grid; the message names the key."""


def split_values(text: str) -> list[str]:
    """`1,4` -> ['1', '4']; commas inside [...] or {...} belong to one value (`[pca,ae],[vae]`)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts]


def _value(text: str, key: str):
    if text == "":
        raise GridError(f"-S {key}: empty value")
    try:
        return yaml.safe_load(text)  # as DVC's -S does: 4 is an int, 1e-3 a float, [a,b] a list
    except yaml.YAMLError:
        raise GridError(f"-S {key}: {text!r} is not a YAML value") from None


def parse_set_options(options: list[str]) -> dict[str, list]:
    """`["bow.C=1,4", "cooccur.window=2,5"]` -> {"bow.C": [1, 4], "cooccur.window": [2, 5]}."""
    grid: dict[str, list] = {}
    for option in options:
        key, eq, values = option.partition("=")
        key = key.strip()
        if not eq or not key:
            raise GridError(f"-S {option!r}: expected key=value[,value...]")
        if key in grid:
            raise GridError(f"-S {key}: given twice")
        grid[key] = [_value(v, key) for v in split_values(values)]
    return grid


def _flatten(node: dict, prefix: str = "") -> dict[str, list]:
    out: dict[str, list] = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value if isinstance(value, list) else [value]
    return out


def load_grid_file(path: Path) -> dict[str, list]:
    """A YAML mapping of keys (dotted, or nested as in params.yaml) to lists of values; a scalar is
    one fixed value. A list-valued parameter is swept as a list of lists: `reduce.reducers: [[pca], [ae]]`."""
    if not path.is_file():
        raise GridError(f"{path}: grid file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise GridError(f"{path}: not valid YAML") from None
    if not isinstance(raw, dict) or not raw:
        raise GridError(f"{path}: expected a mapping of parameter keys to lists of values")
    return _flatten(raw)


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination; the first key varies slowest (as nested loops written in that order)."""
    for key, values in grid.items():
        if not values:
            raise GridError(f"{key}: no values")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def apply_point(params: dict, point: dict) -> dict:
    """params.yaml's mapping with a point's dotted keys set (a copy)."""
    out = copy.deepcopy(params)
    for key, value in point.items():
        node = out
        *groups, leaf = key.split(".")
        for i, group in enumerate(groups):
            if not isinstance(node.get(group), dict):
                where = ".".join(groups[: i + 1])
                raise GridError(f"{key}: unknown key ({where} is not a parameter group)")
            node = node[group]
        node[leaf] = value
    return out


def validate_points(params: dict, points: list[dict]) -> None:
    """Each point's params against params.yaml's schema: an unknown key or a bad value is one line."""
    for point in points:
        try:
            parse_params(apply_point(params, point), "sweep grid")
        except StageError as exc:
            raise GridError(str(exc)) from None


def set_args(point: dict) -> list[str]:
    """A point as `dvc exp run -S` arguments; values in YAML flow style (DVC parses them back)."""
    args = []
    for key, value in point.items():
        text = value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()
        text = text.removesuffix("\n...").strip()
        args += ["-S", f"{key}={text}"]
    return args


def describe(point: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items())
