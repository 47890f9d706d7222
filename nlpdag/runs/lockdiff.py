"""Do two runs' dvc.lock files record the same results? Stage by stage, from the DVC cache.

Equal hashes settle it. Where they differ, the outputs are read back from the cache and compared for
what they compute: the wall-clock figures stages record beside their results (seconds,
tokens per second) are left out, model files are compared tensor by tensor (torch.save writes a
random id into each file), and the report page is compared for its size only (it prints those
times). A stage is then `identical`, `same results` (only such figures differ), or `differs` (the
paths that do).
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import yaml

TIMING_KEY = re.compile(r"seconds|per_second|^tokens_per_s")


def cache_file(cache: Path, md5: str) -> Path:
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def files_of(cache: Path, out: dict) -> dict[str, str]:
    """{relative path: md5} of one lock `outs` entry (a file, or a directory's manifest)."""
    md5 = out.get("md5")
    if md5 is None:
        return {}
    if not md5.endswith(".dir"):
        return {"": md5}
    manifest = json.loads(cache_file(cache, md5).read_text())
    return {entry["relpath"]: entry["md5"] for entry in manifest}


def without_timings(node):
    if isinstance(node, dict):
        return {k: without_timings(v) for k, v in node.items() if not TIMING_KEY.search(str(k))}
    if isinstance(node, list):
        return [without_timings(v) for v in node]
    return node


def same_content(path: str, a: bytes, b: bytes) -> bool:
    if path.endswith(".json"):
        return without_timings(json.loads(a)) == without_timings(json.loads(b))
    if path.endswith(".pt"):
        import torch

        buffers = (io.BytesIO(blob) for blob in (a, b))
        x, y = (torch.load(buffer, map_location="cpu", weights_only=True) for buffer in buffers)
        return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    if path.endswith(".csv"):
        import pandas as pd

        x, y = (pd.read_csv(io.BytesIO(blob)) for blob in (a, b))
        x, y = (frame.drop(columns=[c for c in frame if TIMING_KEY.search(c)]) for frame in (x, y))
        return x.equals(y)
    if path.endswith(".html"):
        return True  # the report prints the timings; what it shows is the other outputs, compared above
    return False


def compare_locks(lock_a: dict, lock_b: dict, cache_a: Path, cache_b: Path | None = None) -> dict[str, dict]:
    """{stage: {"verdict": identical | same results | differs | missing, "paths": [what differs]}}."""
    cache_b = cache_b or cache_a
    stages_a, stages_b = lock_a.get("stages", {}), lock_b.get("stages", {})
    report = {}
    for stage in stages_a.keys() | stages_b.keys():
        a, b = stages_a.get(stage), stages_b.get(stage)
        if a is None or b is None:
            report[stage] = {"verdict": "missing", "paths": []}
            continue
        if a == b:
            report[stage] = {"verdict": "identical", "paths": []}
            continue
        differs = [f"deps {d['path']}" for d, e in zip(a.get("deps", []), b.get("deps", [])) if d != e]
        differs += ["params"] if a.get("params") != b.get("params") else []
        outs_b = {o["path"]: o for o in b.get("outs", [])}
        for out in a.get("outs", []):
            other = outs_b.get(out["path"], {})
            if out.get("md5") == other.get("md5"):
                continue
            fa, fb = files_of(cache_a, out), files_of(cache_b, other)
            for rel in sorted(fa.keys() | fb.keys()):
                path = f"{out['path']}/{rel}".rstrip("/")
                if fa.get(rel) == fb.get(rel):
                    continue
                try:
                    blob_a = cache_file(cache_a, fa[rel]).read_bytes()
                    blob_b = cache_file(cache_b, fb[rel]).read_bytes()
                    if same_content(path, blob_a, blob_b):
                        continue
                except (KeyError, OSError, ValueError):
                    pass
                differs.append(path)
        # Differing deps are the upstream stages' timing files when those are the only differences.
        real = [p for p in differs if not p.startswith("deps ")]
        report[stage] = {"verdict": "differs" if real else "same results", "paths": differs}
    return report


def load_lock(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}
