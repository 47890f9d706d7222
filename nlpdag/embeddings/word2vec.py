"""Stages `word2vec@cbow` and `word2vec@skipgram`: gensim Word2Vec on the training split.

CBOW predicts a word from the mean of its context (fast, smooths over rare words); skip-gram
predicts each context word from the word (slower, better on semantics and rare words). Both use
negative sampling (`negative`) or hierarchical softmax (`hs`) and frequent-word subsampling (`sample`).
Output: `data/embeddings/word2vec_<arch>.{parquet,txt}`, `reports/train/word2vec_<arch>.json`.
"""
from __future__ import annotations


from gensim.models import Word2Vec

from nlpdag.errors import StageError
from nlpdag.training.threads import resolve_threads
from nlpdag.config.word2vec import Word2VecParams

ARCHS = {"cbow": 0, "skipgram": 1}


def train_word2vec(corpus_path: str, arch: str, params: Word2VecParams, seed: int,
                   callbacks: tuple = ()) -> Word2Vec:
    """Train on a LineSentence file; `arch` is cbow or skipgram."""
    if params.negative == 0 and not params.hs:
        raise StageError("word2vec.negative=0 and word2vec.hs=false leave no training objective")
    model = Word2Vec(vector_size=params.size, window=params.window, min_count=params.min_count,
                     sg=ARCHS[arch], negative=params.negative, hs=int(params.hs), sample=params.sample,
                     workers=resolve_threads(params.workers), seed=seed, compute_loss=True)
    model.build_vocab(corpus_file=corpus_path)
    if not model.wv.index_to_key:
        raise StageError(f"word2vec: empty vocabulary (no token occurs word2vec.min_count={params.min_count} times)")
    if len(model.wv.index_to_key) < params.size:
        raise StageError(f"word2vec: vocabulary of {len(model.wv)} words is smaller than word2vec.size={params.size}")
    model.train(corpus_file=corpus_path, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=params.epochs, compute_loss=True, callbacks=list(callbacks))
    return model
