"""DVC stage `ingest`: wiring only; the logic is nlpdag.text.corpus."""
from __future__ import annotations

from pathlib import Path

from nlpdag.catalog.ingest import CORPUS, INGEST_METRICS, INGEST_SCORES, LABELS, RAW_DIR
from nlpdag.evaluation.headline import pick, write_scores
from nlpdag.config.base import load_params
from nlpdag.config.data import DataParams
from nlpdag.errors import cli_main
from nlpdag.io.tables import write_json
from nlpdag.text.corpus import DEFAULT_LABEL_NAMES, default_corpus_path, ingest_chunks, iter_corpus, name_labels


@cli_main
def main() -> None:
    params = load_params(data=DataParams)
    data = params.data
    path = Path(data.path) if data.path else default_corpus_path()
    if data.path and RAW_DIR.resolve() not in Path(data.path).resolve().parents:
        print(f"note: {data.path} is outside {RAW_DIR}/, so DVC will not notice when its content changes "
              f"(put the corpus under {RAW_DIR}/ to make it a dependency)")
    names = data.label_names if data.label_names is not None else None if data.path else DEFAULT_LABEL_NAMES
    labels, metrics = ingest_chunks(
        lambda: name_labels(iter_corpus(path, data.format, data.text_column, data.label_column, data.source_column,
                                        params.chunk_docs), names), data, params.seed, CORPUS)
    write_json(labels, LABELS)
    write_scores(metrics, INGEST_SCORES, INGEST_METRICS, pick(metrics, "docs", "train_docs", "test_docs"))
    print(f"ingest: {metrics['docs']} documents ({metrics['train_docs']} train, {metrics['test_docs']} test), "
          f"{len(labels)} labels, dropped {metrics['dropped_duplicates']} duplicates and "
          f"{metrics['dropped_blank']} blank texts")


if __name__ == "__main__":
    main()
