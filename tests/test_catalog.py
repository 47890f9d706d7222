"""nlpdag/catalog/<stage>.py names what its stage writes: every Path it holds is an output of a stage of
dvc.yaml that the module belongs to (or a folder of such outputs), and every stage has its module."""
from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "nlpdag" / "catalog"
MODULES = sorted(p.stem for p in CATALOG.glob("*.py") if p.stem != "__init__")

# A catalog module per producing stage; these two modules own several stages.
OWNED = {"embeddings": {"word2vec", "glove", "fasttext", "doc2vec", "pretrained"}, "classify": {"neural", "classify"}}
# Paths no stage writes: the user's input folder (ingest and pretrained read it), the resumable training
# state (outside DVC).
NOT_OUTPUTS = {("ingest", "RAW_DIR"), ("classify", "CHECKPOINTS")}
KEY = "${key}"   # dvc.yaml's foreach over the classify.models mapping, left as it is
# The catalog's functions of a name, called with every value dvc.yaml expands them for.
CALLS = {("classify", "neural_dir"): [KEY], ("classify", "model_dir"): [KEY],
         ("embeddings", "docvecs_path"): ["dm", "dbow", "ngram"],
         ("embeddings", "doc2vec_model_dir"): ["dm", "dbow", "ngram"]}


def module_of(stage: str) -> str:
    base = stage.partition("@")[0]
    return next((module for module, stages in OWNED.items() if base in stages), base)


def _paths(entries) -> list[str]:
    out = []
    for entry in entries or []:
        out += [entry] if isinstance(entry, str) else list(entry)
    return out


def stage_outputs() -> dict[str, list[PurePosixPath]]:
    """{stage name: its outs, metrics and plots}, foreach stages expanded (`${item}`; a mapping's `${key}`
    kept as is)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    found = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        paths = _paths(body.get("outs")) + _paths(body.get("metrics")) + _paths(body.get("plots"))
        items = stage.get("foreach")
        if items is None:
            found[name] = [PurePosixPath(p) for p in paths]
        elif isinstance(items, list):
            for item in items:
                found[f"{name}@{item}"] = [PurePosixPath(p.replace("${item}", str(item))) for p in paths]
        else:   # ${classify.models}: a mapping, one stage per key
            assert isinstance(items, str) and items.startswith("${"), (name, items)
            found[f"{name}@{KEY}"] = [PurePosixPath(p) for p in paths]
    return found


OUTPUTS = stage_outputs()


def own_names(module: str) -> list[str]:
    """The names the module itself assigns at the top level (not those it imports)."""
    tree = ast.parse((CATALOG / f"{module}.py").read_text(encoding="utf-8"))
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(t, ast.Name):
                    names.append(t.id)
    return names


def catalog_paths(module: str) -> list[tuple[str, Path]]:
    mod = importlib.import_module(f"nlpdag.catalog.{module}")
    out = [(name, getattr(mod, name)) for name in own_names(module) if isinstance(getattr(mod, name), Path)]
    for (owner, function), args in CALLS.items():
        if owner == module:
            out += [(f"{function}({arg!r})", getattr(mod, function)(arg)) for arg in args]
    return out


def written_by(path: Path, stages: list[str]) -> list[str]:
    """The stages of `stages` that write `path`: as an output, inside an output folder, or as the folder
    that holds outputs of theirs and of no other stage."""
    p = PurePosixPath(path.as_posix())
    inside = {s for s, outs in OUTPUTS.items() for o in outs if o != p and o.is_relative_to(p)}
    return [s for s in stages for o in OUTPUTS[s]
            if p == o or p.is_relative_to(o) or (o.is_relative_to(p) and inside <= set(stages))]


def test_modules_found():
    assert {"ingest", "tokenise", "bow", "embeddings", "classify", "report"} <= set(MODULES)
    assert OUTPUTS["word2vec@cbow"] and OUTPUTS[f"neural@{KEY}"] and OUTPUTS["doc2vec@dbow"]


@pytest.mark.parametrize("stage", sorted(OUTPUTS))
def test_every_stage_has_its_catalog_module(stage):
    module = module_of(stage)
    assert (CATALOG / f"{module}.py").is_file(), f"{stage}: no nlpdag/catalog/{module}.py"
    assert OUTPUTS[stage], f"{stage}: writes nothing"


@pytest.mark.parametrize("module", MODULES)
def test_every_catalog_path_is_its_stages_output(module):
    stages = [s for s in OUTPUTS if module_of(s) == module]
    assert stages, f"nlpdag/catalog/{module}.py: no stage of dvc.yaml belongs to it"
    paths = catalog_paths(module)
    assert paths, f"nlpdag/catalog/{module}.py names no path"
    wrong = [f"{name} = {path}" for name, path in paths
             if (module, name) not in NOT_OUTPUTS and not written_by(path, stages)]
    assert not wrong, (f"nlpdag/catalog/{module}.py names paths that none of its stages ({', '.join(stages)}) "
                       f"writes: {wrong}")


def test_exceptions_are_written_by_no_stage():
    """RAW_DIR and CHECKPOINTS are the only allowed non-outputs, and indeed no stage writes them."""
    everyone = list(OUTPUTS)
    for module, name in NOT_OUTPUTS:
        path = getattr(importlib.import_module(f"nlpdag.catalog.{module}"), name)
        assert not written_by(path, everyone), f"{module}.{name} = {path} is an output after all: drop the exception"


def test_every_path_function_is_checked():
    """A new function of a name in the catalog gets its arguments in CALLS (else its paths go unchecked)."""
    skipped = []
    for module in MODULES:
        mod = importlib.import_module(f"nlpdag.catalog.{module}")
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ != mod.__name__:
                continue
            returns = inspect.signature(fn).return_annotation
            if returns in (Path, "Path", "Path | None") and (module, name) not in CALLS:
                skipped.append(f"{module}.{name}")
    # reduce.vectors_path names every method's vectors: checked against the producing stage below.
    assert skipped == ["reduce.vectors_path"], skipped


def test_every_vectors_path_is_its_producers_output():
    from nlpdag.catalog.reduce import known_methods, vectors_path
    from nlpdag.names import parse_embedding

    for method in known_methods():
        producer = parse_embedding(method).producer
        assert producer in OUTPUTS, f"{method}: producer {producer!r} is not a stage of dvc.yaml"
        path = vectors_path(method)
        assert path == parse_embedding(method).path()
        assert written_by(path, [producer]), f"{method}: {path} is not an output of {producer}"
