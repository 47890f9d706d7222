"""`nlpdag compare`: key metrics from metrics files, best marked; one run against two real experiments."""
import json

import pytest

from conftest import clone_repo, run, run_env
from nlpdag.runs.compare import (CompareError, Version, build_table, flatten, headline_metrics, render_html, render_text,
                                 versions_from_exp_show)


def metrics(acc_a: float, acc_b: float, glove_analogy: float = 0.1, seconds: float = 3.0) -> dict:
    """Headline metrics files (nlpdag/evaluation/headline.py)."""
    return {
        "reports/metrics/ingest.json": {"docs": 400, "train_docs": 320},
        "reports/metrics/classify.json": {
            "tfidf_logreg": {"accuracy": acc_a, "macro_f1": acc_a, "imdb": acc_a, "rt": 0.6},
            "bigru": {"accuracy": acc_b, "macro_f1": acc_b - 0.01, "imdb": 0.7, "rt": 0.65},
            "ensemble": {"accuracy": None, "macro_f1": None}},
        "reports/metrics/embeddings.json": {
            "glove": {"analogy": glove_analogy, "wordsim353": 0.2, "simlex999": 0.1, "seconds": seconds},
            "fasttext": {"analogy": 0.3, "wordsim353": None, "simlex999": 0.05, "seconds": 2.0}},
        "reports/metrics/topics.json": {"autoencoder": {"coherence": 0.19}, "nmf": {"coherence": 0.2}},
    }


def test_headline_metrics_are_one_column_each():
    got = {c.label: v for c, v in headline_metrics(metrics(0.8, 0.85)).items()}
    assert got["ingest.docs"] == (400, "") and got["classify.bigru.accuracy"] == (0.85, "")
    assert got["embeddings.fasttext.wordsim353"] == (None, "")  # too little evidence: null, kept as such
    assert len(got) == 2 + 10 + 8 + 2


def test_table_shows_what_changed_and_marks_the_best():
    versions = [Version("base", metrics(0.8, 0.7, seconds=3.0), {"glove.window": 10, "seed": 0}),
                Version("exp-a", metrics(0.9, 0.7, glove_analogy=0.2, seconds=9.0), {"glove.window": 5, "seed": 0}),
                Version("exp-b", metrics(0.9, 0.7, seconds=1.0), {"glove.window": 15, "seed": 0})]
    table = build_table(versions)
    keys = [c.key for c in table.columns]
    assert keys == ["param:glove.window", "metric:classify.tfidf_logreg.accuracy", "metric:classify.tfidf_logreg.macro_f1",
                    "metric:classify.tfidf_logreg.imdb", "metric:embeddings.glove.analogy"]  # seconds always differ
    assert table.best["metric:classify.tfidf_logreg.accuracy"] == {"exp-a", "exp-b"}  # ties share the mark
    assert "param:glove.window" not in table.best
    asked = build_table(versions, ["embeddings.*.seconds"])
    assert asked.best["metric:embeddings.glove.seconds"] == {"exp-b"}  # lower is better
    assert "metric:embeddings.fasttext.seconds" in [c.key for c in asked.columns]  # asked for: shown unchanged
    assert len(build_table(versions, everything=True).columns) == 1 + 22
    text = render_text(table, width=400)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["version", "glove.window", "classify.tfidf_logreg.accuracy"]
    assert "*0.9000" in lines[2] and "0.8000" in lines[1]
    assert render_text(table, width=60).splitlines()[0].split() == ["version", "base", "exp-a", "exp-b"]
    page = render_html(table)
    assert "<strong>0.9000</strong>" in page
    assert "http" not in page.replace('charset="utf-8"', "")  # self-contained: nothing fetched
    same = build_table(versions[1:2] + versions[1:2])
    assert "no metric differs" in render_text(same)


def test_fewer_than_two_versions_is_one_clear_error():
    with pytest.raises(CompareError, match=r"compare needs two versions or more, found 1 \(base\)"):
        build_table([Version("base", metrics(0.8, 0.7))])


