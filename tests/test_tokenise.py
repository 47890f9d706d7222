import pytest

from nlpdag.errors import StageError
from nlpdag.text.tokenise import build_vocab, english_stopwords, tokenise_text, tokenise_texts
from oracles import apply_phrases
from nlpdag.config.tokenise import TokeniseParams


@pytest.mark.parametrize("text, expected", [
    ("Great film.<br /><br />Loved it!", ["great", "film", "loved", "it"]),
    ("I didn't like it, it’s BAD", ["i", "didn't", "like", "it", "it's", "bad"]),
    ("a well-made, low-budget flick -- 10/10", ["a", "well-made", "low-budget", "flick", "10", "10"]),
    ("Tom &amp; Jerry &lt;3", ["tom", "jerry", "3"]),
    ("snake_case __init__ 'quoted'", ["snake", "case", "init", "quoted"]),
    ("Café naïve Ωmega", ["café", "naïve", "ωmega"]),
    ("", []),
    ("!!! ... ???", []),
])
def test_tokeniser_edge_cases(text, expected):
    assert tokenise_text(text) == expected


def test_tokeniser_options():
    assert tokenise_text("The <b>Cat</b>", lowercase=False, strip_html=True) == ["The", "Cat"]
    assert tokenise_text("a <b>cat</b>", strip_html=False) == ["a", "b", "cat", "b"]
    assert tokenise_text("the cat and a dog", stopwords=english_stopwords()) == ["cat", "dog"]
    docs = tokenise_texts(["The cat"], TokeniseParams(stopwords=True))
    assert docs == [["cat"]]


def test_vocab_counts_ranks_and_doc_freq():
    docs = [["b", "a", "a"], ["a", "c"], ["b"]]
    vocab = build_vocab(docs, min_count=2)
    assert vocab["token"].tolist() == ["a", "b"]
    assert vocab["id"].tolist() == [0, 1]
    assert vocab["count"].tolist() == [3, 2] and vocab["doc_freq"].tolist() == [2, 2]
    assert build_vocab(docs, min_count=1, max_vocab=2)["token"].tolist() == ["a", "b"]


def test_empty_vocab_names_min_count():
    with pytest.raises(StageError, match=r"tokenise\.min_count=5"):
        build_vocab([["a", "b"]], min_count=5)


def test_phrases_learnt_from_train_only():
    train = [["new", "york", "is", "big"]] * 20
    test = [["new", "york"]]
    joined = apply_phrases(train + test, [True] * 20 + [False], min_count=5, threshold=0.1)
    assert joined[-1] == ["new_york"]
    # The same bigram seen only in the test split is not learnt.
    other = apply_phrases([["a", "b"]] * 20 + [["new", "york"]] * 20, [True] * 20 + [False] * 20,
                          min_count=5, threshold=0.1)
    assert other[-1] == ["new", "york"]


def _corpus_batches(texts, splits, size):
    import pyarrow as pa

    table = pa.table({"doc_id": list(range(100, 100 + len(texts))), "text": texts, "split": splits})
    return lambda: (table.slice(k, size) for k in range(0, len(texts), size))


@pytest.mark.parametrize("params", [TokeniseParams(min_count=2),
                                    TokeniseParams(min_count=1, phrases=True, phrases_min_count=2, phrases_threshold=0.1),
                                    TokeniseParams(min_count=1, stopwords=True, max_vocab=5)])
def test_chunked_tokenise_matches_in_memory(tmp_path, params):
    import pyarrow.parquet as pq

    from nlpdag.text.tokenise import read_phrases, tokenise_chunks, tokens_table

    texts = ["New York is big<br />", "new york, new york!", "", "A cat and a dog", "the dog's day",
             "New York dog", "cat", "a new cat in York"] * 2
    splits = ["train", "train", "test", "train", "test", "train", "train", "test"] * 2
    docs = tokenise_texts(texts, params)
    train = [s == "train" for s in splits]
    if params.phrases:
        docs = apply_phrases(docs, train, params.phrases_min_count, params.phrases_threshold)
    want_vocab = build_vocab([d for d, t in zip(docs, train) if t], params.min_count, params.max_vocab)
    vocab, metrics = tokenise_chunks(_corpus_batches(texts, splits, 3), params, tmp_path / "tokens.parquet",
                                     phrases_out=tmp_path / "phrases.parquet")
    assert vocab.equals(want_vocab)
    assert ("new_york" in set(vocab["token"])) == params.phrases
    phrases = read_phrases(tmp_path / "phrases.parquet")  # what `nlpdag predict` applies to new texts
    assert (phrases is None) != params.phrases
    if params.phrases:
        assert phrases[["i", "love", "new", "york"]] == ["i", "love", "new_york"]
    got = pq.read_table(tmp_path / "tokens.parquet")
    assert got.equals(tokens_table(list(range(100, 116)), splits, docs))
    assert pq.ParquetFile(tmp_path / "tokens.parquet").num_row_groups == 6
    in_vocab = set(vocab["token"])
    test_tokens = [t for d, s in zip(docs, train) if not s for t in d]
    assert metrics == {"tokens": sum(map(len, docs)), "train_tokens": sum(len(d) for d, t in zip(docs, train) if t),
                       "vocab_size": len(vocab), "empty_docs": sum(1 for d in docs if not d),
                       "test_token_coverage": round(sum(t in in_vocab for t in test_tokens) / len(test_tokens), 4)}


def test_chunked_empty_vocab_writes_no_tokens(tmp_path):
    from nlpdag.text.tokenise import tokenise_chunks

    with pytest.raises(StageError, match=r"tokenise\.min_count=9"):
        tokenise_chunks(_corpus_batches(["a b", "c"], ["train", "test"], 1), TokeniseParams(min_count=9),
                        tmp_path / "tokens.parquet", phrases_out=tmp_path / "phrases.parquet")
    assert list(tmp_path.iterdir()) == []
