"""A trained Doc2Vec kept for inference, and inference itself, apart from training (so `classify` and
`nlpdag predict` can read it without the doc2vec stage's params): gensim's own format loads by running code,
so `save_doc2vec` writes the settings as JSON, the vocabulary with its counts as Parquet and the weights as
a .npz read with allow_pickle=False; `load_doc2vec` rebuilds a Doc2Vec from them; `infer_vectors` is
gensim's `infer_vector`, reproducible across processes.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
from gensim.models.doc2vec import Doc2Vec
from gensim.models.doc2vec_inner import train_document_dbow, train_document_dm
from gensim.models.keyedvectors import pseudorandom_weak_vector

from nlpdag.catalog.embeddings import DOC2VEC_SETTINGS
from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path, read_json, read_table, write_json, write_table


NGRAM_JOIN = " "   # "not bad": a token never holds a space, so an n-gram never collides with a word


def ngram_documents(docs: list[list[str]], ngram_max: int) -> list[list[str]]:
    """Each document's words followed by its 2..ngram_max-grams (words joined by a space)."""
    return [words + [NGRAM_JOIN.join(words[i:i + n]) for n in range(2, ngram_max + 1) for i in range(len(words) - n + 1)]
            for words in docs]


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def infer_vectors(model: Doc2Vec, docs: Sequence[Sequence[str]]) -> np.ndarray:
    """(n, vector_size) float32: gensim's `infer_vector` of each document, made reproducible across
    processes. gensim seeds the starting vector with Python's `hash` of the text, which changes with
    PYTHONHASHSEED (so `nlpdag predict` would answer differently per run): here a stable digest seeds it;
    the negative samples come from the model's RNG, reset to `model.seed` per document so that a
    document's vector depends on its text alone, not on what was inferred before it."""
    if model.dm_concat:
        raise StageError("doc2vec: dm_concat models are not supported")
    out = np.zeros((len(docs), model.vector_size), dtype=np.float32)
    delta = (model.alpha - model.min_alpha) / max(model.epochs - 1, 1)
    lockf = np.ones(1, dtype=np.float32)
    for i, words in enumerate(docs):
        words = list(words)
        model.random = np.random.RandomState(model.seed)
        # an empty text would make gensim draw its start from a global RNG
        start = pseudorandom_weak_vector(model.vector_size, seed_string=" ".join(words) or "\0", hashfxn=_stable_hash)
        vector = start.reshape(1, -1).astype(np.float32)
        work = np.zeros(model.layer1_size, dtype=np.float32)
        neu1 = np.zeros(model.layer1_size, dtype=np.float32)
        alpha = model.alpha
        for _ in range(model.epochs):
            if model.sg:
                train_document_dbow(model, words, [0], alpha, work, learn_words=False, learn_hidden=False,
                                    doctag_vectors=vector, doctags_lockf=lockf)
            else:
                train_document_dm(model, words, [0], alpha, work, neu1, learn_words=False, learn_hidden=False,
                                  doctag_vectors=vector, doctags_lockf=lockf)
            alpha -= delta
        out[i] = vector[0]
    return out


# ---- the model, saved as plain data -----------------------------------------------------------------------

VOCAB_FILE, WEIGHTS_FILE = "vocab.parquet", "weights.npz"
# Doc2Vec's constructor arguments that inference depends on (the rest only steer training)
SETTINGS = ("vector_size", "window", "min_count", "negative", "hs", "sample", "seed", "epochs", "alpha",
            "min_alpha", "ns_exponent", "shrink_windows", "dbow_words", "dm_concat", "dm_tag_count")


def _weights(model: Doc2Vec) -> dict[str, np.ndarray]:
    arrays = {"vectors": model.wv.vectors}  # PV-DM's context words; PV-DBOW's skip-gram words (unused by inference)
    if model.negative:
        arrays["syn1neg"] = model.syn1neg
    if model.hs:
        arrays["syn1"] = model.syn1
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}


