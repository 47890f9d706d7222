"""nlpdag/names.py: the one owner of model and embedding names (parse, print, human words), and the
classify params that read them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from nlpdag.catalog.embeddings import METHODS
from nlpdag.catalog.reduce import REDUCERS
from nlpdag.config.classify import ClassifyParams
from nlpdag.config.params import parse_params
from nlpdag.errors import StageError
from nlpdag.names import (MODEL_KEY, SPEC_HELP, ModelSpec, family, human, is_model,
                          parse_embedding, parse_model, row_embeddings, split_members)

ROOT = Path(__file__).resolve().parents[1]


# ---- embeddings ---------------------------------------------------------------------------------------

def test_random_embedding():
    emb = parse_embedding("random")
    assert (emb.name, emb.method, emb.reducer) == ("random", None, None)
    assert emb.random and emb.doc2vec_mode is None and emb.path() is None
    assert emb.human == "random initialisation"


@pytest.mark.parametrize("method", METHODS)
def test_every_method(method, tmp_path):
    emb = parse_embedding(method)
    assert (emb.name, emb.method, emb.reducer) == (method, method, None)
    assert not emb.random
    assert emb.path() == Path("data/embeddings") / f"{method}.parquet"
    assert emb.path(tmp_path) == tmp_path / "data/embeddings" / f"{method}.parquet"
    assert emb.human and emb.human != method


@pytest.mark.parametrize("reducer", REDUCERS)
def test_every_reduction(reducer):
    name = f"word2vec_cbow__{reducer}"
    emb = parse_embedding(name)
    assert (emb.name, emb.method, emb.reducer) == (name, "word2vec_cbow", reducer)
    assert emb.producer == "reduce"
    assert emb.path() == Path("data/reduced") / f"{name}.parquet"
    assert emb.human.startswith("word2vec CBOW, reduced by ")


@pytest.mark.parametrize("name, mode", [("doc2vec_dm", "dm"), ("doc2vec_dbow", "dbow"), ("doc2vec_dbow__pca", "dbow"),
                                        ("word2vec_skipgram", None), ("glove", None), ("pretrained", None),
                                        ("random", None)])
def test_doc2vec_word_vectors(name, mode):
    assert parse_embedding(name).doc2vec_mode == mode


@pytest.mark.parametrize("name, stage", [("word2vec_cbow", "word2vec@cbow"), ("word2vec_skipgram", "word2vec@skipgram"),
                                         ("doc2vec_dm", "doc2vec@dm"), ("doc2vec_dbow", "doc2vec@dbow"),
                                         ("glove", "glove"), ("fasttext", "fasttext"), ("pretrained", "pretrained"),
                                         ("glove__vae", "reduce")])
def test_producer_is_a_dvc_stage(name, stage):
    assert parse_embedding(name).producer == stage


def test_pretrained_embedding():
    emb = parse_embedding("pretrained")
    assert emb.method == "pretrained" and emb.human == "pre-trained vectors"


@pytest.mark.parametrize("name, words", [
    ("glove__stacked_ae", "GloVe, reduced by stacked auto-encoder"),
    ("word2vec_skipgram", "word2vec skip-gram"),
    ("doc2vec_dbow__vae", "Doc2Vec PV-DBOW, reduced by variational auto-encoder"),
    ("fasttext__pca", "FastText, reduced by PCA"),
    ("pretrained", "pre-trained vectors"),
])
def test_embedding_human(name, words):
    assert human(name) == words == parse_embedding(name).human


def test_embedding_errors():
    with pytest.raises(ValueError, match="unknown reducer 'sae'"):
        parse_embedding("glove__sae")
    with pytest.raises(ValueError, match="unknown embedding 'glov'"):
        parse_embedding("glov")
    with pytest.raises(ValueError, match="unknown embedding"):
        parse_embedding("random__pca")
    with pytest.raises(ValueError, match="allowed: random"):
        parse_embedding("")


# ---- model specs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention"])
def test_recurrent_specs(cell, bi, pooling):
    spec = f"{cell}{'-bi' if bi else ''}-{pooling}@glove"
    m = parse_model(spec)
    assert m == ModelSpec(spec, "rnn", parse_embedding("glove"), cell=cell, bidirectional=bi, pooling=pooling)
    assert m.attends == (pooling == "attention")
    assert family(spec) == "rnn" and is_model(spec)
    assert m.human.endswith(", on GloVe") and f"{pooling} pooling" in m.human
    assert m.human.startswith("bidirectional ") == bi


@pytest.mark.parametrize("cell", ["treelstm", "recnn"])
@pytest.mark.parametrize("tree", ["balanced", "left", "right", "rae"])
def test_tree_specs(cell, tree):
    spec = f"{cell}-{tree}@word2vec_cbow__ae"
    m = parse_model(spec)
    assert (m.family, m.cell, m.tree, m.pooling, m.layers) == ("tree", cell, tree, None, None)
    assert m.embedding == parse_embedding("word2vec_cbow__ae")
    assert not m.attends and family(spec) == "tree"
    assert m.human.endswith("trees, on word2vec CBOW, reduced by plain auto-encoder")


def test_transformer_spec():
    m = parse_model("transformer-2x128@word2vec_skipgram")
    assert (m.family, m.layers, m.d_model, m.cell, m.pooling) == ("transformer", 2, 128, None, None)
    assert m.attends and family(m.spec) == "transformer"
    assert human(m.spec) == "Transformer encoder (2 layers of width 128), on word2vec skip-gram"


@pytest.mark.parametrize("embedding", ["random", "pretrained", "doc2vec_dm", "glove__vae", "fasttext"])
def test_every_embedding_kind_in_a_spec(embedding):
    m = parse_model(f"gru-mean@{embedding}")
    assert m.embedding == parse_embedding(embedding)
    assert m.human == f"GRU, mean pooling, on {parse_embedding(embedding).human}"


@pytest.mark.parametrize("spec, words", [
    ("lstm-bi-attention@word2vec_skipgram", "bidirectional LSTM, attention pooling, on word2vec skip-gram"),
    ("rnn-last@random", "plain RNN, last pooling, on random initialisation"),
    ("treelstm-rae@glove", "Tree-LSTM over recursive auto-encoder trees, on GloVe"),
    ("recnn-left@doc2vec_dbow__pca", "recursive NN over left-branching trees, on Doc2Vec PV-DBOW, reduced by PCA"),
])
def test_model_human(spec, words):
    assert human(spec) == words


def test_model_errors():
    with pytest.raises(ValueError, match="unknown reducer 'sae'"):
        parse_model("lstm-max@glove__sae")
    with pytest.raises(ValueError, match=r"'lstmx-max@glove' is not "):
        parse_model("lstmx-max@glove")           # unknown family
    with pytest.raises(ValueError, match=r"'cnn-max@glove' is not "):
        parse_model("cnn-max@glove")
    with pytest.raises(ValueError, match=re.escape(SPEC_HELP)):
        parse_model("lstm-max")                  # no '@'
    with pytest.raises(ValueError, match="unknown embedding 'foo'"):
        parse_model("lstm-max@foo")
    for bad in ("lstm-bi@glove", "treelstm-max@glove", "transformer-0x8@glove", "transformer-2@glove",
                "lstm-max-bi@glove", "@glove", "lstm-max@"):
        assert not is_model(bad), bad
        with pytest.raises(ValueError):
            parse_model(bad)


def test_family_of_other_rows():
    assert family("nbsvm") is None and family("mean@glove") is None
    assert family("ensemble") is None


# ---- baselines and ensembles -----------------------------------------------------------------------------

def test_ensemble_names():
    members = ["nbsvm", "lstm-bi-max@glove", "docvec@doc2vec_dm+doc2vec_dbow"]
    assert split_members("nbsvm+lstm-bi-max@glove+docvec@doc2vec_dm+doc2vec_dbow") == members
    # the row is `ensemble` whatever its members (they are in its scores' ensemble.members)
    assert human("ensemble") == "ensemble (logistic regression over its members' log-odds)"
    assert row_embeddings("ensemble") == []


def test_baseline_names():
    assert human("tfidf_logreg") == "TF-IDF + logistic regression"
    assert human("mean@glove") == "mean word vector + logistic regression, on GloVe"
    assert human("idf_mean@word2vec_cbow__pca") == ("IDF-weighted mean word vector + logistic regression, "
                                                     "on word2vec CBOW, reduced by PCA")
    assert row_embeddings("tfidf_logreg") == [] and row_embeddings("nbsvm") == []
    assert row_embeddings("mean@glove") == [parse_embedding("glove")]
    assert human("something else") == "something else"    # unknown names as they are


# ---- one owner: no other module parses specs -------------------------------------------------------------

def test_no_other_module_compiles_a_spec_regex():
    offenders = []
    for path in sorted((ROOT / "nlpdag").rglob("*.py")):
        if path == ROOT / "nlpdag" / "names.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "re.compile(" in line and re.search(r"lstm|treelstm|transformer|attention", line, re.IGNORECASE):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "model specs are parsed in nlpdag/names.py only:\n" + "\n".join(offenders)


# ---- ClassifyParams --------------------------------------------------------------------------------------

def test_models_list_is_rejected():
    with pytest.raises(StageError) as err:
        parse_params({"classify": {"models": ["lstm-max@glove"]}})
    message = str(err.value)
    assert "classify.models" in message and "mapping" in message
    assert "\n" not in message


def test_model_key_with_at_is_rejected():
    with pytest.raises(StageError, match=r"classify\.models"):
        parse_params({"classify": {"models": {"lstm-max@glove": "lstm-max@glove"}}})
    assert not MODEL_KEY.match("lstm-max@glove") and MODEL_KEY.match("bilstm_max-2")


def test_model_spec_and_duplicates_are_checked():
    with pytest.raises(StageError, match="unknown reducer 'sae'"):
        parse_params({"classify": {"models": {"a": "lstm-max@glove__sae"}}})
    with pytest.raises(StageError, match="listed twice"):
        parse_params({"classify": {"models": {"a": "lstm-max@glove", "b": "lstm-max@glove"}}})
    with pytest.raises(StageError, match="transformer_heads"):
        parse_params({"classify": {"models": {"t": "transformer-1x6@random"}, "transformer_heads": 4}})
    ok = parse_params({"classify": {"models": {"a": "lstm-max@glove", "t": "transformer-1x8@random"}}})
    assert ok.classify.models == {"a": "lstm-max@glove", "t": "transformer-1x8@random"}


def test_recipe_keys_are_the_estimators():
    from nlpdag.models.classifier import Recipe

    assert sorted(ClassifyParams().recipe()) == sorted(Recipe.keys())
    assert ClassifyParams().recipe() == {k: getattr(Recipe(), k) for k in Recipe.keys()}
