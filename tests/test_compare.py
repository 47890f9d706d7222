"""`nlpdag compare`: key metrics from metrics files, best marked; one run against two real experiments."""
import json

import pytest

from conftest import clone_repo, run
from nlpdag.runs.compare import (CompareError, Version, build_table, key_metrics, render_html, render_text,
                           versions_from_exp_show)


def metrics(acc_a: float, acc_b: float, glove_analogy: float = 0.1, mse: float = 0.2) -> dict:
    return {
        "reports/metrics/ingest.json": {"docs": 400, "train_docs": 320},
        "reports/metrics/bow.json": {"models": {"tfidf_logreg": {
            "accuracy": acc_a, "macro_f1": acc_a,
            "by_source": {"imdb": {"accuracy": acc_a}, "rt": {"accuracy": 0.6}}}}},
        "reports/metrics/classify.json": {"models": {
            "mlp": {"accuracy": acc_b, "macro_f1": acc_b - 0.01, "by_source": {"imdb": {"accuracy": 0.7},
                                                                               "rt": {"accuracy": 0.65}}},
            "broken": {"accuracy": None}}},
        "reports/metrics/embeddings.json": {
            "glove": {"analogy_accuracy": glove_analogy, "wordsim353_spearman": 0.2, "simlex999_spearman": 0.1},
            "fasttext": {"analogy_accuracy": 0.3, "wordsim353_spearman": 0.1, "simlex999_spearman": 0.05}},
        "reports/metrics/reduce.json": {"glove": {
            "none": {"analogy_accuracy": 0.9, "wordsim353_spearman": 0.9, "simlex999_spearman": 0.9},
            "pca": {"analogy_accuracy": 0.1, "wordsim353_spearman": 0.2, "simlex999_spearman": 0.3},
            "ae": {"analogy_accuracy": 0.2, "wordsim353_spearman": 0.1, "simlex999_spearman": 0.3}}},
        "reports/metrics/topics.json": {"autoencoder": {"coherence": 0.19, "reconstruction_mse": mse},
                                        "nmf": {"coherence": 0.2, "reconstruction_mse": 0.1}},
    }


def test_key_metrics_pick_the_best_model_per_source_and_method():
    got = {c.label: v for c, v in key_metrics(metrics(0.8, 0.85)).items()}
    assert got["docs"] == (400, "")
    assert got["best accuracy"] == (0.85, "mlp")
    assert got["best accuracy imdb"] == (0.8, "tfidf_logreg")
    assert got["best accuracy rt"] == (0.65, "mlp")
    assert got["best analogy"] == (0.3, "fasttext") and got["best WS353 ρ"] == (0.2, "glove")
    # "none" (the unreduced vectors) is the reference, not a reduction
    assert got["reduced: best analogy"] == (0.2, "glove/ae")
    assert got["coherence nmf"] == (0.2, "")
    assert list(got)[:2] == ["docs", "best accuracy"]  # the headline first


def test_table_marks_best_per_column_lower_is_better_and_changed_params():
    versions = [Version("base", metrics(0.8, 0.7, mse=0.2), {"glove.window": 10, "seed": 0}),
                Version("exp-a", metrics(0.9, 0.7, mse=0.1), {"glove.window": 5, "seed": 0}),
                Version("exp-b", metrics(0.9, 0.7, mse=0.3), {"glove.window": 15, "seed": 0})]
    table = build_table(versions, ["topics.*.reconstruction_mse"])
    keys = [c.key for c in table.columns]
    assert keys[0] == "param:glove.window" and "param:seed" not in keys  # only what differs
    assert table.best["classify:accuracy"] == {"exp-a", "exp-b"}  # ties share the mark
    assert "embeddings:analogy_accuracy" not in table.best  # all equal: nothing to mark
    assert table.best["metric:topics.autoencoder.reconstruction_mse"] == {"exp-a"}  # lower is better
    assert "param:glove.window" not in table.best
    text = render_text(table, width=400)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["version", "glove.window", "docs"]
    assert "*0.9000 tfidf_logreg" in lines[2] and "0.8000 tfidf_logreg" in lines[1]
    assert render_text(table, width=60).splitlines()[0].split() == ["version", "base", "exp-a", "exp-b"]
    page = render_html(table)
    assert "<strong>0.9000 <small>tfidf_logreg</small></strong>" in page
    assert "http" not in page.replace('charset="utf-8"', "")  # self-contained: nothing fetched


def test_fewer_than_two_versions_is_one_clear_error():
    with pytest.raises(CompareError, match=r"compare needs two versions or more, found 1 \(base\)"):
        build_table([Version("base", metrics(0.8, 0.7))])


def test_versions_from_exp_show_skip_failed_runs_and_an_unchanged_workspace():
    def data(acc):
        return {"metrics": {"reports/metrics/bow.json": {"data": metrics(acc, 0)["reports/metrics/bow.json"]}},
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
    proc = run(["nlpdag", "compare", "HEAD", "three-topics", "--metric", "topics.nmf.*"], repo)
    assert "topics.nmf.coherence" in proc.stdout
    proc = run(["nlpdag", "compare", "HEAD"], repo, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: compare needs two versions or more, found 1 (HEAD): run an experiment (dvc exp run -S ...) "
        "or name two revisions"]
    proc = run(["nlpdag", "compare", "HEAD", "no-such-exp"], repo, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: 'no-such-exp': no such git revision or experiment"
    assert json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)  # the workspace is untouched
