"""Git and DVC plumbing on a checkout, shared by the flows that run stages away from the user's
workspace (scheduled runs, sweep points, `nlpdag run --pool`): clones, the stages' paths, inputs
git does not track, and the objects of outputs that DVC's own push and pull leave behind.

No Prefect here: the flows wrap these in tasks.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from nlpdag.runs.dag import PipelineError, dvc, dvc_env

SHARED_CACHE = "NLPDAG_DVC_CACHE"
_RAN = re.compile(r"^Running stage '([^']+)'")
_RESTORED = re.compile(r"^Stage '([^']+)' is cached - skipping run")


def git(cwd: Path, *args: str) -> str:
    """`git <args>` in `cwd`; stdout, or PipelineError with git's last line."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=dvc_env())
    if proc.returncode != 0:
        lines = [l for l in (proc.stderr + proc.stdout).splitlines() if l.strip()]
        raise PipelineError(f"git {' '.join(args)}: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def clone(repo_url: str, rev: str, dest: Path) -> Path:
    """A fresh clone of `repo_url` checked out at `rev` (detached); `dest` is emptied first, so a
    retry starts clean. Outputs are not pulled: each caller pulls what it needs. With
    $NLPDAG_DVC_CACHE set (a worker machine's setting), the clone's DVC cache is that folder, shared
    by every clone on the machine: an input is downloaded once per machine, not once per flow run
    (DVC writes cache objects atomically, so flow runs at once may share it)."""
    import shutil

    shutil.rmtree(dest, ignore_errors=True)
    git(dest.parent, "clone", "--quiet", "--no-checkout", repo_url, str(dest))
    git(dest, "checkout", "--quiet", "--detach", rev)
    if not has_identity(dest):
        # `dvc exp run` commits the experiment; a worker account may have no git identity.
        git(dest, "config", "user.name", "nlpdag worker")
        git(dest, "config", "user.email", "nlpdag-worker@localhost")
    if cache := os.environ.get(SHARED_CACHE):
        dvc(dest, "cache", "dir", "--local", str(Path(cache).expanduser().resolve()))
    return dest


def has_identity(repo: Path) -> bool:
    proc = subprocess.run(["git", "config", "user.email"], cwd=repo, capture_output=True, text=True)
    return proc.returncode == 0 and bool(proc.stdout.strip())


def ran_stages(dvc_output: str) -> list[str]:
    """The stages a `dvc repro`/`dvc exp run` output says it ran (computed, not restored)."""
    return [m[1] for line in dvc_output.splitlines() if (m := _RAN.match(line.strip()))]


def restored_stages(dvc_output: str) -> list[str]:
    """The stages it restored from the run cache instead of running them."""
    return [m[1] for line in dvc_output.splitlines() if (m := _RESTORED.match(line.strip()))]


# ---- the stages' paths ---------------------------------------------------------------------------

def stage_paths(dvc_yaml: dict, params: dict | None = None) -> tuple[list[str], set[str]]:
    """(every dependency, every output) of the stages, foreach templates expanded for outputs: a list's
    items (`${item}`), a mapping's keys (`${key}`), or a `${group.key}` of `params` (params.yaml) that
    holds either."""
    outs: set[str] = set()
    deps: list[str] = []
    for stage in (dvc_yaml.get("stages") or {}).values():
        body = stage.get("do", stage)
        items = foreach_items(stage.get("foreach"), params or {})
        for out in [*body.get("outs", []), *body.get("metrics", []), *body.get("plots", [])]:
            out = (out if isinstance(out, str) else next(iter(out))).rstrip("/")
            outs.update(out if key is None else out.replace("${item}", str(item)).replace("${key}", str(key))
                        for key, item in items)
        # Templated deps (${item}) are foreach stages' own inputs, never the user's data.
        deps += [d.rstrip("/") for d in body.get("deps", []) if "${" not in d and d.rstrip("/") not in deps]
    return deps, outs


def foreach_items(foreach, params: dict) -> list[tuple]:
    """(key, item) pairs of a stage's foreach; [(None, None)] for a plain stage."""
    if foreach is None:
        return [(None, None)]
    if isinstance(foreach, str) and (m := re.fullmatch(r"\$\{\s*([\w.-]+)\s*\}", foreach)):
        for part in m.group(1).split("."):
            params = params.get(part) if isinstance(params, dict) else None
        foreach = params or []
    if isinstance(foreach, dict):
        return list(foreach.items())
    return [(item, item) for item in foreach]


def is_output(path: str, outs: set[str]) -> bool:
    return any(path == o or path.startswith(o + "/") for o in outs)


def user_inputs(root: Path) -> tuple[list[str], set[str]]:
    """(the stages' dependencies that no stage writes and that exist here: code, params, the corpus;
    every output), from root's dvc.yaml and params.yaml."""
    params = yaml.safe_load((root / "params.yaml").read_text()) if (root / "params.yaml").is_file() else {}
    deps, outs = stage_paths(yaml.safe_load((root / "dvc.yaml").read_text()), params)
    return [d for d in deps if not is_output(d, outs) and (root / d).exists()], outs


def untracked_inputs(root: Path) -> list[str]:
    """Files under the stages' dependencies that git does not track and no stage writes (a new
    corpus dropped in `data/raw`).

    A copy made from git (`dvc exp run --temp`, a worker's clone) lacks them; measured: a new
    untracked file under `data/raw` is otherwise invisible to the experiment (ingest "didn't change")."""
    deps, outs = user_inputs(root)
    if not deps:
        return []
    out = subprocess.run(["git", "ls-files", "--others", "-z", "--", *deps], cwd=root,
                         capture_output=True, text=True)
    return sorted(n for n in out.stdout.split("\0")
                  if n and not is_output(n, outs) and "__pycache__" not in n and not n.endswith(".pyc"))


# ---- objects DVC's push and pull leave behind ----------------------------------------------------

def run_cache_outputs(repo: Path) -> set[str]:
    """md5s of the file outputs recorded in the local run cache (`.dvc/cache/runs/*/*/*`)."""
    md5s = set()
    for entry in (repo / ".dvc/cache/runs").glob("*/*/*"):
        try:
            outs = (yaml.safe_load(entry.read_text()) or {}).get("outs") or []
        except (OSError, yaml.YAMLError):
            continue
        md5s.update(o["md5"] for o in outs if isinstance(o.get("md5"), str) and not o["md5"].endswith(".dir"))
    return md5s


def lock_outputs(entries: dict[str, dict]) -> set[str]:
    """md5s (files and `.dir` trees) of every output of some dvc.lock stage entries."""
    return {o["md5"] for entry in entries.values() for o in entry.get("outs") or [] if isinstance(o.get("md5"), str)}


def sync_objects(repo: Path, direction: str, md5s: set[str]) -> int:
    """Push or pull (`direction`) the cache objects `md5s` between `repo`'s cache and its default DVC
    remote, those missing on the other side; a `.dir` tree brings its files. Returns the count moved.

    Measured with DVC 3.67: `dvc push --run-cache` pushes the run cache's entries but not the objects
    of `cache: false` outputs (the metrics files, DVCLive's plots, classify's confusion tables), and
    a stage restores from the run cache, on another machine, only when all its outputs' objects are
    there; DVC commits those objects to the local cache when it saves the run-cache entry.

    DVC's Python API, in a process of its own: callers may be threads of a flow that runs other
    DVC commands meanwhile. `-P`: this installed package, not the `nlpdag/` of a clone in the working
    directory (a worker's clone holds the code of the commit it runs, which may predate this module)."""
    if not md5s:
        return 0
    proc = subprocess.run([sys.executable, "-P", "-m", "nlpdag.runs.repo", direction, str(repo)],
                          input="\n".join(sorted(md5s)), capture_output=True, text=True, env=dvc_env())
    if proc.returncode != 0:
        lines = [l for l in (proc.stderr + proc.stdout).splitlines() if l.strip()]
        raise PipelineError(f"{direction} of {len(md5s)} output objects: {lines[-1] if lines else 'failed'}")
    return int(proc.stdout.strip() or 0)


def sync_uncached_outputs(repo: Path, direction: str) -> int:
    """`sync_objects` for every file output the local run cache records (a sweep point's clone)."""
    return sync_objects(repo, direction, run_cache_outputs(repo))


def _transfer(repo: Path, direction: str, md5s: set[str]) -> int:
    import json

    from dvc.repo import Repo
    from dvc_data.hashfile.hash_info import HashInfo

    # An object the source side lacks (an entry from before this sync existed) only makes its entry
    # unrestorable, which is no error: DVC warns about each; keep that quiet.
    logging.getLogger("dvc.data_cloud").setLevel(logging.ERROR)
    with Repo(str(repo)) as dvc_repo:
        odb, cloud = dvc_repo.cache.local, dvc_repo.cloud

        def move(wanted: set[str]) -> int:
            objs = {HashInfo("md5", m) for m in wanted if odb.exists(m) == (direction == "push")}
            if not objs:
                return 0
            return len((cloud.push(objs) if direction == "push" else cloud.pull(objs)).transferred)

        def files_of(tree: str) -> set[str]:
            # Measured: DVC moves a `.dir` object without the files it lists.
            try:
                return {f["md5"] for f in json.loads(Path(odb.oid_to_path(tree)).read_text())}
            except (OSError, ValueError):
                return set()

        trees = {m for m in md5s if m.endswith(".dir")}
        moved = move(trees) if direction == "pull" else 0  # a tree first: its list names the files
        return moved + move((md5s - trees) | {f for t in trees for f in files_of(t)}) + \
            (move(trees) if direction == "push" else 0)  # a tree last: never one without its files


if __name__ == "__main__":  # python -m nlpdag.runs.repo push|pull REPO < md5s (sync_objects)
    print(_transfer(Path(sys.argv[2]), sys.argv[1], set(sys.stdin.read().split())))
