"""DVC stage `tokenise`: wiring only; the logic is nlpdag.text.tokenise."""
from __future__ import annotations

from nlpdag.catalog.ingest import CORPUS

from nlpdag.catalog.tokenise import PHRASES, TOKENISE_METRICS, TOKENISE_SCORES, TOKENS, VOCAB
from nlpdag.evaluation.headline import pick, write_scores
from nlpdag.config.base import load_params
from nlpdag.config.tokenise import TokeniseParams
from nlpdag.errors import cli_main
from nlpdag.io.chunks import iter_batches
from nlpdag.io.tables import write_table
from nlpdag.text.tokenise import tokenise_chunks


@cli_main
def main() -> None:
    all_params = load_params(tokenise=TokeniseParams)
    params = all_params.tokenise
    vocab, metrics = tokenise_chunks(
        lambda: iter_batches(CORPUS, ["doc_id", "text", "split"], all_params.chunk_docs), params, TOKENS,
        phrases_out=PHRASES)
    write_table(vocab, VOCAB)
    write_scores(metrics, TOKENISE_SCORES, TOKENISE_METRICS, pick(metrics, "vocab_size"))
    print(f"tokenise: {metrics['tokens']} tokens, vocabulary {len(vocab)} (min_count {params.min_count})")


if __name__ == "__main__":
    main()
