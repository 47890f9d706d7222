"""The evaluation protocol (nlpdag/evaluation/protocol.py): order-free splits, bootstrap intervals, the paired
test behind "winner" / "tied", and choices that never look at the test split."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_classifier_stages
from nlpdag.catalog.classify import ATTENTION, CLASSIFY_SCORES, neural_dir
from nlpdag.catalog.ingest import CORPUS
from nlpdag.evaluation import protocol as evaluation
from nlpdag.text import corpus as ing
from nlpdag.config.data import DataParams

pytestmark = pytest.mark.usefixtures("one_thread")


def test_split_depends_on_the_documents_not_their_order(tiny_frame):
    params = DataParams(test_size=0.25, val_fraction=0.2)
    a, _, _ = ing.ingest(tiny_frame, params, seed=0)
    shuffled = tiny_frame.sample(frac=1.0, random_state=3).reset_index(drop=True).assign(doc_id=range(len(tiny_frame)))
    b, _, _ = ing.ingest(shuffled, params, seed=0)
    for frame in (a, b):
        assert (frame["split"] == "test").sum() == 10 and frame["validation"].sum() == 6
        assert not (frame["validation"] & (frame["split"] == "test")).any()
        assert (frame[frame["split"] == "test"].groupby(["label", "source"]).size() >= 2).all()
    by_text = lambda f: f.set_index("text")[["split", "validation"]].sort_index()  # noqa: E731
    assert by_text(a).equals(by_text(b))
    c, _, _ = ing.ingest(tiny_frame, params, seed=1)
    assert not by_text(a).equals(by_text(c))


def test_hash_split_shares_among_strata_by_largest_remainder():
    strata = np.array(["a"] * 7 + ["b"] * 3)
    keys = evaluation.doc_keys([str(i) for i in range(10)], 0, "x")
    chosen = evaluation.hash_split(strata, keys, 0.2)
    assert chosen.sum() == 2 and chosen[:7].sum() == 1 and chosen[7:].sum() == 1
    a_members = np.flatnonzero(strata == "a")
    assert chosen[a_members[np.argmin(keys[a_members])]]


def test_bootstrap_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(150):
        y = rng.integers(0, 2, 300)
        pred = np.where(rng.random(300) < 0.8, y, 1 - y)   # true accuracy 0.8
        lo, hi = evaluation.bootstrap_ci(y, pred, 2, seed=trial, rounds=400)["accuracy_ci"]
        covered += lo <= 0.8 <= hi
    assert 0.88 <= covered / 150 <= 0.99
    ci = evaluation.bootstrap_ci(y, pred, 2, seed=1)
    assert ci == evaluation.bootstrap_ci(y, pred, 2, seed=1)  # seeded
    lo, hi = ci["macro_f1_ci"]
    from sklearn.metrics import f1_score
    assert lo <= f1_score(y, pred, average="macro") <= hi
    assert evaluation.bootstrap_ci(y[:0], pred[:0], 2) == {"accuracy_ci": None, "macro_f1_ci": None}


def test_mcnemar_and_the_verdict():
    y = np.zeros(100, int)
    a = y.copy()
    b = y.copy()
    b[:10] = 1                           # b wrong on 10 documents a gets right, never the reverse
    assert evaluation.mcnemar(y, a, b) == pytest.approx(2 * 0.5 ** 10)
    assert evaluation.mcnemar(y, a, a) == 1.0
    v = evaluation.verdict(y, {"a": a, "b": b})
    assert v["winner"] == "a" and v["tied_with"] == [] and v["p_value"] < 0.05
    c = y.copy()
    c[:2] = 1                            # two documents apart: not separable
    v = evaluation.verdict(y, {"a": a, "b": b, "c": c})
    assert v["winner"] is None and v["best"] == "a" and v["tied_with"] == ["c"] and v["runner_up"] == "c"


def test_select_prefers_the_smaller_value_on_ties():
    assert evaluation.select([10.0, 1.0, 0.1], lambda C: {0.1: 0.5, 1.0: 0.8, 10.0: 0.8}[C]) == \
        (1.0, {0.1: 0.5, 1.0: 0.8, 10.0: 0.8})


def test_no_choice_depends_on_the_test_labels(tmp_path, monkeypatch):
    """The same workspace twice, the second with the test split's labels shuffled: every C, epoch
    count and default model is the same; only the test scores move."""
    from test_classify import make_workspace

    choices = []
    for k, root in enumerate((tmp_path / "a", tmp_path / "b")):
        root.mkdir()
        make_workspace(root, 2, {"gru_mean": "gru-mean@random", "lstm_attention": "lstm-attention@word2vec_skipgram"},
                       ["nb_logreg", "nbsvm", "mean", "docvec"])
        if k:
            corpus = pd.read_parquet(root / CORPUS)
            test = corpus["split"] == "test"
            corpus.loc[test, "label_id"] = np.random.default_rng(5).permutation(corpus.loc[test, "label_id"].to_numpy())
            corpus.to_parquet(root / CORPUS, index=False)
        monkeypatch.chdir(root)
        summary = run_classifier_stages(root)
        metrics = json.loads((root / CLASSIFY_SCORES).read_text())["models"]
        attention = json.loads((root / ATTENTION).read_text())
        choices.append(({n: (m.get("C"), m.get("validation_accuracy"), m.get("epochs")) for n, m in metrics.items()},
                        summary["best_neural"], {a["model"] for a in attention},
                        {n: m["accuracy"] for n, m in metrics.items()}))
    assert choices[0][:3] == choices[1][:3]
    assert choices[0][3] != choices[1][3]
    for key in ("gru_mean", "lstm_attention"):  # each neural@<key> stage: the same model, the same probabilities
        a, b = (pd.read_parquet(root / neural_dir(key) / "proba.parquet") for root in (tmp_path / "a", tmp_path / "b"))
        assert a["doc_id"].tolist() == b["doc_id"].tolist()
        assert np.array_equal(np.stack(a["proba"]), np.stack(b["proba"]))


def test_neural_vs_baseline_is_a_paired_test_of_the_best_deep_row():
    from nlpdag.evaluation.rows import neural_vs_baseline

    y = np.array([0, 1] * 50)
    base = y.copy()
    base[:30] = 1 - base[:30]          # 70% right
    deep = y.copy()
    deep[:5] = 1 - deep[:5]            # 95% right, and right wherever the baseline is
    preds = {"nbsvm": base, "ensemble": deep, "lstm-max@random": base}
    kinds = {"nbsvm": "baseline", "ensemble": "ensemble", "lstm-max@random": "neural"}
    v = neural_vs_baseline(y, preds, kinds, "nbsvm")
    assert v["row"] == "ensemble" and v["gain"] == 0.25 and v["significant"] and v["p_value"] < 1e-6
    same = neural_vs_baseline(y, {"nbsvm": base, "lstm-max@random": base}, kinds, "nbsvm")
    assert same["gain"] == 0.0 and same["p_value"] == 1.0 and not same["significant"]
    assert neural_vs_baseline(y, {"nbsvm": base}, kinds, "nbsvm") is None


def _chance_split(n_fit: int, n_val: int = 200, n_test: int = 200, seed: int = 0):
    """A two-class Dataset (60% majority) with `n_fit` fitting documents, a validation slice and a test split."""
    from nlpdag.evaluation.rows import Dataset

    n = n_fit + n_val + n_test
    y = (np.random.default_rng(seed).random(n) < 0.4).astype(np.int64)
    train, validation = np.arange(n) < n_fit + n_val, np.arange(n) < n_val
    return Dataset(np.arange(n), y, pd.Series([None] * n, dtype=object), [[] for _ in range(n)], train,
                   ["negative", "positive"], validation)


def _row(name: str, kind: str, data, right: float, seed: int, epochs: int | None = None, trained: int = 0):
    """A row right on a `right` share of documents (the others: the wrong class), validation and test alike."""
    from nlpdag.evaluation.rows import Result

    rng = np.random.default_rng(seed)
    pred = np.where(rng.random(len(data.y)) < right, data.y, 1 - data.y)
    proba = np.eye(2, dtype=np.float32)[pred] * 0.8 + 0.1
    info = {} if epochs is None else {"epochs": epochs}
    return Result(name, kind, proba[data.test], 1.0, extra={"history": [{}] * trained},
                  val_proba=proba[data.validation], info=info)


def test_summary_flags_a_neural_row_at_chance_and_names_the_likely_cause():
    from nlpdag.evaluation.rows import score_results, summarise

    data = _chance_split(n_fit=240)
    results = [_row("rnn=gru", "neural", data, 0.5, 1, epochs=3, trained=5),
               _row("transformer=t", "neural", data, 0.95, 2, epochs=3, trained=5),
               _row("tfidf_logreg", "baseline", data, 0.5, 3)]  # a baseline is never flagged: it is the reference
    summary = summarise(score_results(results, data), results, data)
    assert set(summary["at_chance"]) == {"rnn=gru"}
    reason = summary["at_chance"]["rnn=gru"]
    assert reason.startswith("at chance on the validation slice (") and "vs majority 0.6" in reason
    assert reason.endswith("240 training documents are likely too few")


def test_at_chance_blames_few_epochs_when_documents_are_plenty():
    from nlpdag.evaluation.rows import at_chance

    data = _chance_split(n_fit=2000)
    still_improving = _row("rnn=gru", "neural", data, 0.5, 1, epochs=2, trained=2)
    stopped_early = _row("rnn=lstm", "neural", data, 0.5, 1, epochs=1, trained=4)
    found = at_chance([still_improving, stopped_early], data)
    assert found["rnn=gru"].endswith("2 epochs are likely too few (it was still improving at the last one)")
    assert "2000 training documents" in found["rnn=lstm"] and "check its settings" in found["rnn=lstm"]
    assert at_chance([still_improving], dataclasses.replace(data, validation=None)) == {}  # nothing to judge on
