"""DVC stage `ingest`: wiring only; the logic is nlpdag.text.corpus."""
from __future__ import annotations

from pathlib import Path

from nlpdag.catalog.ingest import CORPUS, INGEST_METRICS, LABELS, RAW_DIR
from nlpdag.config.base import load_params
from nlpdag.config.data import DataParams
from nlpdag.errors import cli_main
from nlpdag.io.tables import write_json
from nlpdag.text.corpus import default_corpus_path, ingest_chunks, iter_corpus


@cli_main
def main() -> None:
    params = load_params(data=DataParams)
    data = params.data
    path = Path(data.path) if data.path else default_corpus_path()
    if data.path and RAW_DIR.resolve() not in Path(data.path).resolve().parents:
        print(f"note: {data.path} is outside {RAW_DIR}/, so DVC will not notice when its content changes "
              f"(put the corpus under {RAW_DIR}/ to make it a dependency)")
    labels, metrics = ingest_chunks(
        lambda: iter_corpus(path, data.format, data.text_column, data.label_column, data.source_column,
                            params.chunk_docs), data, params.seed, CORPUS)
    write_json(labels, LABELS)
    write_json(metrics, INGEST_METRICS)
    print(f"ingest: {metrics['docs']} documents ({metrics['train_docs']} train, {metrics['test_docs']} test), "
          f"{len(labels)} labels, dropped {metrics['dropped_duplicates']} duplicates and "
          f"{metrics['dropped_blank']} blank texts")


if __name__ == "__main__":
    main()
