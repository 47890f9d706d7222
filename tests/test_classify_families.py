"""The `classify` stage with a tree model and a Transformer beside an RNN, on the tiny workspace of
test_classify.py: their rows, the tree panel, both attention views on the same documents, `predict`."""
import json

import numpy as np
import pytest

from nlpdag import catalog
import stages.classify as classify_stage
from nlpdag.classify.paths import TREES
from nlpdag.classify.predict import load_classifier, predict_texts
from nlpdag.config.params import load_params as load_all_params
from nlpdag.io.tables import read_frame
from test_classify import make_workspace

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = ["treelstm-rae@word2vec_skipgram", "recnn-left@random", "transformer-1x8@word2vec_skipgram",
          "gru-bi-attention@word2vec_skipgram"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    make_workspace(root, 2, MODELS, ["nb_logreg"])
    params = (root / "params.yaml").read_text().replace("max_len: 30", "max_len: 30\n  tree_segment: 12\n  tree_docs: 2\n  rae_sample: 200")
    (root / "params.yaml").write_text(params)
    logged = []
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        summary = classify_stage.run(load_all_params(), log=logged.append)
    return root, summary, logged


def test_every_family_gets_a_scored_row(trained):
    root, _, logged = trained
    metrics = json.loads((root / catalog.CLASSIFY_METRICS).read_text())["models"]
    for name in MODELS:
        m = metrics[name]
        assert m["kind"] == "neural" and m["n"] == 20 and m["tokens_per_second"] > 0
        lo, hi = m["accuracy_ci"]
        assert lo <= m["accuracy"] <= hi and set(m["by_source"]) == {"imdb", "rt"}
    assert any(line.startswith("classify: recursive auto-encoder epoch 2/2") for line in logged)
    states = read_frame(root / catalog.CLASSIFY_STATES)
    sizes = {m: len(states.loc[states["model"] == m, "vector"].iloc[0]) for m in MODELS}
    assert sizes == {"treelstm-rae@word2vec_skipgram": 16, "recnn-left@random": 16,
                     "transformer-1x8@word2vec_skipgram": 8, "gru-bi-attention@word2vec_skipgram": 16}


def test_attention_views_share_their_documents(trained):
    root, _, _ = trained
    attention = json.loads((root / catalog.ATTENTION).read_text())
    by_model = {}
    for a in attention:
        by_model.setdefault(a["model"], []).append(a["doc_id"])
        assert len(a["tokens"]) == len(a["weights"]) and all(w >= 0 for w in a["weights"])
    assert set(by_model) == {"gru-bi-attention@word2vec_skipgram", "transformer-1x8@word2vec_skipgram"}
    assert by_model["gru-bi-attention@word2vec_skipgram"] == by_model["transformer-1x8@word2vec_skipgram"]
    assert len(by_model["gru-bi-attention@word2vec_skipgram"]) == 2


def test_tree_panel_has_every_node(trained):
    root, _, _ = trained
    trees = json.loads((root / TREES).read_text())
    metrics = json.loads((root / catalog.CLASSIFY_METRICS).read_text())["models"]
    assert len(trees) == 2
    tree_models = ["treelstm-rae@word2vec_skipgram", "recnn-left@random"]
    best = max(tree_models, key=lambda m: (metrics[m]["validation_accuracy"], m))
    for t in trees:
        n = len(t["tokens"])
        assert t["model"] == best and 4 <= n <= 12
        assert len(t["children"]) == n - 1 and len(t["node_predicted"]) == len(t["node_confidence"]) == 2 * n - 1
        assert sorted(c for pair in t["children"] for c in pair) == list(range(2 * n - 2))
        assert t["node_predicted"][-1] == t["predicted"]  # the root's prediction is the document's
        assert all(0.5 <= p <= 1.0 for p in t["node_confidence"])


@pytest.mark.parametrize("name", MODELS[:3])
def test_predict_rebuilds_every_family(trained, name):
    root, _, _ = trained
    corpus = read_frame(root / catalog.CORPUS)
    test = corpus[corpus["split"] == "test"]
    stage = read_frame(root / catalog.CLASSIFY_PREDICTIONS)
    stage = stage[stage["model"] == name]
    frame = predict_texts(load_classifier(name, root), test["text"].tolist())
    assert frame["label"].tolist() == [str(p) for p in stage["predicted"]]
    assert np.allclose(frame["confidence"], stage["confidence"], atol=1e-5)


def test_summary_tests_the_families_pairwise(trained):
    _, summary, _ = trained
    versus = summary["versus"]
    assert set(versus) == {"tree_vs_recurrent", "transformer_vs_recurrent"}
    assert versus["transformer_vs_recurrent"]["a"] == "transformer-1x8@word2vec_skipgram"
    assert versus["transformer_vs_recurrent"]["b"] == "gru-bi-attention@word2vec_skipgram"
    assert versus["tree_vs_recurrent"]["short_source"] in ("imdb", "rt")
    for test in versus.values():
        assert set(test["scopes"]) == {"overall", "imdb", "rt"}
        for t in test["scopes"].values():
            assert t["gain"] == pytest.approx(t["accuracy_a"] - t["accuracy_b"], abs=1e-4)
            assert 0 <= t["p_value"] <= 1 and t["significant"] == (t["p_value"] < 0.05)
    assert versus["tree_vs_recurrent"]["scopes"]["overall"]["n"] == 20
