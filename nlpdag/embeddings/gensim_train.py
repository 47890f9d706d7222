"""What the gensim trainers share: the training text as gensim's fast `corpus_file` input, epoch
callbacks for progress and loss, and writing a model's word vectors in the common format."""
from __future__ import annotations

import contextlib
import math
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from gensim.models.callbacks import CallbackAny2Vec

from nlpdag.evaluation import protocol as evaluation
from nlpdag.errors import StageError
from nlpdag.io.vectors import write_vectors
from nlpdag.training.progress import EpochProgress
from nlpdag.catalog.tokenise import TOKENS
@contextlib.contextmanager
def corpus_file(tokens_path: str | Path = TOKENS, splits: tuple[str, ...] = ("train",), seed: int = 0,
                batch_rows: int = 4096, bucket_docs: int = 20000) -> Iterator[tuple[str, list[int]]]:
    """A temporary LineSentence file (one document per line, tokens joined by spaces) of the chosen
    splits, in a seeded shuffled order that depends on the documents alone (sorted by each line's
    key, nlpdag/evaluation/protocol.py), never on the file's order: a corpus sorted by label would otherwise
    train on one label at a time. Yields (path, doc_ids in line order).

    Streamed from the Parquet tokens in row batches: lines go to bucket files by the top bits of
    their key, then each bucket (about `bucket_docs` lines) is sorted in memory and appended.
    gensim's `corpus_file` mode reads the file with one thread per worker and no Python in the
    loop, unlike an iterable, whose single producer thread starves the workers."""
    tokens_path = Path(tokens_path)
    if not tokens_path.exists():
        raise StageError(f"{tokens_path}: input not found (run the stage that makes it first: dvc repro)")
    source = pq.ParquetFile(tokens_path)
    bits = max(0, math.ceil(math.log2(max(source.metadata.num_rows, 1) / bucket_docs)))
    doc_ids: list[int] = []
    with tempfile.TemporaryDirectory(prefix="nlpdag-corpus-") as tmp:
        buckets = [Path(tmp) / f"bucket{b}.txt" for b in range(2 ** bits)]
        meta: list[list[tuple[int, int]]] = [[] for _ in buckets]     # (key, doc_id) per bucket, in line order
        files = [open(b, "w", encoding="utf-8") for b in buckets]
        try:
            for batch in source.iter_batches(batch_size=batch_rows, columns=["doc_id", "split", "tokens"]):
                keep = pc.is_in(batch.column("split"), value_set=pa.array(list(splits), type=pa.string()))
                batch = batch.filter(keep)
                # gensim's LineSentence splits lines longer than 10,000 tokens; none are that long here.
                lines = [" ".join(doc) for doc in batch.column("tokens").to_pylist()]
                keys = evaluation.doc_keys(lines, seed, evaluation.STREAM_SALT)
                for key, doc_id, line in zip(keys.tolist(), batch.column("doc_id").to_pylist(), lines):
                    b = key >> (64 - bits) if bits else 0
                    files[b].write(line + "\n")
                    meta[b].append((key, doc_id))
        finally:
            for f in files:
                f.close()
        path = Path(tmp) / "corpus.txt"
        with open(path, "w", encoding="utf-8") as out:
            for bucket, rows in zip(buckets, meta):
                lines = bucket.read_text(encoding="utf-8").splitlines()
                for k in evaluation.stream_order(np.array([key for key, _ in rows], dtype=np.uint64)):
                    out.write(lines[k] + "\n")
                    doc_ids.append(rows[k][1])
                bucket.unlink()
        if not doc_ids:
            raise StageError(f"{tokens_path}: no documents in split(s) {list(splits)}")
        yield str(path), doc_ids


class EpochLogger(CallbackAny2Vec):
    """gensim's epoch callback, reporting through the shared progress (a bar over the epochs on a
    terminal, a line per epoch); keeps the per-epoch training loss where gensim computes one (word2vec;
    its running loss is cumulative, so the per-epoch value is a difference)."""

    def __init__(self, method: str, epochs: int):
        self.method, self.epochs = method, epochs
        self.loss: list[float] = []
        self._previous = 0.0
        self._start = time.perf_counter()
        self._progress = None

    def on_train_begin(self, model) -> None:
        self._progress = EpochProgress(self.method, self.epochs)

    def on_epoch_end(self, model) -> None:
        row = {"epoch": len(self.loss) + 1, "seconds": time.perf_counter() - self._start}
        if getattr(model, "compute_loss", False):
            total = model.get_latest_training_loss()
            self.loss.append(total - self._previous)
            self._previous = total
            row["loss"] = self.loss[-1]
        else:
            self.loss.append(float("nan"))
        (self._progress or EpochProgress(self.method, self.epochs))(row)

    def on_train_end(self, model) -> None:
        if self._progress is not None:
            self._progress.close()

    def losses(self) -> list[float] | None:
        return None if all(v != v for v in self.loss) else self.loss


def write_keyed_vectors(method: str, wv) -> None:
    """A gensim KeyedVectors in the common format (rows in gensim's frequency order)."""
    if len(wv.index_to_key) == 0:
        raise StageError(f"{method}: empty vocabulary (lower {method.split('_')[0]}.min_count)")
    write_vectors(method, list(wv.index_to_key), wv.vectors)


