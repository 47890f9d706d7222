"""DVC stage `fasttext`: wiring only; the logic is nlpdag.embeddings.fasttext."""
from __future__ import annotations

from nlpdag.catalog.embeddings import FASTTEXT_MODEL
from nlpdag.config.base import load_params
from nlpdag.config.fasttext import FasttextParams
from nlpdag.embeddings.fasttext import UNSEEN_PROBES, train_fasttext, unseen_word_scores
from nlpdag.embeddings.gensim_train import EpochLogger, corpus_file, write_keyed_vectors
from nlpdag.errors import cli_main
from nlpdag.io.native import save_fasttext
from nlpdag.io.vectors import Timer, write_train_info


@cli_main
def main() -> None:
    params = load_params(fasttext=FasttextParams)
    logger = EpochLogger("fasttext", params.fasttext.epochs)
    with corpus_file(seed=params.seed) as (path, _), Timer() as timer:
        model = train_fasttext(path, params.fasttext, params.seed, callbacks=(logger,))
    write_keyed_vectors("fasttext", model.wv)
    save_fasttext(model, FASTTEXT_MODEL)
    write_train_info("fasttext", timer.seconds, None, vocab_size=len(model.wv),
                     unseen_words=unseen_word_scores(model, model.wv.index_to_key[:UNSEEN_PROBES]))
    print(f"fasttext: {len(model.wv)} words x {model.vector_size} in {timer.seconds:.1f} s")


if __name__ == "__main__":
    main()
