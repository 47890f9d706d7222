import pytest

from stages.errors import StageError
from stages.tokenise import apply_phrases, build_vocab, english_stopwords, tokenise_text, tokenise_texts
from stages.params import TokeniseParams


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
