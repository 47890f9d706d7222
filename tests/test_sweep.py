"""`nlpdag sweep`: grids, preflight errors, and a 2x2 sweep on two Prefect workers, on 127.0.0.1 only.

The end-to-end test builds the whole distributed setup locally: a Prefect server on a free port
with a temporary home, a bare git repository as the git remote, a folder as the DVC remote, two
`nlpdag worker` processes; one of them is stopped (SIGTERM) mid-run and its point is rescheduled
and run by the other; then the other is killed (SIGKILL) mid-run, its point is marked CRASHED, and
`nlpdag resubmit` has a third worker run it. Every process it starts is stopped by its PID at the end.
"""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, client_env, clone_repo, copy_repo, run, run_env
from nlpdag.runs.grid import (GridError, grid_points, load_grid_file, parse_set_options, set_args, split_values,
                        validate_points)
from nlpdag.runs.submit import point_names

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def test_set_options_parse_like_dvc_and_product_in_order():
    grid = parse_set_options(["topics.n_topics=3,4", "reduce.reducers=[pca,ae],[vae]", "bow.C=0.5"])
    assert grid == {"topics.n_topics": [3, 4], "reduce.reducers": [["pca", "ae"], ["vae"]], "bow.C": [0.5]}
    points = grid_points(grid)
    assert [p["topics.n_topics"] for p in points] == [3, 3, 4, 4]  # the first key varies slowest
    assert set_args(points[0]) == ["-S", "topics.n_topics=3", "-S", "reduce.reducers=[pca, ae]", "-S", "bow.C=0.5"]
    assert split_values("a, [b,c] ,{d: 1, e: 2}") == ["a", "[b,c]", "{d: 1, e: 2}"]
    assert point_names("sweep-x", 2) == ["sweep-x-01", "sweep-x-02"]
    validate_points(PARAMS, points)


def test_grid_file_nested_or_dotted(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("topics:\n  n_topics: [3, 4]\nreport.neighbours_shown: 5\n")
    assert load_grid_file(path) == {"topics.n_topics": [3, 4], "report.neighbours_shown": [5]}
    with pytest.raises(GridError, match="grid file not found"):
        load_grid_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize("option, message", [
    ("bow.D=1", "sweep grid: bow.D: unknown key; allowed: ngram_max, min_df, sublinear_tf, C"),
    ("bo.C=1", "bo.C: unknown key (bo is not a parameter group)"),
    ("bow.C=1,-1", "sweep grid: bow.C: every value must be > 0 (got -1)"),
    ("bow.C", "-S 'bow.C': expected key=value[,value...]"),
])
def test_bad_grid_is_one_line(option, message):
    with pytest.raises(GridError) as err:
        validate_points(PARAMS, grid_points(parse_set_options([option])))
    assert str(err.value) == message


def test_default_dvc_remote_and_targets():
    from nlpdag.runs.pool import PreflightError, default_dvc_remote
    from nlpdag.runs.submit import check_targets

    config = "[core]\n    remote = shared\n['remote \"shared\"']\n    url = /tmp/store\n"
    assert default_dvc_remote(config) == "shared"
    assert default_dvc_remote("[core]\n    autostage = true\n") is None
    assert default_dvc_remote("[core]\n    remote = gone\n") is None  # named, never defined
    spec = {"stages": {"topics": {}, "word2vec": {"foreach": ["cbow"]}}}
    check_targets(spec, ["topics", "word2vec@cbow"])
    with pytest.raises(PreflightError, match="--target topic: no such stage in dvc.yaml"):
        check_targets(spec, ["topic"])


def test_run_cache_outputs_lists_file_objects(tmp_path):
    from nlpdag.runs.repo import run_cache_outputs

    entry = tmp_path / ".dvc/cache/runs/ab/abcd/ef01"
    entry.parent.mkdir(parents=True)
    entry.write_text(yaml.safe_dump({"cmd": "x", "outs": [
        {"path": "data/topics.parquet", "hash": "md5", "md5": "1" * 32},
        {"path": "data/bow", "hash": "md5", "md5": "2" * 32 + ".dir"},  # a directory: pushed by DVC itself
        {"path": "reports/metrics/topics.json", "hash": "md5", "md5": "3" * 32}]}))
    assert run_cache_outputs(tmp_path) == {"1" * 32, "3" * 32}


# ---- the command line, before any server is involved -------------------------------------------

@pytest.fixture(scope="module")
def pushed_repo(tmp_path_factory) -> dict:
    """A committed copy of the project (no outputs) pushed to a bare git remote, with a DVC remote."""
    base = tmp_path_factory.mktemp("pushed")
    repo = copy_repo(base / "repo")
    add_remotes(repo, base)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "project"], repo)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], repo)
    run(["git", "fetch", "-q", "origin"], repo)
    return {"repo": repo, "remote": base / "remote.git"}


