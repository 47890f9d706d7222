"""`nlpdag run --jobs`: stages at once within the cores, the same dvc.lock as `dvc repro`, a timeline."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, clone_repo, copy_repo, run, run_env
from nlpdag.runs.dag import order_lock, outcome
from nlpdag.runs.lockdiff import compare_locks, load_lock
from nlpdag.runs.resources import Need, auto_shares, depths, stage_needs
from nlpdag.runs.timeline import StageTime, critical_path, summary
from nlpdag.training.threads import child_env, resolve_threads

DIAMOND = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"a"}, "e": {"b", "c", "d"}}


def test_auto_share_splits_the_cores_among_the_stages_that_can_be_ready_together():
    assert depths(DIAMOND) == {"a": 0, "b": 1, "c": 1, "d": 1, "e": 2}
    assert auto_shares(DIAMOND, 16) == {"a": 16, "b": 5, "c": 5, "d": 5, "e": 16}
    assert auto_shares(DIAMOND, 2) == {"a": 2, "b": 1, "c": 1, "d": 1, "e": 2}


def test_stage_needs_read_meta_from_dvc_yaml_and_params():
    dvc_yaml = {"stages": {"a": {"cmd": "x"},
                           "b": {"foreach": ["x", "y"], "do": {"cmd": "x", "meta": {"threads": "g.workers",
                                                                                     "memory_gb": 3}}},
                           "c": {"cmd": "x", "meta": {"threads": "auto", "most_threads": 2}},
                           "d": {"cmd": "x", "meta": {"threads": 4}},
                           "e": {"cmd": "x", "meta": {"threads": "auto"}}}}
    graph = {"a": set(), "b@x": {"a"}, "b@y": {"a"}, "c": {"a"}, "d": {"a"}, "e": {"b@x", "b@y", "c", "d"}}
    needs = stage_needs(graph, dvc_yaml, {"g": {"workers": "auto"}}, cores=16)
    assert needs == {"a": Need(1, 1.0), "b@x": Need(4, 3.0), "b@y": Need(4, 3.0), "c": Need(2, 1.0),
                     "d": Need(4, 1.0), "e": Need(16, 1.0)}
    # one stage at a time (--jobs 1, or plain dvc repro): auto is every core
    assert stage_needs(graph, dvc_yaml, {"g": {"workers": "auto"}}, cores=16, jobs=1)["b@x"] == Need(16, 3.0)
    assert stage_needs(graph, dvc_yaml, {"g": {"workers": 3}}, cores=2)["b@x"] == Need(2, 3.0)  # never past the cores
    with pytest.raises(ValueError, match="meta.threads names 'g.workers'"):
        stage_needs(graph, dvc_yaml, {}, cores=2)


def test_the_shipped_dvc_yaml_declares_what_params_yaml_resolves():
    from nlpdag.runs.dag import parse_dot

    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    dot = subprocess.run(["dvc", "dag", "--dot"], cwd=ROOT, capture_output=True, text=True, env=run_env()).stdout
    graph = parse_dot(dot)
    needs = stage_needs(graph, dvc_yaml, params, cores=16)
    assert needs["glove"].threads == 2  # auto, capped by what its code can use
    assert needs["neural@bilstm_attention"].threads == params["classify"]["threads"] == 1
    assert needs["word2vec@cbow"].threads == needs["fasttext"].threads  # auto: the same share at one depth
    assert needs["report"] == Need(1, 1.0)


def test_thread_settings_resolve_to_the_share(monkeypatch):
    monkeypatch.setenv("NLPDAG_THREADS", "3")
    assert resolve_threads("auto") == 3 and resolve_threads("auto", most=2) == 2 and resolve_threads(5) == 5
    monkeypatch.delenv("NLPDAG_THREADS")
    assert resolve_threads("auto") == len(os.sched_getaffinity(0))
    env = child_env(2, {"PATH": "/bin"})
    assert env == {"PATH": "/bin", "NLPDAG_THREADS": "2", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
                   "OPENBLAS_NUM_THREADS": "2"}


def test_critical_path_and_bound():
    times = {s: StageTime(s, "ran", 1, 0, start, start + wall, cpu, 10)
             for s, start, wall, cpu in [("a", 0, 10, 10), ("b", 10, 30, 60), ("c", 10, 5, 5), ("d", 15, 5, 5),
                                         ("e", 40, 10, 10)]}
    seconds, path = critical_path(times, DIAMOND)
    assert (seconds, path) == (50, ["a", "b", "e"])
    facts = summary(times, DIAMOND, cores=2, wall=55, jobs=0)
    assert facts["cpu_over_cores_seconds"] == 45 and facts["bound_seconds"] == 50
    assert facts["wall_over_bound"] == 1.1 and facts["jobs"] == "auto"
    assert summary({}, DIAMOND, cores=2, wall=0.3, jobs=1)["wall_over_bound"] is None  # nothing ran: undefined


def test_outcome_reads_dvc():
    assert outcome("Stage 'a' didn't change, skipping", "a") == "up to date"
    assert outcome("Stage 'a' is cached - skipping run, checking out outputs", "a") == "restored"
    assert outcome("Running stage 'a':\n> python -m stages.a", "a") == "ran"


def test_order_lock_follows_dvc_yaml(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages:\n  a: {cmd: x}\n  b: {foreach: [y, x], do: {cmd: x}}\n"
                                       "  c: {foreach: '${m}', do: {cmd: x}}\n")
    (tmp_path / "params.yaml").write_text("m: {q: 1, p: 2}\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages:\n  c@p:\n    cmd: x\n  b@x:\n    cmd: x\n"
                                       "  a:\n    cmd: x\n  c@q:\n    cmd: x\n  b@y:\n    cmd: x\n")
    assert order_lock(tmp_path)  # as dvc repro writes them: dvc.yaml's order, each foreach's own
    assert list(yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]) == ["a", "b@y", "b@x", "c@q", "c@p"]
    assert not order_lock(tmp_path)  # already in order: left as it is


def test_bad_jobs_is_one_line(tmp_path):
    proc = run(["nlpdag", "run", "--jobs", "0", "--repo", str(ROOT)], ROOT, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --jobs 0: expected a whole number >= 1 or auto"


# ---- on tiny data: a parallel run against dvc repro -------------------------------------------------------

# Every count that could change a number is fixed, so every stage is deterministic and the two locks must match.
ONE_THREAD = {"word2vec": {"workers": 1}, "fasttext": {"workers": 1}, "doc2vec": {"workers": 1},
              "tsne": {"n_jobs": 1}}


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory) -> Path:
    from test_pipeline import SMALL, set_params

    repo = copy_repo(tmp_path_factory.mktemp("parallel"))
    set_params(repo, SMALL)
    set_params(repo, ONE_THREAD)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "small sample, one thread per gensim/openTSNE stage"], repo)
    return repo


def lock_stages(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())["stages"]


@pytest.fixture(scope="module")
def both_runs(small_repo, tmp_path_factory) -> tuple[Path, Path, str]:
    """The tiny pipeline run by `dvc repro` and by `nlpdag run --jobs auto`, each in its own clone."""
    sequential = clone_repo(small_repo, tmp_path_factory.mktemp("runs") / "sequential")
    parallel = clone_repo(small_repo, sequential.parent / "parallel")
    run(["dvc", "repro"], sequential)
    proc = run(["nlpdag", "run", "--jobs", "auto"], parallel)
    return sequential, parallel, proc.stdout


@pytest.mark.slow
def test_parallel_run_matches_dvc_repro_and_a_second_run_does_nothing(both_runs, tmp_path):
    sequential, ran, stdout = both_runs
    assert "timeline: reports/timeline.html" in stdout, stdout
    parallel = clone_repo(ran, tmp_path / "parallel")  # the fixture's stays as it was for the tests below

    seq, par = lock_stages(sequential), lock_stages(parallel)
    assert list(par) == sorted(par, key=list(seq).index) and set(par) == set(seq)  # dvc.yaml's order
    same = compare_locks(load_lock(sequential / "dvc.lock"), load_lock(parallel / "dvc.lock"),
                         sequential / ".dvc/cache", parallel / ".dvc/cache")
    # Stages that record no wall-clock figure have the very same hashes; the others the same results.
    assert {s: v["verdict"] for s, v in same.items() if v["verdict"] not in ("identical", "same results")} == {}
    for stage in ("check", "ingest", "tokenise", "pretrained"):
        assert par[stage] == seq[stage], stage
    assert run(["dvc", "status", "--json"], parallel).stdout.strip() in ("{}", "")

    timeline = json.loads((parallel / "reports/timeline.json").read_text())
    rows = {r["stage"]: r for r in timeline["stages"]}
    assert set(rows) == set(seq) and all(r["outcome"] == "ran" for s, r in rows.items() if s != "check")
    dag = run(["nlpdag", "dag"], parallel).stdout.splitlines()
    for line in dag:
        stage, _, ups = line.partition("  <- ")
        for up in filter(None, ups.split(", ")):  # a stage starts only once every upstream stage has ended
            assert rows[stage.strip()]["start_s"] >= rows[up]["end_s"], (stage, up)
    # on 2 cores, never more threads at once than cores
    events = sorted([(r["start_s"], r["threads"]) for r in rows.values() if r["wall_s"] > 0]
                    + [(r["end_s"], -r["threads"]) for r in rows.values() if r["wall_s"] > 0])
    busy = peak = 0
    for _, delta in events:
        busy += delta
        peak = max(peak, busy)
    assert peak <= len(os.sched_getaffinity(0)), events
    run_facts = timeline["run"]
    assert run_facts["bound_seconds"] == max(run_facts["critical_path_seconds"], run_facts["cpu_over_cores_seconds"])
    assert (parallel / "reports/timeline.html").read_text().count("critical path") >= 1

    before = lock_stages(parallel)
    again = run(["nlpdag", "run", "--jobs", "auto"], parallel)
    assert "ran none" in again.stdout, again.stdout
    assert lock_stages(parallel) == before


@pytest.mark.slow
def test_a_failed_stage_stops_its_dependants_only(both_runs, tmp_path):
    """glove.device: cuda passes the check but fails at run time here (no CUDA); word2vec and topics,
    made stale beside it, do not depend on glove."""
    from test_pipeline import set_params

    repo = clone_repo(both_runs[1], tmp_path / "failing")
    set_params(repo, {"glove": {"device": "cuda"}, "word2vec": {"epochs": 3}, "topics": {"epochs": 2}})
    proc = run(["nlpdag", "run", "--jobs", "auto"], repo, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "glove.device=cuda but CUDA is not available" in errors[0], proc.stderr
    rows = {r["stage"]: r["outcome"] for r in json.loads((repo / "reports/timeline.json").read_text())["stages"]}
    assert rows["glove"] == "failed"
    for independent in ("word2vec@cbow", "word2vec@skipgram", "topics"):
        assert rows[independent] == "ran", rows
    for dependant in ("evaluate", "reduce", "classify", "report"):
        assert dependant not in rows, rows  # never started
    stale = json.loads(run(["dvc", "status", "--json"], repo).stdout)
    assert {"glove", "evaluate", "reduce", "classify", "report"} <= set(stale)
    assert not {"word2vec@cbow", "word2vec@skipgram", "topics"} & set(stale)


def stage_processes(stage_module: str, session: int) -> list[int]:
    """The processes of `session` (the run's own, never another test's) running `python -m stage_module`
    (any of them when stage_module is empty)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if os.getsid(int(entry.name)) == session and (not stage_module or stage_module.encode() in argv):
                found.append(int(entry.name))
        except (ValueError, OSError):  # not a process, or one that ended meanwhile
            continue
    return found


