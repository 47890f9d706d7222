"""The `report` stage: its HTML pieces as pure functions, and the whole page from tiny inputs laid out
as the pipeline (and the classify stage's contract) writes them."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from nlpdag.report import page as h
from nlpdag.report import summary as summary_html
from nlpdag.report import views
from nlpdag.report.claims import NOT_MEASURED, SUPPORTED, Claim
from nlpdag.errors import StageError
from nlpdag.report.charts import plotly_js
from nlpdag.config.params import Params
from nlpdag.report.build import build, confusion_counts, confusion_models, pick_attention, pick_examples, run
from nlpdag.report.tsne import run as run_tsne
from test_tsne import NEURAL, TINY, write_tsne_inputs

BASELINE = "tfidf_logreg"
SOURCES = ["imdb", "rotten_tomatoes"]


def model_metrics(acc: float, kind: str, by_source: dict[str, float]) -> dict:
    return {"accuracy": acc, "macro_f1": round(acc - 0.01, 4), "roc_auc": round(acc + 0.05, 4), "n": 48,
            "by_source": {s: {"accuracy": a, "macro_f1": a, "roc_auc": a, "n": 24} for s, a in by_source.items()},
            "train_seconds": 1.5, "kind": kind, **({"tokens_per_second": 12345.0} if kind == "neural" else {})}


CLASSIFY = {"models": {BASELINE: model_metrics(0.8123, "baseline", {"imdb": 0.85, "rotten_tomatoes": 0.7711}),
                       "docvec@doc2vec_dm": model_metrics(0.7002, "baseline", {"imdb": 0.72, "rotten_tomatoes": 0.66}),
                       NEURAL: model_metrics(0.8456, "neural", {"imdb": 0.9012, "rotten_tomatoes": 0.75})}}
SUMMARY = {"winner": {"overall": NEURAL, "imdb": None, "rotten_tomatoes": BASELINE},
           "best": {"overall": NEURAL, "imdb": NEURAL, "rotten_tomatoes": BASELINE},
           "tied_with": {"overall": [], "imdb": [BASELINE], "rotten_tomatoes": []},
           "p_value": {"overall": 0.0123, "imdb": 0.31, "rotten_tomatoes": 0.001},
           "runner_up": {"overall": BASELINE, "imdb": BASELINE, "rotten_tomatoes": NEURAL},
           "best_baseline": {"overall": BASELINE, "imdb": BASELINE, "rotten_tomatoes": BASELINE},
           "best_neural": {"overall": NEURAL, "chosen_on": "validation accuracy"},
           "labels": ["negative", "positive"], "sources": SOURCES}


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")


def write_report_inputs(root: Path) -> Params:
    """Every input of the report (the t-SNE maps made by the tsne stage on tiny data); the params to use."""
    write_tsne_inputs(root)
    run_tsne(TINY, seed=0, root=root, out=root / "data" / "tsne", log=lambda _: None)
    m = root / "reports" / "scores"  # everything the report reads (*_SCORES)
    write(m / "ingest.json", {"docs_read": 61, "dropped_duplicates": 1, "docs": 60, "train_docs": 12, "test_docs": 48,
                              "labels": {"negative": 30, "positive": 30}, "sources": {"imdb": 30, "rotten_tomatoes": 30}})
    write(m / "tokenise.json", {"tokens": 2700, "train_tokens": 540, "vocab_size": 40, "test_token_coverage": 0.9876})
    write(m / "cooccur.json", {"nonzeros": 777, "vocab_size": 40})
    write(m / "embeddings.json", {"word2vec_cbow": {"analogy_accuracy": 0.1267, "wordsim353_spearman": 0.2702,
                                               "simlex999_spearman": 0.1633, "vocab_size": 39, "train_seconds": 6.1},
                                  "glove": {"analogy_accuracy": 0.0631, "wordsim353_spearman": 0.1636,
                                            "simlex999_spearman": 0.0576, "vocab_size": 40, "train_seconds": 51.2}})
    write(m / "reduce.json", {"glove": {
        "none": {"analogy_accuracy": 0.0631, "wordsim353_spearman": 0.1636, "simlex999_spearman": 0.0576,
                 "reconstruction_mse": 0.0},
        "pca": {"analogy_accuracy": 0.05, "wordsim353_spearman": 0.15, "simlex999_spearman": 0.0541,
                "reconstruction_mse": 0.2},
        "ae": {"analogy_accuracy": 0.04, "wordsim353_spearman": 0.17, "simlex999_spearman": 0.1691,
               "reconstruction_mse": 0.3}}})
    write(m / "topics.json", {"autoencoder": {"coherence": 0.1956, "reconstruction_mse": 0.0001},
                              "nmf": {"coherence": 0.1964, "reconstruction_mse": 0.0001}})
    pd.DataFrame({"model": ["nmf"] * 3, "topic": [0, 0, 1], "rank": [1, 2, 1], "word": ["zombie", "gore", "oscar"],
                  "weight": [0.5, 0.3, 0.4]}).to_parquet(root / "data" / "topics.parquet")
    write(m / "classify.json", CLASSIFY)
    write(root / "reports" / "classify" / "summary.json", SUMMARY)
    # classify's candidates: every attending model on the same documents, misclassified ones (by the
    # first model) first; the report shows report.attention_docs of them.
    write(root / "reports" / "classify" / "attention.json", [
        {"model": NEURAL, "doc_id": 50, "label": "positive", "predicted": "negative", "wrong": True,
         "tokens": ["a", "dull", "<b>film"], "weights": [0.1, 0.7, 0.2]},
        {"model": NEURAL, "doc_id": 51, "label": "negative", "predicted": "negative", "wrong": False, "tokens": ["awful"],
         "weights": [1.0]},
        {"model": TRANSFORMER, "doc_id": 50, "label": "positive", "predicted": "positive", "wrong": True,
         "tokens": ["a", "dull", "<b>film"], "weights": [0.2, 0.3, 0.4]},
        {"model": TRANSFORMER, "doc_id": 51, "label": "negative", "predicted": "negative", "wrong": False, "tokens": ["awful"],
         "weights": [0.9]}])
    write(root / "reports" / "classify" / "trees.json", [TREE_EXAMPLE])
    write(root / "reports" / "plots" / "classify" / f"{NEURAL}.csv",
          "epoch,train_loss,val_loss,train_accuracy,val_accuracy\n1,0.69,0.6,0.55,0.61\n2,0.5,0.45,0.77,0.8\n")
    for name in CLASSIFY["models"]:
        rows = "actual,predicted\n" + "negative,negative\n" * 20 + "negative,positive\n" * 4 + "positive,positive\n" * 21 + "positive,negative\n" * 3
        write(root / "reports" / "plots" / "confusion" / f"{name}.csv", rows)
    write(root / "reports" / "plots" / "reduce_loss.csv",
          "model,epoch,train_loss,val_loss\nglove__ae,1,0.9,0.8\nglove__ae,2,0.7,0.65\n")
    write(root / "reports" / "train" / "glove.json", {"method": "glove", "loss": [0.02, 0.012, 0.011]})
    write(root / "reports" / "neighbours.json", {
        "word2vec_cbow": {"good": [["great", 0.736], ["decent", 0.732]], "bad": [["terrible", 0.761]]},
        "glove": {"good": [["nice", 0.6]]}})
    return Params.model_validate({"evaluate": {"probe_words": ["good", "bad"]},
                                  "report": {"methods": ["word2vec_cbow", "glove", "pretrained"], "neighbours_shown": 2}})


@pytest.fixture(scope="session")
def report_inputs(tmp_path_factory) -> tuple[Params, Path]:
    root = tmp_path_factory.mktemp("report") / "repo"
    return write_report_inputs(root), root


@pytest.fixture
def report_fixture(report_inputs, tmp_path) -> tuple[Params, Path]:
    """A private copy of the inputs (built once per session: the t-SNE maps take a few seconds)."""
    params, root = report_inputs
    shutil.copytree(root, tmp_path / "repo")
    return params, tmp_path / "repo"


def section_of(page: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert match, f"no section {sid}"
    return match.group(1)


def test_table_formats_values_and_marks_the_best():
    out = h.table(["m", "acc"], [("a", 0.8123), ("b", 0.9), ("c", None)], best={1: "max"})
    assert "0.8123" in out and '<td class="num best">0.9</td>' in out and "<td>n/a</td>" in out
    assert "&lt;x&gt;" in h.table(["<x>"], [])


def test_table_never_bolds_n_a():
    out = h.table(["m", "rho"], [("a", None), ("b", float("nan")), ("c", 0.2), ("d", True)], best={1: "max"})
    assert out.count('class="num best"') == 1 and '<td class="num best">0.2</td>' in out
    assert "best" not in h.table(["m", "rho"], [("a", None), ("b", None)], best={1: "max"})


def test_verdicts_name_a_winner_only_where_the_paired_test_says_so():
    lines = summary_html.verdicts(CLASSIFY["models"], SUMMARY)
    assert len(lines) == 3
    neural, base = "bidirectional LSTM, attention pooling, on word2vec CBOW", "TF-IDF + logistic regression"
    assert lines[0] == (f"<b>Overall</b>: <b>{neural}</b> wins (84.6%); the runner-up, {base} (81.2%), is behind by "
                        "more than chance gives on 48 test documents (McNemar p = 0.012, below 0.05).")
    assert lines[1] == (f"<b>IMDB</b>: <b>tied</b>. The most accurate, <b>{neural}</b> (90.1%), and the runner-up, "
                        f"{base} (85.0%), differ by 5.1 pts: within what chance gives on 24 test documents "
                        "(McNemar p = 0.31, above 0.05).")
    assert lines[2].startswith(f"<b>Rotten Tomatoes</b>: <b>{base}</b> wins")
    assert "†" not in summary_html.summary_section(CLASSIFY["models"], SUMMARY, [])


def test_a_row_that_saw_the_test_texts_says_so_in_the_verdict():
    models = {**CLASSIFY["models"], BASELINE: {**CLASSIFY["models"][BASELINE], "transductive": True}}
    lines = summary_html.verdicts(models, SUMMARY)
    assert "TF-IDF + logistic regression † (81.2%), is behind" in lines[0]
    assert lines[2].startswith("<b>Rotten Tomatoes</b>: <b>TF-IDF + logistic regression †</b> wins")
    out = summary_html.summary_section(models, SUMMARY, [])
    assert 'id="transductive">† saw the test texts, never their labels' in out
    assert "doc2vec.train_on_all=false" in out


def test_summary_leads_with_verdict_tally_unmeasured_and_served_model():
    claims = [Claim("A", "x", SUPPORTED), Claim("B", "y", SUPPORTED),
              Claim("C", "under 1 s a run is too short to time", NOT_MEASURED, "dvc repro c")]
    summary = {**SUMMARY, "at_chance": {"docvec@doc2vec_dm": "validation accuracy 0.51 on 2 labels"},
               "served": {"row": NEURAL, "validation_accuracy": 0.83, "near_chance": False}}
    out = summary_html.summary_section(CLASSIFY["models"], summary, claims)
    assert out.startswith('<section id="summary">')
    assert "Telling negative from positive" in out and "<b>tied</b>" in out and "p = 0.31" in out
    assert "within what chance gives on 24 test documents" in out
    assert re.search(r"2 supported</b>, .*0 contradicted</b>, .*0 inconclusive</b>, .*1 not measured</b>", out)
    assert "The course's 3 claims" in out
    assert "C: <span class=\"small\">under 1 s a run is too short to time" in out  # what was not measured, and why
    assert "Doc2Vec PV-DM is at chance" in out and "validation accuracy 0.51" in out
    assert "<code>nlpdag predict</code> serves <b>bidirectional LSTM" in out and "(83.0% there)" in out
    assert "near chance" not in out
    warned = summary_html.summary_section(CLASSIFY["models"], {**summary, "served": {
        "row": NEURAL, "validation_accuracy": 0.52, "near_chance": True}}, claims)
    assert "It is near chance" in warned
    # without a summary the tally still shows; the served model falls back to best_neural
    assert 'id="claims-tally"' in summary_html.summary_section(None, None, claims, ["reports/classify/summary.json"])
    assert "serves <b>bidirectional LSTM" in summary_html.served_line(SUMMARY)


def test_source_names_read_as_words():
    from nlpdag.names import human_source

    assert human_source("imdb") == "IMDB" and human_source("rotten_tomatoes") == "Rotten Tomatoes"
    assert human_source("my_reviews") == "my reviews" and human_source("Yelp") == "Yelp"


def test_classifier_table_holds_every_model_and_per_source_accuracy():
    out = h.classifiers_section(CLASSIFY, SUMMARY)
    for value in ("0.8456", "0.8123", "0.9012", "0.7711", "12,345", NEURAL, "docvec@doc2vec_dm",
                  "accuracy on IMDB", "accuracy on Rotten Tomatoes", "bidirectional LSTM, attention pooling"):
        assert value in out
    assert "rotten_tomatoes" not in out
    # the scores table holds no cost column: those sit in the second table, so each fits 1,400 pixels
    scores, cost = re.findall(r"<table>.*?</table>", out)[:2]
    assert "tokens/s" not in scores and "tokens/s" in cost and scores.count("<th>") == 9
    assert out.index(NEURAL) < out.index("docvec@doc2vec_dm")  # sorted by accuracy
    assert "not available: reports/metrics/classify.json" in h.classifiers_section(
        None, None, ["reports/metrics/classify.json"])


def test_confusion_counts_and_table():
    frame = pd.DataFrame({"actual": ["negative", "negative", "positive"], "predicted": ["negative", "positive", "positive"]})
    labels, counts = confusion_counts(frame, ["negative", "positive"])
    assert labels == ["negative", "positive"] and counts == {("negative", "negative"): 1, ("negative", "positive"): 1, ("positive", "positive"): 1}
    out = h.confusion_table("m", labels, counts)
    assert "actual negative" in out and "pred. positive" in out and "(50.0%)" in out and "(100.0%)" in out


def test_confusion_models_default_to_winners_and_best_baseline():
    params = Params().report
    assert confusion_models(params, SUMMARY) == [NEURAL, BASELINE]
    assert confusion_models(params, None) == []


TRANSFORMER = "transformer-2x128@word2vec_cbow"
TREE_EXAMPLE = {"model": "treelstm-rae@word2vec_cbow", "doc_id": 52, "label": "positive", "predicted": "positive", "wrong": False,
                "tokens": ["not", "bad", "<at>", "all"], "children": [[0, 1], [2, 3], [4, 5]],
                "node_predicted": ["negative", "negative", "positive", "positive", "positive", "positive", "positive"],
                "node_confidence": [0.9, 0.8, 0.55, 0.6, 0.7, 0.65, 0.95]}


def test_tree_panel_svg():
    svg = views.tree_svg(TREE_EXAMPLE["tokens"], TREE_EXAMPLE["children"], TREE_EXAMPLE["node_predicted"],
                         TREE_EXAMPLE["node_confidence"], ["negative", "positive"])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 7 and svg.count("<line") == 6 and svg.count("<text") == 4
    assert "&lt;at&gt;" in svg and "<at>" not in svg
    circles = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="7" fill="(#\w+)" fill-opacity="([\d.]+)"', svg)
    xs, ys = [float(c[0]) for c in circles], [float(c[1]) for c in circles]
    assert ys[:4] == [ys[0]] * 4 and ys[6] < ys[4] == ys[5] < ys[0]   # leaves at the bottom, the root on top
    assert xs[4] == (xs[0] + xs[1]) / 2 and xs[6] == (xs[4] + xs[5]) / 2  # a parent above its children's middle
    assert [c[2] for c in circles[:2]] == [views.PALETTE[0]] * 2 and circles[2][2] == views.PALETTE[1]
    assert circles[6][3] == "0.95"
    section = views.trees_section([TREE_EXAMPLE], ["negative", "positive"])
    assert '<section id="trees">' in section and "Tree-LSTM over recursive auto-encoder trees" in section
    assert "no tree model" in views.trees_section([], ["negative", "positive"])
    assert "not available: reports/classify/trees.json" in views.trees_section(None, [], ["reports/classify/trees.json"])


def test_neighbours_and_attention_sections():
    out = h.neighbours_section({"word2vec_cbow": {"good": [["great", 0.7], ["fine", 0.6]]}}, ["good", "zzz"],
                               ["word2vec_cbow", "glove"], 1)
    assert "great" in out and "fine" not in out and "(not in vocabulary)" in out and "<th>glove</th>" not in out
    att = views.attention_section([{"model": "m", "doc_id": 1, "label": "positive", "predicted": "negative",
                                    "tokens": ["dull", "<i>"], "weights": [0.5, 1.0]},
                                   {"model": TRANSFORMER, "doc_id": 1, "label": "positive", "predicted": "positive",
                                    "tokens": ["dull", "<i>"], "weights": [0.25, 0.25]}])
    assert "rgba(255,140,0,0.500)" in att and "&lt;i&gt;" in att and "misclassified" in att
    assert att.count('class="doc"') == 1 and "Transformer encoder" in att  # both models' views of one document


def example(model: str, doc_id: int, wrong: bool) -> dict:
    return {"model": model, "doc_id": doc_id, "wrong": wrong}


def test_pick_examples_shows_up_to_half_misclassified_then_right_ones():
    """classify writes the candidates (misclassified documents first, each kind in a seeded order, every
    model's view of each); the report shows the first n documents: up to n // 2 misclassified, the rest
    right ones, for every model in its order."""
    docs = [(1, True), (2, True), (3, True), (4, False), (5, False), (6, False), (7, False)]
    pool = [example(m, d, w) for m in ("a", "b") for d, w in docs]
    ids = lambda shown: [(e["model"], e["doc_id"]) for e in shown]  # noqa: E731
    assert ids(pick_examples(pool, 4)) == [("a", 1), ("a", 2), ("a", 4), ("a", 5), ("b", 1), ("b", 2), ("b", 4), ("b", 5)]
    assert ids(pick_examples(pool, 3)) == [(m, d) for m in ("a", "b") for d in (1, 4, 5)]
    assert ids(pick_examples(pool, 1)) == [("a", 4), ("b", 4)]   # n // 2 = 0 misclassified
    assert pick_examples(pool, 0) == [] and pick_examples([], 6) == []
    # Fewer misclassified documents than n // 2: right ones fill up; fewer right ones: what there is.
    few = [example("a", 1, True), *(example("a", d, False) for d in (2, 3, 4, 5))]
    assert ids(pick_examples(few, 4)) == [("a", 1), ("a", 2), ("a", 3), ("a", 4)]
    assert ids(pick_examples(pool[:7], 50)) == [("a", d) for d in (1, 2, 3, 4, 5, 6, 7)]
    # The candidates' order is kept: the picks do not depend on how many are shown.
    assert pick_examples(pool, 6)[:2] == pick_examples(pool, 4)[:2]
    # A model missing a document's view is left out of it, not an error.
    assert ids(pick_examples([example("a", 1, True), example("b", 2, False)], 2)) == [("a", 1), ("b", 2)]


def test_pick_attention_reads_the_report_params():
    pool = [example(m, d, w) for m in (NEURAL, TRANSFORMER) for d, w in ((1, True), (2, False), (3, False))]
    params = Params().report
    assert params.attention_docs == 6 and params.tree_docs == 4
    assert len(pick_attention(pool, params)) == 6   # 3 documents, both models
    two = params.model_copy(update={"attention_docs": 2})
    assert [(e["model"], e["doc_id"]) for e in pick_attention(pool, two)] == [
        (NEURAL, 1), (NEURAL, 2), (TRANSFORMER, 1), (TRANSFORMER, 2)]
    alone = two.model_copy(update={"attention_model": TRANSFORMER})
    assert [(e["model"], e["doc_id"]) for e in pick_attention(pool, alone)] == [(TRANSFORMER, 1), (TRANSFORMER, 2)]


def test_page_has_every_section_and_no_external_reference(report_fixture):
    params, root = report_fixture
    page, words, docs, labels = build(params.report, params.evaluate.probe_words, root)
    for sid in h.SECTIONS:
        assert f'<section id="{sid}">' in page
    assert page.count(plotly_js()) == 1  # plotly.js inline once; its bundle names URLs it never fetches here
    assert not re.search(r'<script[^>]+src=|<link[^>]+href="(?!data:)|<img|https?://', page.replace(plotly_js(), ""))
    assert "not available: " not in page.replace(plotly_js(), "")
    assert "0.8456" in section_of(page, "classifiers") and "0.1691" in section_of(page, "reduction")
    assert "zombie gore" in section_of(page, "reduction")
    assert "great, decent" in section_of(page, "neighbours")
    assert "(not in vocabulary)" in section_of(page, "neighbours")  # 'bad' has no glove neighbours
    assert f"{NEURAL}" in section_of(page, "confusion") and "(83.3%)" in section_of(page, "confusion")
    tsne = section_of(page, "tsne")
    assert tsne.count('class="plotly-graph-div"') == 4 and "misclassified by" in tsne
    # label names and human source names in the hover texts, legends and titles; no label ids
    assert "label negative" in tsne and "predicted positive · Rotten Tomatoes" in tsne
    assert '"name":"negative, misclassified"' in tsne and '"name":"label 0"' not in tsne
    assert "<h3>Words: word2vec CBOW (29 most frequent)</h3>" in tsne
    assert "<h3>Documents: bidirectional LSTM, attention pooling, on word2vec CBOW, pooled states" in tsne
    assert "Words: word2vec_cbow" not in tsne and "Documents: classify" not in tsne
    assert "← negative · positive →" in tsne  # the word maps' colour bar
    assert "<th>word2vec CBOW" in section_of(page, "neighbours")
    assert '"name":"bidirectional LSTM, attention pooling, on word2vec CBOW, validation"' in section_of(page, "curves")
    assert page.index('<section id="summary">') < page.index('<section id="corpus">')
    assert "<td>Rotten Tomatoes</td>" in section_of(page, "corpus")
    assert "Doc 5" in tsne and "Doc 5" in tsne and "frequency rank 1" in tsne  # hover texts
    assert "curve-classify-loss" in section_of(page, "curves")
    assert "&lt;b&gt;film" in section_of(page, "attention")
    assert section_of(page, "attention").count('class="doc"') == 2   # both candidates (attention_docs: 6)
    assert "Tree-LSTM" in section_of(page, "trees")
    assert labels == ["negative", "positive"] and set(words["method"]) == {"word2vec_cbow", "glove__ae"}
    # report.attention_docs: 1 shows one document, a right one (n // 2 = 0 misclassified), for both models.
    one = params.report.model_copy(update={"attention_docs": 1})
    attention = section_of(build(one, params.evaluate.probe_words, root)[0], "attention")
    assert attention.count('class="doc"') == 1 and "awful" in attention and "&lt;b&gt;film" not in attention


def test_missing_classifier_outputs_render_as_notes(report_fixture):
    params, root = report_fixture
    for rel in ("reports/scores/classify.json", "reports/classify/summary.json", "reports/classify/attention.json"):
        (root / rel).unlink()
    page, *_ = build(params.report, params.evaluate.probe_words, root)
    assert "not available: reports/scores/classify.json" in section_of(page, "classifiers")
    assert "not available: reports/classify/summary.json" in section_of(page, "summary")
    assert "not available: reports/classify/summary.json" in section_of(page, "confusion")
    assert "not available: reports/classify/attention.json" in section_of(page, "attention")
    assert "0.1691" in section_of(page, "reduction")  # the rest still renders


def test_unknown_method_or_model_in_params_is_an_error(report_fixture):
    params, root = report_fixture
    bad = params.model_copy(update={"report": params.report.model_copy(update={"methods": ["word2vec_cbow", "bert"]})})
    with pytest.raises(StageError, match=r"report\.methods: unknown method 'bert'"):
        build(bad.report, [], root)
    bad = params.report.model_copy(update={"confusion_models": ["nope"]})
    with pytest.raises(StageError, match=r"report\.confusion_models: unknown model 'nope'"):
        build(bad, [], root)
    bad = params.report.model_copy(update={"attention_model": BASELINE})
    with pytest.raises(StageError, match="has no attention weights"):
        build(bad, [], root)


def test_run_writes_the_page_and_one_png_per_map(report_fixture, tmp_path):
    params, root = report_fixture
    index, figures = tmp_path / "out" / "index.html", tmp_path / "out" / "figures"
    pngs = run(params, root=root, index=index, figures=figures)
    assert index.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in pngs) == sorted(p.name for p in figures.iterdir()) == [
        "tsne_docs_classify.png", "tsne_docs_doc2vec_dm.png", "tsne_words_glove__ae.png", "tsne_words_word2vec_cbow.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_stage_exits_with_one_line_on_an_unknown_method(tmp_path):
    import subprocess
    import sys

    (tmp_path / "params.yaml").write_text("report:\n  methods: [word2vec_cbow, word2vec]\n")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "stages.report"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: params.yaml: report.methods: unknown method 'word2vec'; allowed: word2vec_cbow, word2vec_skipgram, glove, "
        "fasttext, doc2vec_dm, doc2vec_dbow, pretrained or <method>__<reducer> with reducer pca|ae|dae|stacked_ae|vae"]
    assert not (tmp_path / "reports").exists()


def test_the_ensemble_row_shows_its_members_and_what_each_adds():
    row = "ensemble"
    models = {**CLASSIFY["models"], row: {
        "kind": "ensemble", "accuracy": 0.9, "accuracy_ci": [0.88, 0.92], "trained_on": "validation slice (...)",
        "ensemble": {"members": ["nbsvm", "docvec@doc2vec_dm"], "weights": {"nbsvm": [1.5], "docvec@doc2vec_dm": [0.25]},
                     "drop_one": {"nbsvm": 0.031, "docvec@doc2vec_dm": -0.002}}}}
    out = h.classifiers_section({"models": models}, SUMMARY)
    assert "ensemble: members" in out and "+1.500" in out and "+0.250" in out
    assert "3.1" in out and "validation (members&#x27; log-odds)" in out
