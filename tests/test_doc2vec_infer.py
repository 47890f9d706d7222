"""Doc2Vec saved as plain data (settings JSON, vocabulary Parquet, weights .npz) and rebuilt for inference:
the rebuilt model infers a new text's vector as the trained one does, whatever PYTHONHASHSEED."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nlpdag.config.doc2vec import Doc2VecParams
from nlpdag.embeddings.doc2vec import tagged_documents, train_doc2vec
from nlpdag.embeddings.doc2vec_model import (WEIGHTS_FILE, infer_vectors, load_doc2vec, model_fingerprint,
                                             save_doc2vec)

WORDS = ["great", "awful", "film", "plot", "cast", "story", "moving", "dull", "the", "a", "was", "and"]


def toy(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.choice(WORDS, int(rng.integers(4, 12))).tolist() for _ in range(n)]


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("mode", ["dm", "dbow"])
def test_saved_doc2vec_infers_as_the_trained_model(tmp_path, mode):
    docs = toy()
    model = train_doc2vec(tagged_documents(docs, None), mode, Doc2VecParams(size=8, min_count=1, epochs=5, workers=1), 3)
    save_doc2vec(model, tmp_path / "m")
    with np.load(tmp_path / "m" / WEIGHTS_FILE, allow_pickle=False) as npz:
        assert {"vectors", "syn1neg"} <= set(npz.files)
    back = load_doc2vec(tmp_path / "m")
    assert back.wv.index_to_key == model.wv.index_to_key and back.dm == model.dm and back.epochs == 5
    assert np.array_equal(back.syn1neg, model.syn1neg) and np.array_equal(back.wv.vectors, model.wv.vectors)
    assert np.array_equal(back.cum_table, model.cum_table)
    # gensim's own inference, the same RNG state on both: the rebuilt model is the trained one
    for words in docs[:5]:
        model.random, back.random = np.random.RandomState(7), np.random.RandomState(7)
        assert cosine(model.infer_vector(words), back.infer_vector(words)) > 0.99
    np.testing.assert_array_equal(infer_vectors(back, docs[:5]), infer_vectors(model, docs[:5]))
    # a text's vector depends on it alone, not on the texts inferred before it
    np.testing.assert_array_equal(infer_vectors(back, [docs[4]])[0], infer_vectors(back, docs[:5])[4])
    assert model_fingerprint(tmp_path / "m") is not None and model_fingerprint(tmp_path / "nothing") is None


def test_inference_does_not_depend_on_the_hash_seed(tmp_path):
    docs = toy()
    model = train_doc2vec(tagged_documents(docs, None), "dbow", Doc2VecParams(size=8, min_count=1, epochs=3, workers=1), 0)
    save_doc2vec(model, tmp_path / "m")
    code = ("import sys, numpy as np; from pathlib import Path; from nlpdag.embeddings.doc2vec_model import "
            "infer_vectors, load_doc2vec; m = load_doc2vec(Path(sys.argv[1])); "
            "print(' '.join(f'{v:.6f}' for v in infer_vectors(m, [['great', 'film', 'plot']])[0]))")
    outs = {subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(outs) == 1


def test_dv_ngram_documents_hold_words_then_their_n_grams(tmp_path):
    from nlpdag.embeddings.doc2vec_model import ngram_documents

    assert ngram_documents([["not", "bad", "at", "all"]], 3) == [
        ["not", "bad", "at", "all", "not bad", "bad at", "at all", "not bad at", "bad at all"]]
    assert ngram_documents([["one"], []], 3) == [["one"], []]
    # word training off: the n-gram tokens are in the vocabulary, the saved model records its n
    docs = ngram_documents(toy(), 2)
    model = train_doc2vec(tagged_documents(docs, None), "ngram", Doc2VecParams(size=8, min_count=1, epochs=3, workers=1), 3)
    assert model.dm == 0 and model.dbow_words == 0 and any(" " in token for token in model.wv.index_to_key)
    save_doc2vec(model, tmp_path / "m", ngram_max=2)
    assert json.loads((tmp_path / "m" / "doc2vec.json").read_text())["ngram_max"] == 2