@pytest.mark.slow
def test_sigkill_mid_run_leaves_nothing_half_written_and_the_next_run_resumes(both_runs, tmp_path):
    from test_pipeline import set_params

    repo = clone_repo(both_runs[1], tmp_path / "killed")
    set_params(repo, {"word2vec": {"epochs": 3}})  # word2vec@* and what reads embeddings are stale
    log = tmp_path / "run.log"  # a file, not a pipe: nobody reads while it runs, and a full pipe would stall it
    with open(log, "w") as out:
        proc = subprocess.Popen(["nlpdag", "run", "--jobs", "auto"], cwd=repo, env=run_env(), start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not stage_processes("stages.word2vec", proc.pid):
        time.sleep(0.1)
    if not stage_processes("stages.word2vec", proc.pid):
        proc.kill()
        proc.wait(timeout=30)
        pytest.fail(f"word2vec never started (run exit {proc.returncode}):\n{log.read_text()[-3000:]}")
    os.killpg(proc.pid, signal.SIGKILL)  # the flow, DVC and the stage at once, as `kill -9 -<pgid>` would
    proc.wait(timeout=30)
    # A killed process lingers while the kernel tears it down; DVC refuses a lock its PID still holds.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and stage_processes("", proc.pid):
        time.sleep(0.1)
    # What the stage was writing sits under a temporary name (.<name>...tmp), never under an output's name;
    # DVC's rwlock names a dead process, which DVC clears itself.
    again = run(["nlpdag", "run", "--jobs", "auto"], repo)
    assert "timeline:" in again.stdout and "word2vec@cbow" in again.stdout
    assert run(["dvc", "status", "--json"], repo).stdout.strip() in ("{}", "")
    assert not list((repo / "data").rglob(".*.tmp")) and not list((repo / "reports").rglob(".*.tmp"))