def sweep_cli(repo: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run(["nlpdag", "sweep", "--repo", str(repo), *args], repo, env=env or run_env(), check=False)


def remote_refs(remote: Path) -> str:
    return run(["git", "for-each-ref"], remote).stdout


def test_unknown_grid_key_exits_2_before_anything(pushed_repo, tmp_path):
    env = {**run_env(), "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # never reached
    proc = sweep_cli(pushed_repo["repo"], "-S", "topics.n_topic=3,4", env=env)
    assert proc.returncode == 2
    from nlpdag.config.topics import TopicsParams
    assert proc.stderr.strip() == ("error: sweep grid: topics.n_topic: unknown key; allowed: "
                                   + ", ".join(TopicsParams.model_fields))
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = sweep_cli(pushed_repo["repo"], env=env)
    assert (proc.returncode, proc.stderr.strip()) == (2, "error: nothing to sweep: give -S key=v1,v2 or --grid FILE")


def test_missing_dvc_remote_or_unpushed_commit_is_one_line(pushed_repo, tmp_path):
    repo = clone_repo(pushed_repo["repo"], tmp_path / "repo")
    env = {**run_env(), "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    run(["dvc", "remote", "remove", "shared"], repo)
    run(["git", "commit", "-qam", "no DVC remote"], repo)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/nodvc"], repo)
    proc = sweep_cli(repo, "-S", "topics.n_topics=3,4", env=env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: no default DVC remote in .dvc/config"), proc.stderr
    run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "store")], repo)
    run(["git", "commit", "-qam", "a DVC remote, not pushed"], repo)
    proc = sweep_cli(repo, "-S", "topics.n_topics=3,4", env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("is not on git remote origin: git push origin first"), proc.stderr
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/nodvc"], repo)
    proc = sweep_cli(repo, "-S", "topics.n_topics=3,4", env=env)  # now only the server is missing
    assert (proc.returncode, proc.stderr.strip()) == (
        2, "error: no Prefect server answers at http://127.0.0.1:9/api (is it running? is PREFECT_API_URL right?)")
    assert "sweep-" not in remote_refs(pushed_repo["remote"])


def test_worker_needs_a_server_and_children_are_read_from_proc(tmp_path):
    env = {**run_env(), "PREFECT_API_URL": "http://127.0.0.1:9/api", "PREFECT_HOME": str(tmp_path)}
    proc = run(["nlpdag", "worker", "--repo", str(ROOT)], tmp_path, env=env, check=False)
    assert (proc.returncode, proc.stderr.strip()) == (
        2, "error: no Prefect server answers at http://127.0.0.1:9/api (is it running? is PREFECT_API_URL right?)")
    from nlpdag.runs.worker import alive, children

    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in children(os.getpid()) and alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not alive(child.pid)


# ---- a point whose worker died without a word: CRASHED by the automation, then resubmitted ------------

def heartbeat(url: str, flow_run_id: str, deployment_id) -> None:
    """What a flow run's engine emits every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds."""
    from datetime import datetime, timezone
    from uuid import uuid4

    event = {"id": str(uuid4()), "occurred": datetime.now(timezone.utc).isoformat(),
             "event": "prefect.flow-run.heartbeat",
             "resource": {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}"},
             "related": [{"prefect.resource.id": f"prefect.deployment.{deployment_id}",
                          "prefect.resource.role": "deployment"}]}
    req = urllib.request.Request(f"{url}/events", data=json.dumps([event]).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()


@pytest.mark.slow  # ~30 s: the session's Prefect server, the automation's silence, two CLI calls
def test_silent_point_is_crashed_and_resubmitted(prefect_server, tmp_path):
    """Two RUNNING points send heartbeats; one goes silent (its worker SIGKILLed, say): the automation
    `nlpdag sweep` installs marks it CRASHED, the other stays RUNNING, and `nlpdag resubmit` puts the
    crashed one back in the pool. The heartbeats are sent by hand, so the silence can be 12 s (Prefect's floor is 10)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Running

    from flows.sweep import sweep_point
    from nlpdag.runs import pool
    from nlpdag.runs import submit as sub

    url = prefect_server["url"]
    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        pool.ensure_pool(client, pool.POOL)
        deployment = sub.ensure_sweep_deployment(client, sweep_point, pool.POOL, heartbeat=30)
        env = client.read_deployment(deployment).job_variables["env"]
        assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
        for _ in range(2):  # idempotent: one automation per server
            pool.ensure_unresponsive_automation(client, sub.UNRESPONSIVE, deployment, 4, "a sweep point")
        assert len(client.read_automations_by_name(sub.UNRESPONSIVE)) == 1
        target = pool.Target("file:///nowhere.git", "0" * 40, "shared")
        silent, beating = sub.submit(client, deployment, target, "sweep-crash", [{"topics.n_topics": 2},
                                                                                  {"topics.n_topics": 3}], [])
        for point in (silent, beating):
            client.set_flow_run_state(UUID(point.flow_run_id), Running(), force=True)
            heartbeat(url, point.flow_run_id, deployment)
        state = lambda point: client.read_flow_run(UUID(point.flow_run_id)).state
        deadline = time.monotonic() + 60
        while state(silent).type.value != "CRASHED":
            assert time.monotonic() < deadline, f"silent point still {state(silent).type.value} after 60 s"
            heartbeat(url, beating.flow_run_id, deployment)
            time.sleep(1)
        assert "no heartbeat for 12 s" in state(silent).message
        assert state(beating).type.value == "RUNNING"

    env = {**client_env(prefect_server)}
    proc = run(["nlpdag", "resubmit", "--repo", str(ROOT), "sweep-crash"], tmp_path, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["sweep-crash-01", "SCHEDULED"], proc.stdout
    with temporary_settings({PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        assert state(silent).type.value == "SCHEDULED" and state(silent).name == "Resubmitted"
        client.set_flow_run_state(UUID(beating.flow_run_id), sub_cancelled(), force=True)
        client.set_flow_run_state(UUID(silent.flow_run_id), sub_cancelled(), force=True)  # no worker takes them
    proc = run(["nlpdag", "resubmit", "--repo", str(ROOT)], tmp_path, env=env, check=False)
    assert (proc.returncode, proc.stderr.strip()) == (1, "error: no crashed sweep point on this server")


def sub_cancelled():
    from prefect.states import Cancelled

    return Cancelled()


# ---- end to end: a Prefect server, two workers, a bare git remote and a folder as DVC remote ---------

def api(url: str, path: str, body: dict | None = None):
    req = urllib.request.Request(f"{url}/{path}", data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def flow_runs(url: str) -> dict[str, dict]:
    return {r["name"]: r for r in api(url, "flow_runs/filter")}


def online(url: str) -> list[str]:
    try:
        workers = api(url, "work_pools/nlpdag/workers/filter")
    except urllib.error.HTTPError:  # the pool does not exist yet
        return []
    return [w["name"] for w in workers if w["status"] == "ONLINE"]


def until(predicate, timeout: float, what: str, poll: float = 1.0, on_fail=lambda: ""):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s\n{on_fail()}"
        time.sleep(poll)
    return value


def descendants(pid: int) -> list[int]:
    from nlpdag.runs.worker import children

    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_tree(proc: subprocess.Popen) -> None:
    """End a process this test started and every process below it (engines run in their own
    sessions), by their PIDs."""
    pids = [proc.pid, *descendants(proc.pid)] if proc.poll() is None else descendants(proc.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


def add_remotes(repo: Path, base: Path) -> Path:
    """Give `repo` a bare git remote `origin` (base/remote.git, returned) and a folder as its default DVC
    remote `shared` (base/dvcstore); nothing committed or pushed."""
    remote = base / "remote.git"
    run(["git", "init", "-q", "--bare", str(remote)], base)
    run(["git", "remote", "add", "origin", str(remote)], repo)
    run(["dvc", "remote", "add", "-d", "shared", str(base / "dvcstore")], repo)
    return remote


def shared_remotes(baseline: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A user's clone of `baseline` with both remotes (add_remotes), and the empty folder the workers
    clone into. Returns (user, remote, work)."""
    user = clone_repo(baseline, tmp_path / "user")
    (work := tmp_path / "work").mkdir()
    return user, add_remotes(user, tmp_path), work


def start_server(user: Path, tmp_path: Path, **env_extra: str) -> tuple[dict, int]:
    """A Prefect server for `user` on a free port of 127.0.0.1. Returns the environment workers and commands
    use (PREFECT_API_URL set; workers poll every 2 s and clone into tmp_path/work) and the server's PID."""
    from nlpdag.runs.server import free_port

    home = tmp_path / "prefect"
    env = {**run_env(), "PREFECT_HOME": str(home), "NLPDAG_SWEEP_TMP": str(tmp_path / "work"),
           "PREFECT_WORKER_QUERY_SECONDS": "2", **env_extra}
    url = run(["nlpdag", "server", "start", "--repo", str(user), "--port", str(free_port())], user, env=env).stdout.strip()
    env["PREFECT_API_URL"] = url
    return env, json.loads((home / "nlpdag-server.json").read_text())["pid"]


def start_worker(name: str, tmp_path: Path, env: dict, logs: dict[str, Path]) -> subprocess.Popen:
    """`nlpdag worker --name <name>` in its own session (stop_tree ends it), logging to tmp_path/<name>.log."""
    logs[name] = tmp_path / f"{name}.log"
    return subprocess.Popen(["nlpdag", "worker", "--name", name], cwd=tmp_path, env=env,
                            stdout=logs[name].open("w"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.slow
def test_sweep_on_workers_one_stopped_one_killed(small_baseline, tmp_path):
    from nlpdag.runs.server import stop_pid

    user, remote, work = shared_remotes(small_baseline, tmp_path)
    run(["git", "commit", "-qam", "shared DVC remote"], user)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], user)
    run(["dvc", "push", "-q", "--run-cache"], user)  # the baseline's outputs: workers pull, never recompute

    started = time.monotonic()
    # Prefect's floor: a silent point is CRASHED after 90 s
    env, server_pid = start_server(user, tmp_path, NLPDAG_SWEEP_HEARTBEAT="30")
    url = env["PREFECT_API_URL"]
    workers: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    # Only up to `topics` (cheap); (4, 10) is the baseline's own point: restored, not recomputed.
    grid = ["-S", "topics.n_topics=2,4", "-S", "topics.top_words=5,10", "--target", "topics"]
    try:
        # No worker yet: one line, exit 2, and nothing submitted.
        proc = run(["nlpdag", "sweep", *grid], user, env=env, check=False)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith(f"error: no worker is polling work pool nlpdag at {url}: start one with")
        assert api(url, "flow_runs/filter") == []

        for name in ("w1", "w2"):
            workers[name] = start_worker(name, tmp_path, env, logs)
        tails = lambda: "\n".join(f"--- {n}\n{l.read_text()[-2500:]}" for n, l in logs.items())
        until(lambda: len(online(url)) == 2, 120, "two workers online", on_fail=tails)
        print(f"server and two workers up in {time.monotonic() - started:.1f} s")

        proc = run(["nlpdag", "sweep", *grid], user, env=env)
        names = [line.split()[0] for line in proc.stdout.splitlines()]
        assert len(names) == 4 and all(n.startswith("sweep-") for n in names), proc.stdout

        # Stop w1 (SIGTERM, as Ctrl-C, systemd or a preempted VM would) while its point runs DVC.
        w1 = workers["w1"]
        def w1_in_dvc():
            pids = descendants(w1.pid)
            return pids if any("exp run --name sweep-" in cmdline(p) for p in pids) else None
        until(w1_in_dvc, 180, "w1 running `dvc exp run`", on_fail=tails)
        executor = [p for p in descendants(w1.pid) if "flow-run execute" in cmdline(p)][0]
        killed = [r for r in flow_runs(url).values() if str(r.get("infrastructure_pid", "")).endswith(str(executor))]
        assert len(killed) == 1, flow_runs(url)
        w1_tree = descendants(w1.pid)
        w1.send_signal(signal.SIGTERM)
        assert w1.wait(timeout=120) == 0
        assert "1 running point(s) handed back to the pool" in logs["w1"].read_text()
        from nlpdag.runs.worker import alive
        assert not [p for p in w1_tree if alive(p)]  # the worker, its executor, engine and DVC: all gone
        again = flow_runs(url)[killed[0]["name"]]
        assert again["state_type"] in ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED"), again["state_name"]
        print(f"w1 stopped during {killed[0]['name']}: now {again['state_type']} ({again['state_name']})")

        def all_final():
            runs = flow_runs(url)
            return runs if all(runs[n]["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
                               for n in names) else None
        runs = until(all_final, 480, "four points final", poll=3, on_fail=tails)
        assert {n: runs[n]["state_type"] for n in names} == {n: "COMPLETED" for n in names}, tails()
        assert runs[killed[0]["name"]]["run_count"] == 2  # run again from the start, by w2
        print(f"four points completed {time.monotonic() - started:.1f} s after the server started")
        # Each point's engine sent heartbeats, tied to the sweep deployment: what the automation
        # `nlpdag sweep` installed watches, to mark a point CRASHED once they stop.
        beats = api(url, "events/filter", {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]}},
                                            "limit": 50})["events"]
        deployment = f"prefect.deployment.{runs[names[0]]['deployment_id']}"
        beating = {e["resource"]["prefect.resource.id"] for e in beats
                   if deployment in {r["prefect.resource.id"] for r in e["related"]}}
        assert beating >= {f"prefect.flow-run.{runs[n]['id']}" for n in names}, beats[:2]
        from nlpdag.runs.submit import UNRESPONSIVE
        assert [a["name"] for a in api(url, "automations/filter")] == [UNRESPONSIVE]

        # A worker killed without a word (SIGKILL: nothing handed back) while it runs point 01 again:
        # its heartbeats stop, the automation marks the point CRASHED after 3 x 30 s of silence, and
        # `nlpdag resubmit` puts it back for a new worker. Nothing is computed twice: the rerun
        # restores `topics` from the run cache the first run pushed instead of refitting it.
        proc = run(["nlpdag", "sweep", "-S", "topics.n_topics=2", "-S", "topics.top_words=5", "--target", "topics"],
                   user, env=env)
        repeat, repeat_id = proc.stdout.split()[0], proc.stdout.split()[2]
        beat = {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]},
                           "resource": {"id": [f"prefect.flow-run.{repeat_id}"]}}, "limit": 5}
        until(lambda: api(url, "events/filter", beat)["events"], 120, "the point's first heartbeat", poll=0.5,
              on_fail=tails)
        w2 = workers["w2"]
        for pid in [w2.pid, *descendants(w2.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed = time.monotonic()
        until(lambda: flow_runs(url)[repeat]["state_type"] == "CRASHED", 240, "the killed point CRASHED", poll=2,
              on_fail=tails)
        print(f"w2 SIGKILLed during {repeat}: CRASHED {time.monotonic() - killed:.0f} s later "
              f"({flow_runs(url)[repeat]['state']['message']})")
        workers["w3"] = start_worker("w3", tmp_path, env, logs)
        until(lambda: "w3" in online(url), 120, "w3 online", on_fail=tails)
        proc = run(["nlpdag", "resubmit", repeat, "--wait", "--timeout", "300"], user, env=env)
        assert " COMPLETED " in proc.stdout.splitlines()[-1], proc.stdout + proc.stderr
        assert flow_runs(url)[repeat]["run_count"] == 2
        arts = api(url, "artifacts/filter", {"artifacts": {"key": {"any_": ["nlpdag-sweep-metrics"]}}})
        ran = {a["description"].split("`")[1]: a["description"].rsplit("ran: ", 1)[1] for a in arts}
        assert ran.pop(repeat) == "nothing, all cached", ran
    finally:
        for proc in workers.values():
            stop_tree(proc)
        stop_pid(server_pid)
    # Every clone removed, the stopped worker's too; only the killed worker's stays (nothing ran its
    # clean-up), in the temporary folder.
    assert [d.name.startswith(f"nlpdag-{repeat}-") for d in work.iterdir()] in ([], [True])

    # Upstream stages came from the shared DVC remote, never recomputed; the baseline's own point
    # ran nothing at all.
    assert sorted(ran) == names, ran
    assert [ran[n] for n in names] == ["check, topics"] * 3 + ["nothing, all cached"], ran

    run(["dvc", "exp", "pull", "origin", *names], user)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], user).stdout)
    exps = {rev.get("name") or exp.get("name"): rev["data"] for base in shown for exp in base.get("experiments") or []
            for rev in exp.get("revs") or []}
    assert set(names) <= set(exps), list(exps)
    seen = set()
    for name in names:
        data = exps[name]
        params = data["params"]["params.yaml"]["data"]
        seen.add((params["topics"]["n_topics"], params["topics"]["top_words"]))
        assert data["metrics"]["reports/metrics/topics.json"]["data"], name
        assert data["metrics"]["reports/metrics/classify.json"]["data"]["tfidf_logreg"]["accuracy"] > 0.5
    assert seen == {(2, 5), (2, 10), (4, 5), (4, 10)}

