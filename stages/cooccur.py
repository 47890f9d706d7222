"""DVC stage `cooccur`: wiring only; the logic is nlpdag.text.cooccur."""
from __future__ import annotations

import time

from nlpdag.catalog.cooccur import COOCCUR, COOCCUR_METRICS, COOCCUR_SCORES
from nlpdag.evaluation.headline import pick, write_scores

from nlpdag.catalog.tokenise import TOKENS, VOCAB
from nlpdag.config.base import load_params
from nlpdag.config.cooccur import CooccurParams
from nlpdag.errors import cli_main
from nlpdag.io.chunks import iter_batches
from nlpdag.io.tables import read_table
from nlpdag.text.cooccur import count_chunks


@cli_main
def main() -> None:
    all_params = load_params(cooccur=CooccurParams)
    params = all_params.cooccur
    start = time.perf_counter()
    vocabulary = read_table(VOCAB, columns=["token"]).column("token").combine_chunks()
    batches = iter_batches(TOKENS, ["split", "tokens"], all_params.chunk_docs)
    nnz, n_tokens = count_chunks(batches, vocabulary, params.window, params.weighting, params.memory_mb, COOCCUR)
    seconds = time.perf_counter() - start
    scores = {"nonzeros": nnz, "vocab_size": len(vocabulary), "tokens": n_tokens, "seconds": round(seconds, 2)}
    write_scores(scores, COOCCUR_SCORES, COOCCUR_METRICS, pick(scores, "seconds"))
    print(f"cooccur: {nnz} non-zeros over {len(vocabulary)} words from {n_tokens} tokens in {seconds:.1f} s")


if __name__ == "__main__":
    main()