def test_versions_from_exp_show_skip_failed_runs_and_an_unchanged_workspace():
    def data(acc):
        return {"metrics": {"reports/metrics/classify.json": {"data": metrics(acc, 0)["reports/metrics/classify.json"]}},
                "params": {"params.yaml": {"data": {"bow": {"C": acc}}}}}

    shown = [{"rev": "workspace", "name": None, "data": data(0.8), "error": None, "experiments": None},
             {"rev": "a" * 40, "name": "main", "data": data(0.8), "error": None, "experiments": [
                 {"name": "good", "revs": [{"rev": "b" * 40, "name": "good", "data": data(0.9), "error": None}]},
                 {"name": "bad", "revs": [{"rev": "c" * 40, "name": "bad", "data": {}, "error": {"msg": "x"}}]}]}]
    versions = versions_from_exp_show(shown)
    assert [v.label for v in versions] == ["main (aaaaaaa)", "good"]
    assert versions[1].params == {"bow.C": 0.9}
    shown[0]["data"] = data(0.85)  # uncommitted changes: the workspace is a version of its own
    assert [v.label for v in versions_from_exp_show(shown)] == ["workspace", "main (aaaaaaa)", "good"]


@pytest.mark.slow
def test_compare_two_experiments_in_a_real_repo(small_baseline, tmp_path):
    repo = clone_repo(small_baseline, tmp_path / "repo")
    run(["dvc", "exp", "run", "-S", "topics.n_topics=3", "-n", "three-topics"], repo)
    run(["dvc", "exp", "run", "-S", "topics.n_topics=5", "-n", "five-topics"], repo)
    proc = run(["nlpdag", "compare"], repo)
    assert "three-topics" in proc.stdout and "five-topics" in proc.stdout, proc.stdout
    assert "topics.n_topics" in proc.stdout
    assert any("*" in line for line in proc.stdout.splitlines()[:-1])  # a best value marked, not just the legend
    page = (repo / "reports/compare.html").read_text()
    assert "five-topics" in page and "<strong>" in page
    assert "topics.autoencoder.coherence" in proc.stdout  # changed: shown by default
    proc = run(["nlpdag", "compare", "HEAD", "three-topics", "--metric", "ingest.*"], repo)
    assert "ingest.docs" in proc.stdout  # unchanged, but asked for
    proc = run(["nlpdag", "compare", "HEAD"], repo, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: compare needs two versions or more, found 1 (HEAD): run an experiment (dvc exp run -S ...) "
        "or name two revisions"]
    proc = run(["nlpdag", "compare", "HEAD", "no-such-exp"], repo, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: 'no-such-exp': no such git revision or experiment"
    assert json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)  # the workspace is untouched


@pytest.mark.slow
def test_a_one_parameter_experiment_fits_a_200_column_terminal(small_baseline, tmp_path):
    """The metrics files hold headline numbers only: what DVC prints after a one-parameter change fits a
    200-column terminal, the changed numbers readable (not elided)."""
    repo = clone_repo(small_baseline, tmp_path / "repo")
    run(["dvc", "exp", "run", "-S", "classify.nb_C=[0.5]", "-n", "nb-half"], repo)  # one row changes
    env = {**run_env(), "COLUMNS": "200", "LINES": "50"}
    # The changed data dependencies' hashes (a column each) are dropped: the README's command does the same.
    shown = run(["dvc", "exp", "show", "--only-changed", "--drop", "^(data|reports)/", "--no-pager"], repo, env=env).stdout
    lines = shown.splitlines()
    assert max(map(len, lines)) <= 200, shown
    # Which of nb_logreg's numbers change (overall, per source) depends on the tiny data; one of them does.
    assert "nb-half" in shown and "nb_C" in shown and "nb_logreg." in shown and "…" not in shown, shown
    diff = run(["dvc", "metrics", "diff", "HEAD", "nb-half"], repo, env=env).stdout
    assert max(map(len, diff.splitlines())) <= 200, diff
    assert "nb_logreg." in diff
    total = sum(len(flatten(json.loads(p.read_text()))) for p in (repo / "reports/metrics").glob("*.json"))
    assert total <= 150, total  # headline numbers only
