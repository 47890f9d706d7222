"""gensim FastText (skip-gram) with character n-grams.

A word's vector is the sum of its own vector and those of its character n-grams (min_n..max_n),
so the full model, kept in Facebook's format as `data/models/fasttext.bin`, gives vectors to unseen words (misspellings,
rare inflections) later, in the classifier and in `nlpdag similar`.
Output: `data/embeddings/fasttext.{parquet,txt}`, the model, `reports/train/fasttext.json`.
"""
from __future__ import annotations

import numpy as np
from gensim.models import FastText

from nlpdag.errors import StageError
from nlpdag.training.threads import resolve_threads
from nlpdag.config.fasttext import FasttextParams

UNSEEN_PROBES = 1000   # typo probes: made from the most frequent words


def train_fasttext(corpus_path: str, params: FasttextParams, seed: int, callbacks: tuple = ()) -> FastText:
    if params.max_n and params.max_n < params.min_n:
        raise StageError(f"fasttext.max_n={params.max_n} is smaller than fasttext.min_n={params.min_n}")
    model = FastText(vector_size=params.size, window=params.window, min_count=params.min_count, sg=1,
                     min_n=params.min_n, max_n=params.max_n, bucket=params.bucket, negative=params.negative,
                     sample=params.sample, workers=resolve_threads(params.workers), seed=seed)
    model.build_vocab(corpus_file=corpus_path)
    if not model.wv.index_to_key:
        raise StageError(f"fasttext: empty vocabulary (no token occurs fasttext.min_count={params.min_count} times)")
    model.train(corpus_file=corpus_path, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                epochs=params.epochs, callbacks=list(callbacks))
    return model


def misspelling(word: str) -> str:
    """A typo of `word`: its middle letter doubled ("brilliant" -> "brillliant")."""
    middle = len(word) // 2
    return word[:middle] + word[middle] + word[middle:]


def unseen_word_scores(model: FastText, words: list[str], n: int = 10) -> dict:
    """FastText's vectors for words it never saw: for each word (in the vocabulary, 6+ letters), a typo
    that is not; the share of typos whose nearest vocabulary neighbours (top n) include the word."""
    probes = [(w, misspelling(w)) for w in words if len(w) >= 6 and w.isalpha()]
    probes = [(w, m) for w, m in probes if m not in model.wv.key_to_index]
    found = [w in {v for v, _ in model.wv.most_similar(m, topn=n)} for w, m in probes]
    return {"typos": len(found), f"typo_top{n}": round(float(np.mean(found)), 4) if found else None,
            "examples": [[m, w, bool(ok)] for (w, m), ok in list(zip(probes, found))[:8]]}
