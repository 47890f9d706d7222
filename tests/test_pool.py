"""`nlpdag run --pool`: the preflight, the coordinator's helpers, and a run whose stages go to two
Prefect workers, on 127.0.0.1 only.

The end-to-end test builds the distributed setup locally, as tests/test_sweep.py does: a Prefect
server on a free port with a temporary home, a bare git repository as the git remote, a folder as
the DVC remote, two `nlpdag worker` processes. Every process it starts is stopped by its PID.
"""
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import clone_repo, copy_repo, run
from nlpdag.runs.remote import read_lock, upstream_closure
from nlpdag.runs.repo import lock_outputs
from test_sweep import add_remotes, api, online, shared_remotes, start_server, start_worker, stop_tree, until


def test_upstream_closure_and_lock_entries(tmp_path):
    upstream = {"check": [], "ingest": ["check"], "tokenise": ["ingest"], "bow": ["tokenise"],
                "topics": ["bow", "ingest"], "report": ["topics"]}
    assert upstream_closure(upstream, "topics") == {"bow", "tokenise", "ingest", "check"}
    assert upstream_closure(upstream, "check") == set()
    lock = {"schema": "2.0", "stages": {
        "check": {"cmd": "x", "outs": [{"path": "data/checked.txt", "md5": "1" * 32}]},
        "bow": {"cmd": "y", "outs": [{"path": "data/bow", "md5": "2" * 32 + ".dir"},
                                     {"path": "reports/scores/bow.json", "md5": "3" * 32}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert read_lock(tmp_path, {"bow"}) == {"bow": lock["stages"]["bow"]}
    # a tree travels with its name: its files are found from its listing when it moves
    assert lock_outputs(read_lock(tmp_path)) == {"1" * 32, "2" * 32 + ".dir", "3" * 32}
    from nlpdag.runs.dag import PipelineError

    with pytest.raises(PipelineError, match="dvc.lock has no entry for upstream stage topics: run it first"):
        read_lock(tmp_path, {"bow", "topics"}, tries=2)


def test_preflight_refuses_what_workers_would_not_see(tmp_path):
    """Uncommitted code or an untracked corpus file: one line each, before any server is asked."""
    from nlpdag.runs.pool import PreflightError
    from flows.stage import stage_run
    from nlpdag.runs.remote import prepare_pool

    repo = copy_repo(tmp_path / "repo")
    add_remotes(repo, tmp_path)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "project"], repo)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], repo)
    with open(repo / "stages/topics.py", "a") as f:
        f.write("# changed\n")
    with pytest.raises(PreflightError, match=r"^uncommitted changes to stages/topics.py: workers run commit "):
        prepare_pool(repo, "nlpdag", stage_run)
    run(["git", "checkout", "stages/topics.py"], repo)
    (repo / "data/raw/mine.tsv").write_text("text\tlabel\n")
    with pytest.raises(PreflightError) as err:
        prepare_pool(repo, "nlpdag", stage_run)
    assert str(err.value) == ("data/raw/mine.tsv is not in git, so workers would not see it: git add (or dvc add) it, "
                              "commit and push")
    (repo / "data/raw/mine.tsv").unlink()
    with pytest.raises(PreflightError, match=r"^--send neural-\*: no stage matches \(bow, check, "):
        prepare_pool(repo, "nlpdag", stage_run, send=["neural@*", "neural-*"])
    from nlpdag.runs.remote import sent

    assert [sent({"send": ["neural@*", "glove"]}, s) for s in ("neural@a", "glove", "report")] == [True, True, False]
    assert sent({}, "report")  # default: every stage


# ---- end to end: a Prefect server, two workers, a bare git remote and a folder as DVC remote ---------

def lock_stages(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())["stages"]


