"""Stage `pretrained`: a user's own vectors file, converted to the common format so that it is
evaluated and used by later stages like a trained method. Nothing is ever downloaded.

Formats: word2vec text (header `count dim`), word2vec binary, GloVe text (no header), fastText
`.vec` (word2vec text) and `.bin` (full model; in-vocabulary vectors are exported).
With `pretrained.path: null` the stage writes an empty table, which later stages skip.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from stages.errors import StageError, cli_main
from stages.params import load_params
from stages.vectors import Timer, write_vectors

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


def load_vectors(path: str | Path, fmt: str = "auto") -> KeyedVectors:
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: pre-trained vectors file not found (pretrained.path)")
    fmt = detect_format(path) if fmt == "auto" else fmt
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


@cli_main
def main() -> None:
    params = load_params().pretrained
    with Timer() as timer:
        if params.path is None:
            write_vectors(METHOD, [], np.zeros((0, 1), dtype=np.float32))
            print("pretrained: no pretrained.path set; wrote an empty table")
            return
        kv = load_vectors(params.path, params.format)
    write_vectors(METHOD, list(kv.index_to_key), kv.vectors)
    print(f"pretrained: {len(kv)} vectors of size {kv.vector_size} from {params.path}")


if __name__ == "__main__":
    main()
