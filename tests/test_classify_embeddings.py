"""The classifier stages on every kind of embedding a spec names: a method, a Doc2Vec method's word
vectors (once broken: it looked for doc2vec_vec_dbow.parquet), a reduction, `pretrained` and `random`;
each row's transductive flag; `nlpdag predict` gives the stage's probabilities."""
import json

import numpy as np
import pyarrow as pa
import pytest
import yaml

from conftest import run_classifier_stages
from nlpdag.catalog.classify import CLASSIFY_SCORES, PROBA, neural_dir
from nlpdag.catalog.embeddings import docvecs_path
from nlpdag.catalog.ingest import CORPUS
from nlpdag.classify.neural import stacked
from nlpdag.classify.predict import load_classifier, predict_texts
from nlpdag.io.tables import read_frame, read_table, write_table
from nlpdag.io.vectors import vectors_table
from nlpdag.names import parse_embedding
from test_classify import make_workspace

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = {"gru_dbow": "gru-max@doc2vec_dbow", "lstm_dm": "lstm-bi-attention@doc2vec_dm",
          "rnn_reduced": "rnn-mean@glove__vae", "tree_pretrained": "recnn-balanced@pretrained",
          "transformer_random": "transformer-1x8@random"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("embeddings")
    make_workspace(root, 2, MODELS, ["nb_logreg", "mean"])
    tokens = read_frame(root / "data/vocab.parquet", columns=["token"])["token"].tolist()
    rng = np.random.default_rng(3)
    for name in ("doc2vec_dm", "doc2vec_dbow", "glove__vae", "pretrained"):
        write_table(vectors_table(tokens, rng.normal(size=(len(tokens), 6))), root / parse_embedding(name).path())
    # doc2vec.train_on_all: PV-DBOW's document vectors of the test texts were trained, not inferred
    path = root / docvecs_path("dbow")
    table = read_table(path)
    write_table(table.set_column(table.column_names.index("inferred"), "inferred",
                                 pa.array(np.zeros(len(table), bool))), path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["classify"].update(epochs=2, baseline_methods=["doc2vec_dbow", "glove__vae"], transformer_heads=2)
    params["pretrained"] = {"path": "data/raw/vectors.txt"}  # as a user would (the stage's output is written above)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_classifier_stages(root)
    return root


def test_every_embedding_kind_trains_and_says_whether_it_saw_the_test_texts(trained):
    metrics = json.loads((trained / CLASSIFY_SCORES).read_text())["models"]
    assert set(MODELS.values()) <= set(metrics)
    for spec in MODELS.values():
        assert metrics[spec]["kind"] == "neural" and 0 <= metrics[spec]["accuracy"] <= 1
    # Trained beside the test texts: PV-DBOW's word vectors under train_on_all, not PV-DM's (inferred here).
    assert metrics["gru-max@doc2vec_dbow"]["transductive"] is True
    assert metrics["mean@doc2vec_dbow"]["transductive"] is True
    assert metrics["lstm-bi-attention@doc2vec_dm"]["transductive"] is False
    for spec in ("rnn-mean@glove__vae", "recnn-balanced@pretrained", "transformer-1x8@random", "mean@glove__vae"):
        assert metrics[spec]["transductive"] is False, spec
    assert metrics["transformer-1x8@random"]["representation_seconds"] is None


def test_predict_gives_the_stage_s_probabilities_for_every_family(trained, monkeypatch):
    monkeypatch.chdir(trained)
    corpus = read_frame(CORPUS)
    test = corpus[corpus["split"] == "test"]
    for key, spec in MODELS.items():
        table = read_table(neural_dir(key) / PROBA)
        parts = np.array(table.column("part").to_pylist())
        stage = stacked(table.column("proba"))[parts == "test"]
        clf = load_classifier(key, trained)
        assert clf.name == spec and load_classifier(spec, trained).key == key
        frame = predict_texts(clf, test["text"].tolist())
        np.testing.assert_allclose(frame[[f"p_{label}" for label in clf.labels]].to_numpy(), stage, atol=1e-5,
                                   err_msg=spec)
