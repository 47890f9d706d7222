"""Scheduled retraining and the run lock: pure parts directly, then one Prefect server per session,
a served flow that fires within seconds, and two `nlpdag run`s racing in one workspace."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT, client_env, clone_repo, run, run_env
from nlpdag.runs.lock import LockTimeout, RunLock
from flows.serve import experiment_metrics, experiment_name
from nlpdag.runs.repo import ran_stages, stage_paths, untracked_inputs


def test_stage_paths_expand_foreach_outputs():
    spec = {"stages": {
        "ingest": {"deps": ["stages/ingest.py", "data/raw"], "outs": ["data/corpus.parquet"],
                   "metrics": [{"reports/metrics/ingest.json": {"cache": False}}]},
        "w2v": {"foreach": ["cbow", "sg"], "do": {"deps": ["data/corpus.parquet", "stages/${item}.py"],
                                                  "outs": ["reports/train/word2vec_${item}.json"]}},
        "evaluate": {"deps": ["reports/train"], "outs": ["reports/x.json"]}}}
    deps, outs = stage_paths(spec)
    assert deps == ["stages/ingest.py", "data/raw", "data/corpus.parquet", "reports/train"]
    assert {"reports/train/word2vec_cbow.json", "reports/train/word2vec_sg.json", "reports/metrics/ingest.json"} <= outs


def test_stage_paths_expand_a_foreach_over_a_params_mapping():
    """neural@<key>: foreach over ${classify.models}, a mapping in params.yaml; its outputs are no user input."""
    spec = {"stages": {"neural": {"foreach": "${classify.models}", "do": {
        "deps": ["data/embeddings"], "outs": ["data/classify/neural/${key}"],
        "metrics": [{"reports/live/neural/${key}/metrics.json": {"cache": False}}]}},
        "classify": {"deps": ["data/classify/neural"], "outs": ["reports/classify"]}}}
    params = {"classify": {"models": {"a": "lstm-max@glove", "b": "gru-max@random"}}}
    deps, outs = stage_paths(spec, params)
    assert {"data/classify/neural/a", "data/classify/neural/b", "reports/live/neural/b/metrics.json"} <= outs
    assert not any("${" in o for o in outs)
    assert deps == ["data/embeddings", "data/classify/neural"]


def test_untracked_inputs_are_the_users_new_files_not_outputs(tmp_path):
    (tmp_path / "dvc.yaml").write_text(json.dumps({"stages": {
        "ingest": {"cmd": "x", "deps": ["data/raw"], "outs": ["data/corpus.parquet"]},
        "train": {"cmd": "y", "deps": ["reports/train"], "outs": ["reports/train/a.json"]}}}))
    (tmp_path / "data/raw").mkdir(parents=True)
    (tmp_path / "reports/train").mkdir(parents=True)
    (tmp_path / "data/raw/README.md").write_text("tracked")
    run(["git", "init", "-q"], tmp_path)
    run(["git", "add", "data/raw/README.md"], tmp_path)
    (tmp_path / "data/raw/new.csv").write_text("text,label\n")
    (tmp_path / "reports/train/a.json").write_text("{}")
    assert untracked_inputs(tmp_path) == ["data/raw/new.csv"]


def test_experiment_helpers():
    shown = [{"rev": "workspace", "experiments": None},
             {"rev": "a" * 40, "experiments": [{"name": "x", "revs": [
                 {"name": "scheduled-1", "data": {"metrics": {"m.json": {"data": {"acc": 1}}}}}]}]}]
    assert experiment_metrics(shown, "scheduled-1") == {"m.json": {"data": {"acc": 1}}}
    assert experiment_metrics(shown, "other") is None
    assert ran_stages("Running stage 'ingest':\n> python\nStage 'bow' didn't change\nRunning stage 'word2vec@cbow':") \
        == ["ingest", "word2vec@cbow"]
    from datetime import datetime, timezone
    assert experiment_name("nightly", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "nightly-20260102-030405"


HOLD = """import sys, time
from pathlib import Path
sys.argv = ["nlpdag", "run", "--holder-test"]
from nlpdag.runs.lock import RunLock
with RunLock(Path(%r)):
    print("held", flush=True)
    time.sleep(%s)
