"""The classifier stages with a tree model and a Transformer beside an RNN, on the tiny workspace of
test_classify.py: their rows, the tree panel's candidates, both attention views on the same documents,
`predict`."""
import json

import numpy as np
import pytest
import yaml

from conftest import run_classifier_stages
from nlpdag.catalog.classify import ATTENTION, CLASSIFY_SCORES, CLASSIFY_PREDICTIONS, CLASSIFY_STATES, TREES, neural_dir
from nlpdag.catalog.ingest import CORPUS
from nlpdag.catalog.tokenise import TOKENS
from nlpdag.classify.predict import load_classifier, predict_texts
from nlpdag.io.tables import read_frame
from nlpdag.report.build import pick_examples
from test_classify import make_workspace

pytestmark = pytest.mark.usefixtures("one_thread")

KEYS = {"treelstm_rae": "treelstm-rae@word2vec_skipgram", "recnn_left": "recnn-left@random",
        "transformer": "transformer-1x8@word2vec_skipgram", "bigru_attention": "gru-bi-attention@word2vec_skipgram"}
MODELS = list(KEYS.values())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    make_workspace(root, 2, KEYS, ["nb_logreg"])
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["classify"].update(tree_segment=12, rae_sample=200)
    params["report"].update(tree_docs=2)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    logged = []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        summary = run_classifier_stages(root, log=logged.append)
    return root, summary, logged


def test_every_family_gets_a_scored_row(trained):
    root, _, logged = trained
    metrics = json.loads((root / CLASSIFY_SCORES).read_text())["models"]
    for name in MODELS:
        m = metrics[name]
        assert m["kind"] == "neural" and m["n"] == 20 and m["tokens_per_second"] > 0
        lo, hi = m["accuracy_ci"]
        assert lo <= m["accuracy"] <= hi and set(m["by_source"]) == {"imdb", "rt"}
    assert any(line.startswith("classify: recursive auto-encoder epoch 2/2") for line in logged)
    states = read_frame(root / CLASSIFY_STATES)
    sizes = {m: len(states.loc[states["model"] == m, "vector"].iloc[0]) for m in MODELS}
    assert sizes == {"treelstm-rae@word2vec_skipgram": 16, "recnn-left@random": 16,
                     "transformer-1x8@word2vec_skipgram": 8, "gru-bi-attention@word2vec_skipgram": 16}


def test_attention_views_share_their_documents(trained):
    """The candidates: both attending models (the recurrent one first) on the same short test documents,
    misclassified ones (by the first) first; the report shows the same picked documents for both."""
    root, _, _ = trained
    attention = json.loads((root / ATTENTION).read_text())
    by_model, wrong = {}, {}
    for a in attention:
        by_model.setdefault(a["model"], []).append(a["doc_id"])
        wrong.setdefault(a["model"], []).append(a["wrong"])
        assert len(a["tokens"]) == len(a["weights"]) and all(w >= 0 for w in a["weights"])
        if a["model"] == "gru-bi-attention@word2vec_skipgram":
            assert a["wrong"] == (a["predicted"] != a["label"])
    assert list(by_model) == ["gru-bi-attention@word2vec_skipgram", "transformer-1x8@word2vec_skipgram"]
    assert by_model["gru-bi-attention@word2vec_skipgram"] == by_model["transformer-1x8@word2vec_skipgram"]
    assert wrong["gru-bi-attention@word2vec_skipgram"] == wrong["transformer-1x8@word2vec_skipgram"]
    flags = wrong["gru-bi-attention@word2vec_skipgram"]
    assert len(flags) == 20 and flags == sorted(flags, reverse=True)  # every test document is short here
    shown = pick_examples(attention, 2)
    assert [e["model"] for e in shown] == ["gru-bi-attention@word2vec_skipgram"] * 2 + ["transformer-1x8@word2vec_skipgram"] * 2
    assert [e["doc_id"] for e in shown[:2]] == [e["doc_id"] for e in shown[2:]]
    assert [e["wrong"] for e in shown[:2]] == ([True, False] if any(flags) else [False, False])


def test_tree_panel_has_every_node(trained):
    """The candidates: every short test sentence (4 to tree_segment tokens) of the tree model chosen on
    the validation slice, misclassified ones first, each with every node's prediction."""
    root, _, _ = trained
    trees = json.loads((root / TREES).read_text())
    metrics = json.loads((root / CLASSIFY_SCORES).read_text())["models"]
    tree_models = {"treelstm_rae": "treelstm-rae@word2vec_skipgram", "recnn_left": "recnn-left@random"}
    best = max(tree_models.values(), key=lambda m: (metrics[m]["validation_accuracy"], m))
    best_key = next(k for k, m in tree_models.items() if m == best)
    assert trees == json.loads((root / neural_dir(best_key) / "trees.json").read_text())
    corpus, tokens = read_frame(root / CORPUS), read_frame(root / TOKENS)
    short = {d for d, s, t in zip(corpus["doc_id"], corpus["split"], tokens["tokens"]) if s == "test" and 4 <= len(t) <= 12}
    assert short and sorted(t["doc_id"] for t in trees) == sorted(short)
    for t in trees:
        n = len(t["tokens"])
        assert t["model"] == best and 4 <= n <= 12
        assert len(t["children"]) == n - 1 and len(t["node_predicted"]) == len(t["node_confidence"]) == 2 * n - 1
        assert sorted(c for pair in t["children"] for c in pair) == list(range(2 * n - 2))
        assert t["node_predicted"][-1] == t["predicted"]  # the root's prediction is the document's
        assert all(0.5 <= p <= 1.0 for p in t["node_confidence"])
        assert t["wrong"] == (t["predicted"] != t["label"])
    flags = [t["wrong"] for t in trees]
    assert flags == sorted(flags, reverse=True)  # misclassified first
    wrong, right = [t for t in trees if t["wrong"]], [t for t in trees if not t["wrong"]]
    assert pick_examples(trees, 2) == wrong[:1] + right[:2 - len(wrong[:1])]   # report.tree_docs: 2


@pytest.mark.parametrize("name", MODELS[:3])
def test_predict_rebuilds_every_family(trained, name):
    root, _, _ = trained
    corpus = read_frame(root / CORPUS)
    test = corpus[corpus["split"] == "test"]
    stage = read_frame(root / CLASSIFY_PREDICTIONS)
    stage = stage[stage["model"] == name]
    frame = predict_texts(load_classifier(name, root), test["text"].tolist())
    assert frame["label"].tolist() == [str(p) for p in stage["predicted"]]
    assert np.allclose(frame["confidence"], stage["confidence"], atol=1e-5)


def test_summary_tests_the_families_pairwise(trained):
    _, summary, _ = trained
    versus = summary["versus"]
    assert set(versus) == {"tree_vs_recurrent", "transformer_vs_recurrent", "learned_vs_ngrams"}
    assert versus["transformer_vs_recurrent"]["a"] == "transformer-1x8@word2vec_skipgram"
    assert versus["transformer_vs_recurrent"]["b"] == "gru-bi-attention@word2vec_skipgram"
    assert versus["tree_vs_recurrent"]["short_source"] in ("imdb", "rt")
    for test in versus.values():
        assert set(test["scopes"]) == {"overall", "imdb", "rt"}
        for t in test["scopes"].values():
            assert t["gain"] == pytest.approx(t["accuracy_a"] - t["accuracy_b"], abs=1e-4)
            assert 0 <= t["p_value"] <= 1 and t["significant"] == (t["p_value"] < 0.05)
    assert versus["tree_vs_recurrent"]["scopes"]["overall"]["n"] == 20
