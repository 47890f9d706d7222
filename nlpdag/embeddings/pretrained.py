"""Stage `pretrained`: a user's own vectors file, converted to the common format so that it is
evaluated and used by later stages like a trained method. Nothing is ever downloaded.

Formats: word2vec text (header `count dim`), word2vec binary, GloVe text (no header), fastText
`.vec` (word2vec text) and `.bin` (full model; in-vocabulary vectors are exported).
With `pretrained.path: null` the stage writes an empty table, which later stages skip.
"""
from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from nlpdag.errors import StageError

from nlpdag.io.vectors import Timer, write_vectors
from nlpdag.config.pretrained import PretrainedParams

METHOD = "pretrained"


def detect_format(path: Path) -> str:
    """word2vec | word2vec_binary | glove | fasttext_bin, from the extension and the first line."""
    head = path.open("rb").read(4096)
    if path.suffix == ".bin":
        # word2vec binary starts with an ASCII "count dim" line; fastText's (old or new) with int32s.
        first = head.split(b"\n", 1)[0].split()
        is_w2v = len(first) == 2 and all(p.isdigit() for p in first)
        return "word2vec_binary" if is_w2v else "fasttext_bin"
    try:
        first = head.split(b"\n", 1)[0].decode("utf-8").split()
    except UnicodeDecodeError:
        return "word2vec_binary"
    if len(first) == 2 and all(p.isdigit() for p in first):
        return "word2vec"
    if len(first) > 2:
        return "glove"
    raise StageError(f"{path}: not a recognised vectors file (expected word2vec/GloVe text, word2vec binary "
                     f"or fastText .bin; set pretrained.format)")


class _Corrupt(ValueError):
    """The file contradicts its own header: the message says how."""


def _header_counts(head: bytes) -> tuple[int, int, int]:
    """(count, dim, header bytes) of a word2vec header line `count dim`."""
    line, newline, _ = head.partition(b"\n")
    parts = line.split()
    if not newline or len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise _Corrupt("the first line is not a `count dim` header")
    count, dim = int(parts[0]), int(parts[1])
    if count < 1 or dim < 1:
        raise _Corrupt(f"the header says {count} vectors of {dim} values")
    return count, dim, len(line) + 1


def _check_fasttext_bin(data: mmap.mmap | bytes) -> None:
    """Walk Facebook's .bin layout (gensim's _fasttext_bin reader, which trusts every count) checking
    each count against the bytes that are left, so no corrupt file can make the reader loop or
    allocate more than the file holds."""
    size, pos = len(data), 0

    def take(fmt: str) -> tuple:
        nonlocal pos
        n = struct.calcsize(fmt)
        if pos + n > size:
            raise _Corrupt(f"the file ends inside its header (byte {pos} of {size})")
        values = struct.unpack_from(fmt, data, pos)
        pos += n
        return values

    magic, _version = take("@2i")
    new_format = magic == 793712314  # fastText's FILEFORMAT_MAGIC_INT32
    if new_format:  # dim ws epoch min_count neg word_ngrams loss model bucket minn maxn lr_update_rate, t
        header = take("@12i")
        dim, bucket, minn, maxn = header[0], header[8], header[9], header[10]
    else:  # dim and ws were read as magic and version; epoch ... lr_update_rate, t
        header = take("@10i")
        dim, bucket, minn, maxn = magic, header[6], header[7], header[8]
    take("@d")
    vocab_size, nwords, nlabels = take("@3i")
    (ntokens,) = take("@q")
    prune = max(take("@q")[0], 0) if new_format else 0  # -1: not pruned
    if not 0 < dim <= 100_000 or bucket < 0 or not (0 <= minn <= 100 and 0 <= maxn <= 100) or ntokens < 0:
        raise _Corrupt(f"implausible header (dim {dim}, bucket {bucket}, n-gram lengths {minn}..{maxn})")
    if nlabels != 0:
        raise _Corrupt(f"a supervised model ({nlabels} labels); only unsupervised models hold word vectors")
    if not 0 < nwords == vocab_size:
        raise _Corrupt(f"the header says {vocab_size} entries and {nwords} words")
    # each word: its bytes, a 0 byte, an int64 count and an int8 type (10 bytes at least)
    if vocab_size * 10 > size - pos:
        raise _Corrupt(f"the header says {vocab_size} words but only {size - pos} bytes follow")
    for k in range(vocab_size):
        end = data.find(b"\0", pos)
        if end < 0 or end + 10 > size:
            raise _Corrupt(f"word {k + 1} of {vocab_size} runs past the end of the file")
        pos = end + 10
    if prune * 8 > size - pos:
        raise _Corrupt(f"the header says {prune} pruned n-grams but only {size - pos} bytes follow")
    pos += prune * 8
    if new_format:
        (quantized,) = take("@?")
        if quantized:
            raise _Corrupt("a quantized model (.ftz); gensim reads only plain .bin models")
    rows, cols = take("@2q")
    if rows != nwords + bucket or cols != dim:
        raise _Corrupt(f"the input matrix is {rows} x {cols}, the header implies {nwords + bucket} x {dim}")
    if rows * cols * 4 > size - pos:
        raise _Corrupt(f"the input matrix needs {rows * cols * 4} bytes but only {size - pos} follow")


