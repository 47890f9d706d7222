"""The project's own import graph, read from the source (top-level and in-function imports alike)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = ("nlpdag", "stages", "flows")


def module_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def imports_of(module: str) -> set[str]:
    """The project modules `module` imports (`from a.b import c` counts a.b.c when c is a module)."""
    path = module_path(module)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in OWN:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if module_path(sub) else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in OWN}
    return {m for m in found if module_path(m) and m != module}


def packages(module: str) -> list[str]:
    """The packages Python imports before `module` (stages.neural -> stages)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(imports_of(m) | set(packages(m)))
    return seen


def code_files(module: str) -> list[str]:
    """The files a stage runs: its script and every project module it imports, transitively
    (empty package __init__ files left out)."""
    files = {module_path(m).relative_to(ROOT).as_posix() for m in closure(module)}
    return sorted(f for f in files if not (f.endswith("__init__.py") and not (ROOT / f).read_text().strip()))


def all_modules() -> list[str]:
    paths = [p for top in OWN for p in (ROOT / top).rglob("*.py")]
    return sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in paths)
