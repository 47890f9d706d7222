"""Stage `tokenise`: text -> token lists, and the training split's vocabulary.

Outputs `data/tokens.parquet` (doc_id, split, tokens: list of every token, in-vocabulary or not,
so that subword models can still see rare words) and `data/vocab.parquet` (id, token, count,
doc_freq), ids ranked by training-split frequency.
"""
from __future__ import annotations

import html
import re
from collections import Counter
from typing import Iterable, Sequence

import pandas as pd
import pyarrow as pa

from stages.errors import StageError, cli_main
from stages.io import read_frame, write_json, write_table
from stages.params import TokeniseParams, load_params

CORPUS = "data/corpus.parquet"
TOKENS = "data/tokens.parquet"
VOCAB = "data/vocab.parquet"
METRICS = "reports/metrics/tokenise.json"

_HTML_TAG = re.compile(r"<[^>]{0,200}>")
# Runs of letters/digits, joined by an inner apostrophe or hyphen: keeps "don't", "it's", "well-made".
_TOKEN = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def english_stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def tokenise_text(text: str, lowercase: bool = True, strip_html: bool = True,
                  stopwords: frozenset[str] | None = None) -> list[str]:
    """Split one text into word tokens (punctuation dropped, contractions kept whole)."""
    if strip_html:
        text = html.unescape(_HTML_TAG.sub(" ", text))
    text = text.translate(_APOSTROPHES)
    if lowercase:
        text = text.lower()
    tokens = _TOKEN.findall(text)
    if stopwords:
        tokens = [t for t in tokens if t.lower() not in stopwords]
    return tokens


def tokenise_texts(texts: Iterable[str], params: TokeniseParams) -> list[list[str]]:
    stop = english_stopwords() if params.stopwords else None
    return [tokenise_text(t, params.lowercase, params.strip_html, stop) for t in texts]


def apply_phrases(docs: list[list[str]], train_mask: Sequence[bool], min_count: int,
                  threshold: float) -> list[list[str]]:
    """Join frequent collocations ("new_york") with gensim Phrases learnt on the training split only."""
    from gensim.models.phrases import Phrases

    train_docs = [d for d, is_train in zip(docs, train_mask) if is_train]
    frozen = Phrases(train_docs, min_count=min_count, threshold=threshold).freeze()
    return [frozen[d] for d in docs]


def build_vocab(docs: Iterable[Sequence[str]], min_count: int, max_vocab: int | None = None) -> pd.DataFrame:
    """Vocabulary table: id (rank by count, ties by token), token, count, doc_freq."""
    counts: Counter[str] = Counter()
    doc_freq: Counter[str] = Counter()
    for doc in docs:
        counts.update(doc)
        doc_freq.update(set(doc))
    kept = [(tok, n) for tok, n in counts.items() if n >= min_count]
    kept.sort(key=lambda item: (-item[1], item[0]))
    if max_vocab is not None:
        kept = kept[:max_vocab]
    if not kept:
        raise StageError(f"empty vocabulary: no token occurs tokenise.min_count={min_count} times "
                         f"in the training split ({sum(counts.values())} tokens, {len(counts)} distinct)")
    tokens = [tok for tok, _ in kept]
    return pd.DataFrame({
        "id": pd.Series(range(len(kept)), dtype="int32"),
        "token": tokens,
        "count": pd.Series([n for _, n in kept], dtype="int64"),
        "doc_freq": pd.Series([doc_freq[t] for t in tokens], dtype="int64"),
    })


def tokens_table(doc_ids: Sequence[int], splits: Sequence[str], docs: list[list[str]]) -> pa.Table:
    return pa.table({
        "doc_id": pa.array(doc_ids, type=pa.int64()),
        "split": pa.array(splits, type=pa.string()),
        "tokens": pa.array(docs, type=pa.list_(pa.string())),
    })


@cli_main
def main() -> None:
    params = load_params().tokenise
    corpus = read_frame(CORPUS, columns=["doc_id", "text", "split"])
    docs = tokenise_texts(corpus["text"], params)
    train_mask = (corpus["split"] == "train").to_numpy()
    if params.phrases:
        docs = apply_phrases(docs, train_mask, params.phrases_min_count, params.phrases_threshold)
    vocab = build_vocab((d for d, t in zip(docs, train_mask) if t), params.min_count, params.max_vocab)
    in_vocab = set(vocab["token"])
    n_tokens = sum(len(d) for d in docs)
    n_train_tokens = sum(len(d) for d, t in zip(docs, train_mask) if t)
    covered = sum(sum(tok in in_vocab for tok in d) for d, t in zip(docs, train_mask) if not t)
    n_test_tokens = n_tokens - n_train_tokens
    write_table(tokens_table(corpus["doc_id"], corpus["split"], docs), TOKENS)
    write_table(vocab, VOCAB)
    metrics = {"tokens": n_tokens, "train_tokens": n_train_tokens, "vocab_size": len(vocab),
               "empty_docs": sum(1 for d in docs if not d),
               "test_token_coverage": round(covered / n_test_tokens, 4) if n_test_tokens else None}
    write_json(metrics, METRICS)
    print(f"tokenise: {n_tokens} tokens, vocabulary {len(vocab)} (min_count {params.min_count})")


if __name__ == "__main__":
    main()
