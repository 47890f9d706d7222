"""Stage `tokenise`: text -> token lists, and the training split's vocabulary.

Outputs `data/tokens.parquet` (doc_id, split, tokens: list of every token, in-vocabulary or not,
so that subword models can still see rare words) and `data/vocab.parquet` (id, token, count,
doc_freq), ids ranked by training-split frequency. The corpus is read, tokenised and written
`chunk_docs` documents at a time (one row group each); memory holds one batch and the counts.
"""
from __future__ import annotations

import html
import json
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import pandas as pd
import pyarrow as pa

from nlpdag.io.chunks import chunk_writer
from nlpdag.errors import StageError
from nlpdag.io.tables import read_table, write_table
from nlpdag.config.tokenise import TokeniseParams
from nlpdag.catalog.ingest import CORPUS
from nlpdag.catalog.tokenise import PHRASES, TOKENS, VOCAB
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


def build_vocab(docs: Iterable[Sequence[str]], min_count: int, max_vocab: int | None = None) -> pd.DataFrame:
    """Vocabulary table: id (rank by count, ties by token), token, count, doc_freq."""
    counts: Counter[str] = Counter()
    doc_freq: Counter[str] = Counter()
    count_docs(docs, counts, doc_freq)
    return vocab_table(counts, doc_freq, min_count, max_vocab)


def count_docs(docs: Iterable[Sequence[str]], counts: Counter, doc_freq: Counter) -> None:
    for doc in docs:
        counts.update(doc)
        doc_freq.update(set(doc))


def vocab_table(counts: Counter, doc_freq: Counter, min_count: int, max_vocab: int | None = None) -> pd.DataFrame:
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


def _tokenised(batches: Callable[[], Iterable[pa.Table]], params: TokeniseParams,
               phrases=None) -> Iterator[tuple[pa.Table, list[list[str]]]]:
    for batch in batches():
        docs = tokenise_texts(batch.column("text").to_pylist(), params)
        yield batch, docs if phrases is None else [phrases[d] for d in docs]


def write_phrases(phrases, path: str | Path = PHRASES) -> None:
    """gensim's frozen phrases as a plain table (phrase, score; the delimiter and threshold in its
    metadata), empty without `tokenise.phrases`: `nlpdag predict` joins a new text's bigrams as the
    training documents' were, and loading it runs no code."""
    grams = {} if phrases is None else phrases.phrasegrams
    table = pa.table({"phrase": pa.array(list(grams), pa.string()),
                      "score": pa.array([float(s) for s in grams.values()], pa.float64())})
    if phrases is not None:
        table = table.replace_schema_metadata({"delimiter": phrases.delimiter, "threshold": repr(phrases.threshold),
                                               "connector_words": json.dumps(sorted(phrases.connector_words))})
    write_table(table, path)


def read_phrases(path: str | Path = PHRASES):
    """The frozen phrases `write_phrases` stored (None when it stored none)."""
    from gensim.models.phrases import FrozenPhrases, Phrases

    if not Path(path).is_file():
        raise StageError(f"{path}: not found, and the classifier was trained with tokenise.phrases "
                         "(rerun: dvc repro tokenise, or dvc pull)")
    table = read_table(path)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if "delimiter" not in meta:
        return None
    frozen = FrozenPhrases(Phrases(delimiter=meta["delimiter"], threshold=float(meta["threshold"]),
                                   connector_words=frozenset(json.loads(meta["connector_words"]))))
    frozen.phrasegrams = dict(zip(table.column("phrase").to_pylist(), table.column("score").to_pylist()))
    return frozen


def tokenise_chunks(batches: Callable[[], Iterable[pa.Table]], params: TokeniseParams,
                    out: str | Path, phrases_out: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """The stage over corpus batches (doc_id, text, split), each read, tokenised and written in
    turn: memory holds one batch and the token counts, never the corpus. Returns (vocab, metrics).

    With phrases, a first pass learns them on the training split (tokenising twice); `phrases_out`
    receives them (`write_phrases`)."""
    phrases = None
    if params.phrases:
        from gensim.models.phrases import Phrases

        train = (d for batch, docs in _tokenised(batches, params)
                 for d, split in zip(docs, batch.column("split").to_pylist()) if split == "train")
        phrases = Phrases(train, min_count=params.phrases_min_count, threshold=params.phrases_threshold).freeze()
    counts: Counter[str] = Counter()
    doc_freq: Counter[str] = Counter()
    test_counts: Counter[str] = Counter()
    n_tokens = n_train_tokens = empty = 0
    with chunk_writer(out) as writer:
        for batch, docs in _tokenised(batches, params, phrases):
            splits = batch.column("split").to_pylist()
            train = [d for d, split in zip(docs, splits) if split == "train"]
            count_docs(train, counts, doc_freq)
            for d, split in zip(docs, splits):
                if split != "train":
                    test_counts.update(d)
            n_tokens += sum(len(d) for d in docs)
            n_train_tokens += sum(len(d) for d in train)
            empty += sum(1 for d in docs if not d)
            writer.write(tokens_table(batch.column("doc_id").to_numpy(), splits, docs))
        # Built before the rename, so an empty vocabulary leaves no tokens file either.
        vocab = vocab_table(counts, doc_freq, params.min_count, params.max_vocab)
    if phrases_out is not None:
        write_phrases(phrases, phrases_out)
    n_test_tokens = n_tokens - n_train_tokens
    covered = sum(test_counts[t] for t in vocab["token"])
    metrics = {"tokens": n_tokens, "train_tokens": n_train_tokens, "vocab_size": len(vocab), "empty_docs": empty,
               "test_token_coverage": round(covered / n_test_tokens, 4) if n_test_tokens else None}
    return vocab, metrics
