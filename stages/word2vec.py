"""DVC stage `word2vec`: wiring only; the logic is nlpdag.embeddings.word2vec."""
from __future__ import annotations

from nlpdag.config.base import foreach_item, load_params
from nlpdag.config.word2vec import Word2VecParams
from nlpdag.embeddings.gensim_train import EpochLogger, corpus_file, write_keyed_vectors
from nlpdag.embeddings.word2vec import ARCHS, train_word2vec
from nlpdag.errors import cli_main
from nlpdag.io.vectors import Timer, write_train_info


@cli_main
def main() -> None:
    arch = foreach_item("word2vec", ARCHS)
    params = load_params(word2vec=Word2VecParams)
    method = f"word2vec_{arch}"
    logger = EpochLogger(method, params.word2vec.epochs)
    with corpus_file(seed=params.seed) as (path, _), Timer() as timer:
        model = train_word2vec(path, arch, params.word2vec, params.seed, callbacks=(logger,))
    write_keyed_vectors(method, model.wv)
    write_train_info(method, timer.seconds, logger.losses(), vocab_size=len(model.wv))
    print(f"{method}: {len(model.wv)} words x {model.vector_size} in {timer.seconds:.1f} s")


if __name__ == "__main__":
    main()