def fingerprint(arrays: dict[str, np.ndarray]) -> str:
    """A digest of the weights: a classifier fitted on one training's vectors checks it serves that one."""
    digest = hashlib.blake2b(digest_size=8)
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def save_doc2vec(model: Doc2Vec, folder: Path, ngram_max: int | None = None) -> None:
    """What `load_doc2vec` needs, in a fresh `folder` (replaced whole, so no file of an older model stays):
    doc2vec.json (settings, fingerprint), vocab.parquet (token, count in gensim's index order),
    weights.npz (vectors, syn1neg and/or syn1). The trained document vectors are data/docvecs'.
    `ngram_max`: DV-ngram's, recorded so that a new text gets its n-grams before inference."""
    if model.dm_concat:
        raise StageError("doc2vec: dm_concat models are not supported")
    arrays = _weights(model)
    settings = {k: getattr(model, k) for k in SETTINGS}
    settings.update(dm=int(model.dm), dm_mean=int(model.cbow_mean), corpus_count=int(model.corpus_count))
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tokens = list(model.wv.index_to_key)
        counts = [int(model.wv.get_vecattr(t, "count")) for t in tokens]
        write_table(pa.table({"token": pa.array(tokens, pa.string()), "count": pa.array(counts, pa.int64())}),
                    tmp / VOCAB_FILE)
        with atomic_path(tmp / WEIGHTS_FILE) as path, open(path, "wb") as f:
            np.savez(f, **arrays)
        write_json({"settings": settings, "fingerprint": fingerprint(arrays), "words": len(tokens), "ngram_max": ngram_max,
                    "inference": "Doc2Vec infer_vector (nlpdag.embeddings.doc2vec.infer_vectors)"},
                   tmp / DOC2VEC_SETTINGS)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_doc2vec(folder: Path) -> Doc2Vec:
    """The Doc2Vec `save_doc2vec` saved, rebuilt from its settings and counts (the vocabulary, its
    negative-sampling table and downsampling rates as training had them), its weights put back: ready for
    `infer_vectors`. Its `dv` is empty (the trained document vectors are data/docvecs')."""
    try:
        meta = read_json(folder / DOC2VEC_SETTINGS)
        table = read_table(folder / VOCAB_FILE)
        with np.load(folder / WEIGHTS_FILE, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        settings = dict(meta["settings"])
    except (OSError, KeyError, ValueError) as exc:
        raise StageError(f"{folder}: not a saved Doc2Vec model ({exc.__class__.__name__}: {exc}; "
                         f"rerun: dvc repro doc2vec)") from None
    tokens, counts = table.column("token").to_pylist(), table.column("count").to_pylist()
    corpus_count = settings.pop("corpus_count", 0)
    model = Doc2Vec(**settings, workers=1)
    # gensim sorts by descending count, ties in reverse order of arrival: fed reversed, they keep the saved order
    model.build_vocab_from_freq(dict(zip(reversed(tokens), reversed(counts))), corpus_count=corpus_count)
    index = {t: i for i, t in enumerate(tokens)}
    order = np.array([index[t] for t in model.wv.index_to_key], dtype=np.int64)
    if len(order) != len(tokens) or ("syn1" in arrays and not np.array_equal(order, np.arange(len(tokens)))):
        raise StageError(f"{folder}: its vocabulary does not rebuild as saved (rerun: dvc repro doc2vec)")
    model.wv.vectors = np.ascontiguousarray(arrays["vectors"][order])
    model.wv.norms = None
    if "syn1neg" in arrays:
        model.syn1neg = np.ascontiguousarray(arrays["syn1neg"][order])
    if "syn1" in arrays:
        model.syn1 = np.ascontiguousarray(arrays["syn1"])
    return model


def model_fingerprint(folder: Path) -> str | None:
    """The fingerprint a saved model's doc2vec.json records (None: no saved model), without loading it."""
    path = folder / DOC2VEC_SETTINGS
    return read_json(path).get("fingerprint") if path.is_file() else None
