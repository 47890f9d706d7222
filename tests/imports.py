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


def rewrite_code_deps(dvc_yaml: str) -> str:
    """dvc.yaml's text with each stage's .py deps replaced by `code_files` of its `-m stages.X` module,
    in place of the first .py dep; other deps, comments and order kept. `python tests/imports.py`
    rewrites the file (after adding, moving or splitting a module)."""
    import re

    lines, out, i = dvc_yaml.splitlines(keepends=True), [], 0
    module = None
    while i < len(lines):
        line = lines[i]
        found = re.search(r"-m stages\.(\w+)", line)
        module = found.group(1) if found else module
        out.append(line)
        i += 1
        if line.strip() == "deps:" and module:
            items = []
            while i < len(lines) and lines[i].lstrip().startswith("- "):
                items.append(lines[i])
                i += 1
            indent = items[0][: len(items[0]) - len(items[0].lstrip())]
            first = next((n for n, item in enumerate(items) if item.strip().endswith(".py")), len(items))
            rest = [item for item in items if not item.strip().endswith(".py")]
            script = f"stages/{module}.py"  # the stage's own script first, then its library modules
            files = [script] + [f for f in code_files(f"stages.{module}") if f != script]
            code = [f"{indent}- {f}\n" for f in files]
            out.extend(rest[:first] + code + rest[first:])
    return "".join(out)


if __name__ == "__main__":
    path = ROOT / "dvc.yaml"
    path.write_text(rewrite_code_deps(path.read_text()))