@pytest.mark.slow
def test_run_on_two_workers_matches_a_local_run(small_baseline, tmp_path):
    from nlpdag.runs.lockdiff import compare_locks, load_lock
    from nlpdag.runs.server import stop_pid
    from test_pipeline import set_params

    user, remote, work = shared_remotes(small_baseline, tmp_path)
    # Two independent stale stages (topics, tsne) between `check` and `report`: two at once, one per worker
    # (t-SNE on one thread: both workers share this machine's two cores).
    set_params(user, {"topics": {"n_topics": 3}, "tsne": {"perplexity": 5.0, "n_jobs": 1}})
    run(["git", "commit", "-qam", "a shared DVC remote; 3 topics; t-SNE perplexity 5 on one thread"], user)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], user)
    # Nothing pushed to the DVC remote by hand: the coordinator pushes what workers need.

    started = time.monotonic()
    # The workers share one DVC cache (one machine here), as NLPDAG_DVC_CACHE lets a real worker machine do.
    env, server_pid = start_server(user, tmp_path, NLPDAG_DVC_CACHE=str(tmp_path / "workercache"))
    url = env["PREFECT_API_URL"]
    workers: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    tails = lambda: "\n".join(f"--- {n}\n{l.read_text()[-3000:]}" for n, l in logs.items() if l.exists())
    # `check` takes a second: it stays here, the others go to the workers.
    pool_run = ["nlpdag", "run", "--pool", "nlpdag", "--jobs", "2", "--send", "t*", "--send", "report"]
    try:
        # No worker yet: one line, exit 2, nothing submitted.
        proc = run(pool_run, user, env=env, check=False)
        assert (proc.returncode, proc.stderr.strip()) == (
            2, f"error: no worker is polling work pool nlpdag at {url}: start one with `nlpdag worker --pool nlpdag`")

        for name in ("w1", "w2"):
            workers[name] = start_worker(name, tmp_path, env, logs)
        until(lambda: len(online(url)) == 2, 120, "two workers online", on_fail=tails)
        print(f"server and two workers up in {time.monotonic() - started:.1f} s")

        begun = time.monotonic()
        proc = run(pool_run, user, env=env, check=False)
        print(f"nlpdag run --pool: {time.monotonic() - begun:.1f} s")
        assert proc.returncode == 0, proc.stdout + proc.stderr + tails()
        # Where each stage's time went: the coordinator's side, then the worker's.
        print("\n".join(line.split(" - ", 1)[-1] for line in proc.stderr.splitlines() if "pushed its inputs" in line))
        print("\n".join(line.split(" - ", 1)[-1] for log in logs.values() for line in log.read_text().splitlines()
                        if ": clone " in line))
        ran = re.search(r"stages, ran (.+?)(?:, restored .*)? in [\d.]+ s", proc.stdout)
        assert ran and sorted(ran[1].split(", ")) == ["check", "report", "topics", "tsne"], proc.stdout

        # Each stale stage sent was one flow run of the stage deployment, run by a worker; the two
        # independent ones ran at once, one on each worker.
        runs = [r for r in api(url, "flow_runs/filter") if r["deployment_id"]]
        assert sorted(r["name"] for r in runs) == ["report", "topics", "tsne"], runs
        assert {r["state_type"] for r in runs} == {"COMPLETED"}
        # A flow run's own log lines go to the log of the worker that ran it (two workers may both try to
        # take a run; the server lets one have it).
        by_worker = {name: {r["name"] for r in runs if f"Flow run '{r['name']}' - Finished in state Completed" in text}
                     for name, text in ((n, l.read_text()) for n, l in logs.items())}
        assert sorted(by_worker["w1"] | by_worker["w2"]) == ["report", "topics", "tsne"], by_worker
        assert not by_worker["w1"] & by_worker["w2"] and all(by_worker.values()), by_worker
        rows = {r["name"]: r for r in runs}
        assert rows["topics"]["start_time"] < rows["tsne"]["end_time"] and \
            rows["tsne"]["start_time"] < rows["topics"]["end_time"], "topics and tsne did not overlap"
        # On the workers, every upstream stage came from the DVC remote: none recomputed.
        arts = api(url, "artifacts/filter", {"artifacts": {"key": {"any_": ["nlpdag-stage"]}}})
        done = {row["stage"]: row for a in arts for row in (json.loads(a["data"]) if isinstance(a["data"], str)
                                                             else a["data"])}
        assert {s: (r["outcome"], r["upstream_ran"]) for s, r in done.items()} == {
            s: ("ran", []) for s in ("topics", "tsne", "report")}, done
        assert list(work.iterdir()) == []  # every clone removed; the inputs they pulled stay in the shared cache
        assert any((tmp_path / "workercache/files/md5").iterdir())

        # The coordinator restored each stage from the run cache: clean, and a second run sends nothing.
        assert run(["dvc", "status", "--json"], user).stdout.strip() in ("{}", "")
        before = lock_stages(user)
        again = run(pool_run, user, env=env)
        assert "ran none" in again.stdout, again.stdout
        assert len([r for r in api(url, "flow_runs/filter") if r["deployment_id"]]) == 3
        assert lock_stages(user) == before

        # The same dvc.lock as a local `dvc repro` of the same commit in another clone.
        local = clone_repo(small_baseline, tmp_path / "local")
        run(["git", "fetch", "-q", str(remote), "main"], local)
        run(["git", "checkout", "-q", "FETCH_HEAD"], local)
        run(["dvc", "repro"], local)
        same = compare_locks(load_lock(local / "dvc.lock"), load_lock(user / "dvc.lock"), local / ".dvc/cache",
                             user / ".dvc/cache")
        print("dvc.lock against a local dvc repro:", {s: v["verdict"] for s, v in sorted(same.items())})
        # Identical entries, or outputs that differ only in the wall-clock figures stages record (lockdiff.py).
        assert {s: v for s, v in same.items() if v["verdict"] not in ("identical", "same results")} == {}
        assert list(lock_stages(local)) == list(lock_stages(user))
        assert {s for s, v in same.items() if v["verdict"] != "identical"} <= {"report", "topics", "tsne"}

        # A stage's own error on a worker ends the run as a local one does: its one line, exit code 2.
        set_params(user, {"topics": {"device": "cuda"}})  # passes `check`; no CUDA here
        run(["git", "commit", "-qam", "topics on CUDA"], user)
        run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], user)
        proc = run(pool_run, user, env=env, check=False)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1, proc.stdout + proc.stderr
        assert errors[0].startswith("error: topics.device=cuda but CUDA is not available on this machine "
                                    "(set topics.device to auto or cpu)"), errors
        assert "topics" in json.loads(run(["dvc", "status", "--json"], user).stdout)
    finally:
        for proc in workers.values():
            stop_tree(proc)
        stop_pid(server_pid)
