"""Stages `w2v@cbow` and `w2v@skipgram`: gensim Word2Vec on the training split.

CBOW predicts a word from the mean of its context (fast, smooths over rare words); skip-gram
predicts each context word from the word (slower, better on semantics and rare words). Both use
negative sampling (`negative`) or hierarchical softmax (`hs`) and frequent-word subsampling (`sample`).
Output: `data/embeddings/w2v_<arch>.{parquet,txt}`, `reports/train/w2v_<arch>.json`.
"""
from __future__ import annotations

import sys

from gensim.models import Word2Vec

from stages.errors import StageError, cli_main
from stages.gensim_train import EpochLogger, corpus_file, write_keyed_vectors
from stages.params import Word2VecParams, load_params
from stages.vectors import Timer, write_train_info

ARCHS = {"cbow": 0, "skipgram": 1}


def train_word2vec(corpus_path: str, arch: str, params: Word2VecParams, seed: int,
                   callbacks: tuple = ()) -> Word2Vec:
    """Train on a LineSentence file; `arch` is cbow or skipgram."""
    if params.negative == 0 and not params.hs:
        raise StageError("word2vec.negative=0 and word2vec.hs=false leave no training objective")
    model = Word2Vec(vector_size=params.size, window=params.window, min_count=params.min_count,
                     sg=ARCHS[arch], negative=params.negative, hs=int(params.hs), sample=params.sample,
                     workers=params.workers, seed=seed, compute_loss=True)
    model.build_vocab(corpus_file=corpus_path)
    if not model.wv.index_to_key:
        raise StageError(f"word2vec: empty vocabulary (no token occurs word2vec.min_count={params.min_count} times)")
    if len(model.wv.index_to_key) < params.size:
        raise StageError(f"word2vec: vocabulary of {len(model.wv)} words is smaller than word2vec.size={params.size}")
    model.train(corpus_file=corpus_path, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=params.epochs, compute_loss=True, callbacks=list(callbacks))
    return model


@cli_main
def main() -> None:
    arch = sys.argv[1] if len(sys.argv) > 1 else ""
    if arch not in ARCHS:
        raise StageError(f"usage: python -m stages.word2vec {{{'|'.join(ARCHS)}}} (got {arch!r})")
    params = load_params()
    method = f"w2v_{arch}"
    logger = EpochLogger(method, params.word2vec.epochs)
    with corpus_file(seed=params.seed) as (path, _), Timer() as timer:
        model = train_word2vec(path, arch, params.word2vec, params.seed, callbacks=(logger,))
    write_keyed_vectors(method, model.wv)
    write_train_info(method, timer.seconds, logger.losses(), vocab_size=len(model.wv))
    print(f"{method}: {len(model.wv)} words x {model.vector_size} in {timer.seconds:.1f} s")


if __name__ == "__main__":
    main()
