"""The gensim trainers, the common vectors format, pre-trained files and intrinsic evaluation, on tiny data."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nlpdag.embeddings.doc2vec import document_vectors, tagged_documents, train_doc2vec
from nlpdag.errors import StageError
from nlpdag.embeddings.evaluate import evaluate_vectors, keyed_vectors, load_method, neighbours
from nlpdag.embeddings.fasttext import train_fasttext
from nlpdag.embeddings.gensim_train import EpochLogger, corpus_file
from nlpdag.config.doc2vec import Doc2VecParams
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.config.fasttext import FasttextParams
from nlpdag.config.word2vec import Word2VecParams
from nlpdag.embeddings.pretrained import detect_format, load_vectors
from nlpdag.io.vectors import read_vectors, write_vectors
from nlpdag.embeddings.word2vec import train_word2vec

WORDS = "king queen man woman boy girl prince princess good bad great awful film movie".split()


def toy_docs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return [list(rng.choice(WORDS, size=12)) for _ in range(n)]


@pytest.fixture
def tokens_file(tmp_path):
    docs = toy_docs()
    split = ["train"] * 250 + ["test"] * 50
    path = tmp_path / "tokens.parquet"
    pq.write_table(pa.table({"doc_id": list(range(300)), "split": split,
                             "tokens": pa.array(docs, type=pa.list_(pa.string()))}), path)
    return path, docs


def test_corpus_file_streams_the_training_split(tokens_file):
    path, docs = tokens_file
    with corpus_file(path) as (text, ids):
        lines = open(text, encoding="utf-8").read().splitlines()
    assert sorted(ids) == list(range(250)) and ids != sorted(ids)  # shuffled, never the file's order
    assert [line.split() for line in lines] == [docs[i] for i in ids]
    # the order is the documents' own: a file in reverse order gives the same lines, so does a small bucket
    table = pq.read_table(path)
    pq.write_table(table.take(list(range(table.num_rows - 1, -1, -1))), path.with_name("reversed.parquet"))
    with corpus_file(path.with_name("reversed.parquet"), bucket_docs=40) as (text, reversed_ids):
        assert open(text, encoding="utf-8").read().splitlines() == lines and reversed_ids == ids
    with corpus_file(path, seed=1) as (text, other_ids):
        assert sorted(other_ids) == sorted(ids) and other_ids != ids
    with pytest.raises(StageError, match="no documents"):
        with corpus_file(path, splits=("dev",)):
            pass


@pytest.mark.parametrize("arch", ["cbow", "skipgram"])
def test_word2vec_shapes_loss_and_determinism(tokens_file, arch):
    path, _ = tokens_file
    params = Word2VecParams(size=8, min_count=1, epochs=3, workers=1)
    with corpus_file(path) as (text, _):
        logger = EpochLogger("w2v", 3)
        a = train_word2vec(text, arch, params, seed=1, callbacks=(logger,))
        b = train_word2vec(text, arch, params, seed=1)
    assert a.wv.vectors.shape == (len(WORDS), 8)
    assert len(logger.loss) == 3 and all(v > 0 for v in logger.loss)
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)


def test_word2vec_rejects_a_vocabulary_smaller_than_the_vector_size(tokens_file):
    path, _ = tokens_file
    with corpus_file(path) as (text, _):
        with pytest.raises(StageError, match=r"smaller than word2vec\.size=100"):
            train_word2vec(text, "cbow", Word2VecParams(size=100, min_count=1, epochs=1, workers=1), seed=0)


def test_fasttext_gives_vectors_to_unseen_words(tokens_file):
    path, _ = tokens_file
    with corpus_file(path) as (text, _):
        model = train_fasttext(text, FasttextParams(size=8, min_count=1, epochs=2, workers=1, bucket=1000), seed=0)
    assert "princesses" not in model.wv.key_to_index
    unseen = model.wv["princesses"]
    assert unseen.shape == (8,) and np.abs(unseen).sum() > 0
    from nlpdag.embeddings.fasttext import misspelling, unseen_word_scores

    assert misspelling("brilliant") == "brillliant"
    probes = unseen_word_scores(model, ["princess", "king", "queen", "prince"])
    assert probes["typos"] == 2  # words of six letters or more only: princess -> princcess, prince -> prinnce
    assert 0 <= probes["typo_top10"] <= 1 and [e[:2] for e in probes["examples"]] == [["princcess", "princess"],
                                                                                        ["prinnce", "prince"]]
    # Shared n-grams make a misspelling closer to its word than an unrelated word is.
    assert model.wv.similarity("princess", "princesss") > model.wv.similarity("princess", "awful")


@pytest.mark.parametrize("mode", ["dm", "dbow"])
def test_doc2vec_trains_and_infers_unseen_documents(mode):
    docs = toy_docs(80)
    documents = tagged_documents(docs[:60], ["pos" if i % 2 else "neg" for i in range(60)])
    assert documents[1].tags == [1, "label=pos"]
    model = train_doc2vec(documents, mode, Doc2VecParams(size=8, min_count=1, epochs=5, workers=1), seed=0)
    assert "label=pos" in model.dv.key_to_index
    position = np.r_[np.arange(60), np.full(20, -1)]
    vectors = document_vectors(model, docs, position)
    assert vectors.shape == (80, 8)
    np.testing.assert_array_equal(vectors[3], model.dv[3])
    again = document_vectors(model, docs, position)
    np.testing.assert_allclose(vectors[70], again[70])  # inference is seeded by the text
    assert np.abs(vectors[70]).sum() > 0


def test_vectors_round_trip_and_word2vec_text(tmp_path):
    tokens = ["a", "b", "c"]
    matrix = np.arange(6, dtype=np.float32).reshape(3, 2)
    write_vectors("m", tokens, matrix, folder=tmp_path)
    got_tokens, got = read_vectors(tmp_path / "m.parquet")
    assert got_tokens == tokens and np.array_equal(got, matrix)
    assert (tmp_path / "m.txt").read_text().splitlines()[:2] == ["3 2", "a 0 1"]
    kv = load_vectors(tmp_path / "m.txt")
    assert kv.index_to_key == tokens and np.allclose(kv["c"], [4, 5])
    with pytest.raises(StageError, match="NaN"):
        write_vectors("bad", ["x"], np.array([[np.nan]]), folder=tmp_path)


def test_pretrained_formats_and_corrupt_files(tmp_path):
    kv = keyed_vectors(["x", "y"], np.array([[1, 0], [0, 1]], dtype=np.float32))
    kv.save_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    (tmp_path / "g.txt").write_text("x 1 0\ny 0 1\n")
    assert detect_format(tmp_path / "v.bin") == "word2vec_binary"
    assert detect_format(tmp_path / "g.txt") == "glove"
    assert load_vectors(tmp_path / "v.bin").index_to_key == ["x", "y"]
    assert np.allclose(load_vectors(tmp_path / "g.txt")["y"], [0, 1])
    (tmp_path / "broken.txt").write_text("5 3\nx 1 2\n")
    with pytest.raises(StageError, match=r"broken\.txt: cannot read as word2vec vectors"):
        load_vectors(tmp_path / "broken.txt")
    (tmp_path / "junk.vec").write_text("hello\n")
    with pytest.raises(StageError, match="not a recognised vectors file"):
        load_vectors(tmp_path / "junk.vec")
    with pytest.raises(StageError, match="not found"):
        load_vectors(tmp_path / "none.vec")


def test_evaluation_on_handmade_sets(tmp_path):
    # Vectors built so that king - man + woman = queen exactly; a second analogy fails.
    vecs = {"man": [1, 0, 0], "woman": [1, 1, 0], "king": [1, 0, 1], "queen": [1, 1, 1], "boy": [0.5, -1, 0],
            "girl": [-1, 0.2, 0.1]}
    kv = keyed_vectors(list(vecs), np.array(list(vecs.values()), dtype=np.float32))
    analogies = tmp_path / "analogies.txt"
    analogies.write_text(": family\nman woman king queen\nboy girl man queen\nman woman emperor empress\n"
                         ": gram1-plural\nman king woman queen\n")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# w1\tw2\tscore\nking\tqueen\t9\nman\tboy\t5\nking\tgirl\t1\nfoo\tbar\t3\n")
    # The minimums lowered, to check the arithmetic on a handful of items ...
    out = evaluate_vectors(kv, EvaluateParams(analogy_restrict=100), analogies, {"toy": pairs}, min_pairs=2,
                           min_questions=1)
    assert out["analogy_accuracy"] == pytest.approx(2 / 3, abs=1e-4) and out["analogy_coverage"] == 0.75
    assert out["analogy_semantic"] == {"accuracy": 0.5, "n": 2} and out["analogy_syntactic"] == {"accuracy": 1.0, "n": 1}
    assert out["analogy_questions"] == 3 and out["toy_pairs"] == 3
    assert out["toy_oov"] == 0.25 and -1 <= out["toy_spearman"] <= 1 and out["vocab_size"] == 6
    # ... which by default are too few to mean anything: null, with the evidence recorded.
    out = evaluate_vectors(kv, EvaluateParams(analogy_restrict=100), analogies, {"toy": pairs})
    assert out["analogy_accuracy"] is None and out["analogy_semantic"] is None and out["analogy_syntactic"] is None
    assert out["analogy_questions"] == 3 and out["analogy_coverage"] == 0.75
    assert out["toy_spearman"] is None and out["toy_pairs"] == 3 and out["toy_oov"] == 0.25
    assert neighbours(kv, ["king", "unknown"], 2) .keys() == {"king"}


def test_empty_pretrained_table_is_skipped(tmp_path):
    write_vectors("pretrained", [], np.zeros((0, 1), dtype=np.float32), folder=tmp_path)
    assert load_method("pretrained", tmp_path) is None


def test_similarity_with_a_single_known_pair_is_undefined(tmp_path):
    from nlpdag.embeddings.evaluate import similarity_scores

    kv = keyed_vectors(["king", "queen"], np.array([[1, 0], [0, 1]], dtype=np.float32))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("king\tqueen\t9\nfoo\tbar\t3\n")
    assert similarity_scores(kv, "toy", pairs) == {"toy_spearman": None, "toy_pairs": 1, "toy_oov": 0.5}
    assert similarity_scores(kv, "toy", pairs, min_pairs=1)["toy_spearman"] is None  # scipy needs two


def test_similarity_needs_ten_known_pairs_and_an_analogy_accuracy_a_hundred_questions(tmp_path):
    """A tiny corpus of one's own knows a few test words: a Spearman correlation over them is noise
    (often exactly ±1), so it is null below MIN_PAIRS; analogies likewise below MIN_ANALOGY_QUESTIONS."""
    from nlpdag.embeddings.evaluate import (MIN_ANALOGY_QUESTIONS, MIN_PAIRS, analogy_scores, log_line,
                                            similarity_scores)

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    kv = keyed_vectors(words, rng.normal(size=(40, 5)).astype(np.float32))
    for known, defined in ((2, False), (MIN_PAIRS - 1, False), (MIN_PAIRS, True)):
        pairs = tmp_path / f"pairs{known}.tsv"
        lines = [f"w{2 * i}\tw{2 * i + 1}\t{rng.uniform(0, 10):.2f}" for i in range(known)]
        pairs.write_text("# word1\tword2\tscore\n" + "\n".join(lines + ["foo\tbar\t3", "w1\tbaz\t2"]) + "\n")
        out = similarity_scores(kv, "toy", pairs)
        assert out["toy_pairs"] == known and out["toy_oov"] == round(2 / (known + 2), 4)
        assert (out["toy_spearman"] is not None) == defined, known
        if defined:
            assert -1 < out["toy_spearman"] < 1
    for n, defined in ((MIN_ANALOGY_QUESTIONS - 1, False), (MIN_ANALOGY_QUESTIONS, True)):
        questions = tmp_path / f"questions{n}.txt"
        quads = [" ".join(f"w{j}" for j in rng.choice(40, 4, replace=False)) for _ in range(n)]
        questions.write_text(": section\n" + "\n".join(quads + ["foo bar baz qux"]) + "\n")
        out = analogy_scores(kv, questions, restrict=40)
        assert out["analogy_questions"] == n and (out["analogy_accuracy"] is not None) == defined
        assert (out["analogy_semantic"] is not None) == defined and out["analogy_coverage"] == round(n / (n + 1), 4)
    # The stage's log line shows an undefined score as n/a with its evidence, never a crash.
    line = log_line("glove", {"analogy_accuracy": None, "analogy_questions": 4, "wordsim353_spearman": None,
                              "wordsim353_pairs": 3, "simlex999_spearman": 0.25, "simlex999_pairs": 40})
    assert line == "evaluate: glove         analogy n/a (4 questions), WS353 n/a (3 pairs), SimLex 0.250 (40 pairs)"
    assert "n/a" in log_line("glove", {})


def _corrupt_files(tmp_path, n_per_format: int):
    """(format, bytes) pairs: random bytes, a plausible header over random bytes, a real file cut
    short, and a real file with random bytes overwritten, for every supported format."""
    import struct

    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    kv = keyed_vectors(["x", "y", "zz"], np.arange(12, dtype=np.float32).reshape(3, 4))
    kv.save_word2vec_format(str(tmp_path / "ok.txt"))
    kv.save_word2vec_format(str(tmp_path / "ok.bin"), binary=True)
    model = FastText(sentences=[["a", "b", "c", "dd"]] * 10, vector_size=4, min_count=1, bucket=50,
                     epochs=1, workers=1, seed=0)
    save_facebook_model(model, str(tmp_path / "ft.bin"))
    real = {"word2vec": (tmp_path / "ok.txt").read_bytes(), "word2vec_binary": (tmp_path / "ok.bin").read_bytes(),
            "glove": b"x 1 0 2\ny 0 1 2\n", "fasttext_bin": (tmp_path / "ft.bin").read_bytes()}
    rng = np.random.default_rng(0)
    for fmt, good in real.items():
        for k in range(n_per_format):
            noise = rng.bytes(int(rng.integers(1, 3000)))
            kind = k % 4
            if kind == 0:
                data = noise
            elif kind == 1:  # a header whose counts the file cannot hold, or a plausible one
                count, dim = (int(v) for v in rng.integers(1, 2**31, size=2)) if k % 8 == 1 else (3, 4)
                head = {"fasttext_bin": struct.pack("@2i", 793712314, 12) + struct.pack("@12i", *rng.integers(-5, 2**20, 12))}
                data = head.get(fmt, f"{count} {dim}\n".encode()) + noise
            elif kind == 2:
                data = good[: int(rng.integers(0, len(good)))] + noise[:40]
            else:
                flipped = bytearray(good)
                for at in rng.integers(0, len(good), size=4):
                    flipped[at] = int(rng.integers(0, 256))
                data = bytes(flipped)
            yield fmt, data


def test_corrupt_vectors_files_fail_fast_with_one_line(tmp_path):
    """gensim's readers trust a file's header; a corrupt .bin made the fastText reader loop forever.
    Every corrupt file either loads or fails with a StageError naming it, never hangs (the alarm turns
    a hang into a failure) and never raises anything else."""
    import signal

    def hang(*_):
        raise TimeoutError("the loader hung")

    previous = signal.signal(signal.SIGALRM, hang)
    failures = loaded = 0
    try:
        for k, (fmt, data) in enumerate(_corrupt_files(tmp_path, 60)):
            path = tmp_path / f"corrupt{k}.{'bin' if fmt in ('word2vec_binary', 'fasttext_bin') else 'txt'}"
            path.write_bytes(data)
            signal.alarm(20)
            try:
                kv = load_vectors(path, fmt)
                assert np.isfinite(kv.vectors).all()
                loaded += 1
            except StageError as exc:
                assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
                failures += 1
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert failures >= 200 and failures + loaded == 240


def test_vectors_header_larger_than_the_file_is_refused(tmp_path):
    (tmp_path / "big.bin").write_bytes(b"3000000 300\n" + b"\x00" * 3000)
    with pytest.raises(StageError, match=r"big\.bin: cannot read as word2vec_binary vectors \(the header says "
                                         r"3000000 vectors of 300 values"):
        load_vectors(tmp_path / "big.bin")
    (tmp_path / "v.bin.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 10)
    with pytest.raises(StageError, match="compressed"):
        load_vectors(tmp_path / "v.bin.gz")


def test_fasttext_model_round_trips_in_facebook_format(tmp_path):
    """The full model, saved without a pickle, gives the same vectors back, unseen words included."""
    from nlpdag.io.native import load_fasttext, save_fasttext

    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(" ".join(doc) for doc in toy_docs(60)) + "\n")
    model = train_fasttext(str(text), FasttextParams(size=8, min_count=1, epochs=2, workers=1, bucket=1000), seed=0)
    path = tmp_path / "models" / "fasttext.bin"
    save_fasttext(model, path)
    assert path.read_bytes()[:4] != b"\x80\x04\x95"[:4] and not list(path.parent.glob(".*tmp"))
    loaded = load_fasttext(path)
    for word in ("king", "queenly", "zzz"):
        np.testing.assert_allclose(loaded.wv[word], model.wv[word], rtol=1e-6, atol=1e-7)
    with pytest.raises(StageError, match="fasttext.bin: FastText model not found"):
        load_fasttext(tmp_path / "fasttext.bin")