def check_size(path: Path, fmt: str) -> None:
    """Fail in seconds, with one line, on a file whose header counts (vectors x values x bytes per
    value) cannot fit in its size: gensim's readers trust the header, allocate what it says and, for
    fastText's .bin, can read past the end of the file forever."""
    if path.suffix.lower() in (".gz", ".bz2", ".xz", ".zst", ".zip"):
        raise StageError(f"{path}: compressed vectors files are not read (decompress it first; pretrained.path)")
    size = path.stat().st_size
    if size == 0:
        raise StageError(f"{path}: cannot read as {fmt} vectors (the file is empty)")
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if fmt == "fasttext_bin":
                _check_fasttext_bin(data)
            elif fmt in ("word2vec", "word2vec_binary"):
                count, dim, start = _header_counts(data[:256])
                # binary: a word of >= 1 byte, a space, dim float32s; text: a word and dim values of
                # >= 1 character, each after a separator
                least = count * (dim * 4 + 2) if fmt == "word2vec_binary" else count * (2 * dim + 1)
                if least > size - start:
                    raise _Corrupt(f"the header says {count} vectors of {dim} values, which need at least "
                                   f"{least} bytes, but only {size - start} follow")
    except _Corrupt as exc:
        raise StageError(f"{path}: cannot read as {fmt} vectors ({exc})") from None


def load_vectors(path: str | Path, fmt: str = "auto") -> KeyedVectors:
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: pre-trained vectors file not found (pretrained.path)")
    fmt = detect_format(path) if fmt == "auto" else fmt
    check_size(path, fmt)
    try:
        if fmt == "fasttext_bin":
            from gensim.models.fasttext import load_facebook_vectors

            kv = load_facebook_vectors(str(path))
        else:
            kv = KeyedVectors.load_word2vec_format(str(path), binary=fmt == "word2vec_binary",
                                                   no_header=fmt == "glove", unicode_errors="strict")
    except StageError:
        raise
    except Exception as exc:  # gensim raises ValueError, UnicodeDecodeError, EOFError... on a corrupt file
        message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise StageError(f"{path}: cannot read as {fmt} vectors ({message})") from None
    if len(kv) == 0:
        raise StageError(f"{path}: the vectors file holds no vectors")
    if not np.isfinite(kv.vectors).all():
        raise StageError(f"{path}: the vectors contain NaN or infinite values")
    return kv


def run(params: PretrainedParams) -> None:
    """The `pretrained` stage: the user's vectors file (or an empty table) in the embeddings format."""
    with Timer() as timer:
        if params.path is None:
            write_vectors(METHOD, [], np.zeros((0, 1), dtype=np.float32))
            print("pretrained: no pretrained.path set; wrote an empty table")
            return
        kv = load_vectors(params.path, params.format)
    write_vectors(METHOD, list(kv.index_to_key), kv.vectors)
    print(f"pretrained: {len(kv)} vectors of size {kv.vector_size} from {params.path}")
