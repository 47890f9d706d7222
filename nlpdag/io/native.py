"""A library's native model file, where one is needed, in a format that loads without unpickling:
a shared DVC remote must not be able to run code on a teammate's machine."""
from __future__ import annotations

from pathlib import Path

from nlpdag.catalog.embeddings import FASTTEXT_MODEL
from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path


def save_fasttext(model, path: Path = FASTTEXT_MODEL) -> None:
    """The whole FastText model (word and character n-gram vectors) in Facebook's binary format."""
    from gensim.models.fasttext import save_facebook_model

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_facebook_model(model, str(tmp))


def load_fasttext(path: Path = FASTTEXT_MODEL):
    from gensim.models.fasttext import load_facebook_model

    if not Path(path).is_file():
        raise StageError(f"{path}: FastText model not found (run: dvc repro fasttext)")
    return load_facebook_model(str(path))