"""


def test_run_lock_waits_saying_for_whom_then_times_out(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD % (str(tmp_path), 2.5)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said: list[str] = []
        with pytest.raises(LockTimeout, match=rf"still held by PID {holder.pid}: nlpdag run --holder-test"):
            RunLock(tmp_path, timeout=0.5, poll=0.1, say=said.append).acquire()
        start = time.monotonic()
        with RunLock(tmp_path, timeout=30, poll=0.2, say=said.append) as lock:
            assert time.monotonic() - start > 0.5  # it waited for the holder to finish
            assert lock.holder()["pid"] == os.getpid()
        assert said[0].startswith(f"nlpdag: waiting for {tmp_path / '.nlpdag/run.lock'} (held by PID {holder.pid}")
        assert said[-1].startswith("nlpdag: got ")
        assert not (tmp_path / ".nlpdag/run.lock.json").exists()
    finally:
        holder.wait(timeout=30)


def test_bad_cron_and_missing_schedule_are_one_line(tmp_path):
    env = {**run_env(), "PREFECT_HOME": str(tmp_path / "prefect")}
    proc = run(["nlpdag", "serve", "--repo", str(ROOT), "--cron", "61 * * * *"], tmp_path, env=env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --cron '61 * * * *': not a valid cron expression (e.g. \"*/30 * * * *\")"
    proc = run(["nlpdag", "serve", "--repo", str(ROOT)], tmp_path, env=env, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: give exactly one of --cron or --interval"
    assert not (tmp_path / "prefect" / "nlpdag-server.json").exists()  # nothing was started


def test_server_start_says_why_it_cannot(tmp_path):
    import socket

    with socket.socket() as busy:  # something that listens but is no Prefect server
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**run_env(), "PREFECT_HOME": str(tmp_path / "prefect")}
        proc = run(["nlpdag", "server", "start", "--repo", str(ROOT), "--port", str(port)], tmp_path,
                   env=env, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"error: 127.0.0.1:{port} is taken by something that is not a Prefect "
                                   "server; pass --port or set PREFECT_API_URL")
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    proc = run(["nlpdag", "server", "start", "--repo", str(ROOT)], tmp_path, env=env, check=False)
    assert proc.returncode == 1 and "does not answer" in proc.stderr


# ---- against a real Prefect server ----------------------------------------------------------------

def api(url: str, path: str, body: dict) -> list | dict:
    req = urllib.request.Request(f"{url}/{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def stop_group(proc: subprocess.Popen, wait: float = 20) -> None:
    """End a process this test started and everything it started (its own session), by its PID."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers: flow-run subprocesses in the same group
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.mark.slow
def test_scheduled_run_fires_and_records_an_experiment(prefect_server, small_baseline, tmp_path):
    repo = clone_repo(small_baseline, tmp_path / "repo")
    env = client_env(prefect_server)
    url = prefect_server["url"]
    log = open(tmp_path / "serve.log", "w")
    # From another working directory: the flow must find the repository from its parameter alone.
    serve = subprocess.Popen(["nlpdag", "serve", "--interval", "5", "--repo", str(repo), "--name", "e2e"],
                             cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    start = time.monotonic()
    try:
        completed = []
        while not completed and time.monotonic() - start < 150:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(2)
            runs = api(url, "flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED",
                                                                                         "CRASHED"]}}}})
            failed = [r for r in runs if r["state_type"] != "COMPLETED"]
            assert not failed, (tmp_path / "serve.log").read_text()[-3000:]
            completed = runs
        assert completed, "no scheduled run completed in 150 s:\n" + (tmp_path / "serve.log").read_text()[-3000:]
        print(f"first scheduled run completed {time.monotonic() - start:.1f} s after `nlpdag serve` started")
    finally:
        stop_group(serve)
        log.close()
    flow_run = completed[0]
    assert flow_run["deployment_id"] and flow_run["parameters"]["repo"] == str(repo)
    exps = run(["dvc", "exp", "list", "--name-only"], repo).stdout.split()
    assert any(name.startswith("scheduled-") for name in exps), exps
    artifacts = api(url, "artifacts/filter", {"artifacts": {"key": {"any_": ["nlpdag-metrics"]},
                                                            "flow_run_id": {"any_": [flow_run["id"]]}}})
    assert artifacts and artifacts[0]["type"] == "table"
    rows = json.loads(artifacts[0]["data"]) if isinstance(artifacts[0]["data"], str) else artifacts[0]["data"]
    assert {"file": "reports/metrics/ingest.json", "metric": "docs", "value": 400} in rows
    assert run(["git", "status", "--porcelain"], repo).stdout == ""  # the workspace was never written


@pytest.mark.slow
def test_two_runs_in_one_workspace_queue_instead_of_failing(prefect_server, small_baseline, tmp_path):
    repo = clone_repo(small_baseline, tmp_path / "repo")
    from test_pipeline import set_params
    set_params(repo, {"topics": {"n_topics": 3}})  # one stale stage, so the first run has work to do
    env = client_env(prefect_server)
    first = subprocess.Popen(["nlpdag", "run"], cwd=repo, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (repo / ".nlpdag/run.lock.json").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.1)
    second = run(["nlpdag", "run"], repo, env=env, check=False)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and "ran check, topics" in out, out + err
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"nlpdag: waiting for {repo / '.nlpdag/run.lock'} (held by PID {first.pid}: nlpdag run" in second.stderr
    assert "ran none" in second.stdout and "is busy" not in second.stderr
