from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_frame() -> pd.DataFrame:
    """A raw corpus as `read_corpus` (tests/oracles.py) returns it: 2 labels x 2 sources, 10 documents each."""
    rows = []
    for source in ("imdb", "rotten_tomatoes"):
        for label in (0, 1):
            word = "great" if label else "awful"
            for k in range(10):
                rows.append((f"{source} review {k} was {word} {word} film number {k}", label, source))
    frame = pd.DataFrame(rows, columns=["text", "label", "source"])
    frame.insert(0, "doc_id", range(len(frame)))
    return frame


@pytest.fixture
def one_thread():
    """Tiny models: one thread, as the stages run them (threads only add synchronisation, which on a
    busy machine can cost seconds)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_classifier_stages(root: Path, log=lambda *_: None) -> dict:
    """Every `neural@<key>` stage of root/params.yaml's classify.models, then the `classify` join, in
    process (the caller has made `root` the working directory: the stages read and write relative
    paths); the join's summary."""
    import stages.classify
    import stages.neural
    from nlpdag.config.params import load_params

    assert Path.cwd().resolve() == Path(root).resolve(), f"chdir to {root} first"
    params = load_params(Path(root) / "params.yaml")
    for key in params.classify.models:
        stages.neural.run(params, key, log=log)
    return stages.classify.run(params, log=log)


def run_env() -> dict[str, str]:
    """Environment for DVC/nlpdag subprocesses: this venv first on PATH, analytics off."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("PREFECT_API_URL", None)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=kw.pop("env", run_env()), capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_repo(dest: Path) -> Path:
    """A fresh git+DVC repository holding this checkout's tracked files (outputs and cache excluded)."""
    def ls(*args: str) -> list[str]:
        out = subprocess.run(["git", "ls-files", "-z", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return [n for n in out.stdout.split("\0") if n]

    # Untracked code is copied (work in progress), untracked data and reports are not (outputs being written).
    untracked = [n for n in ls("--others", "--exclude-standard") if not n.startswith(("data/", "reports/"))]
    for name in ls("--cached") + untracked:
        src = ROOT / name
        if src.is_file() and not name.startswith(("reports/", "dvc.lock")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    run(["git", "init", "-q"], dest)
    run(["git", "config", "user.email", "test@example.com"], dest)
    run(["git", "config", "user.name", "test"], dest)
    return dest


def clone_repo(src: Path, dest: Path) -> Path:
    """A copy of a built test repository (git, DVC cache and outputs), to change without touching it."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


@pytest.fixture(scope="session")
def small_baseline(tmp_path_factory) -> Path:
    """A repository with test_pipeline's SMALL parameters, run once and committed (outputs in the
    DVC cache). Shared by the whole session: `clone_repo` it before running anything in it."""
    from test_pipeline import SMALL, set_params

    repo = copy_repo(tmp_path_factory.mktemp("small_baseline"))
    set_params(repo, SMALL)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "small sample"], repo)
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline run"], repo)
    return repo


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One Prefect server for the session: a free port, a temporary PREFECT_HOME, stopped by PID."""
    import json
    import time

    from nlpdag.runs.server import free_port, stop_pid

    home = tmp_path_factory.mktemp("prefect_home")
    env = {**run_env(), "PREFECT_HOME": str(home)}
    start = time.monotonic()
    proc = run(["nlpdag", "server", "start", "--repo", str(ROOT), "--port", str(free_port())], ROOT, env=env)
    url = proc.stdout.strip()
    info = json.loads((home / "nlpdag-server.json").read_text())
    print(f"prefect server up in {time.monotonic() - start:.1f} s at {url}")
    yield {"url": url, "home": home}
    stop_pid(info["pid"])


def client_env(server: dict) -> dict[str, str]:
    return {**run_env(), "PREFECT_HOME": str(server["home"]), "PREFECT_API_URL": server["url"],
            "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
