"""DVC stage `evaluate`: wiring only; the logic is nlpdag.embeddings.evaluate."""
from __future__ import annotations

import logging
from pathlib import Path

from nlpdag.catalog import EMBEDDINGS_METRICS, METHODS, NEIGHBOURS, TRAIN_DIR
from nlpdag.config.base import load_params
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.embeddings.evaluate import evaluate_vectors, load_method, neighbours
from nlpdag.errors import cli_main
from nlpdag.io.tables import read_json, write_json


@cli_main
def main() -> None:
    logging.getLogger("gensim").setLevel(logging.WARNING)
    params = load_params(evaluate=EvaluateParams).evaluate
    metrics, probes = {}, {}
    for method in METHODS:
        kv = load_method(method)
        if kv is None:
            continue
        scores = evaluate_vectors(kv, params)
        info = Path(TRAIN_DIR) / f"{method}.json"
        scores["train_seconds"] = read_json(info).get("train_seconds") if info.exists() else None
        metrics[method] = scores
        probes[method] = neighbours(kv, params.probe_words, params.neighbours)
        if info.exists() and "unseen_words" in read_json(info):  # FastText's typo probes (stages/fasttext.py)
            scores["unseen_words"] = read_json(info)["unseen_words"]
        print(f"evaluate: {method:<13} analogy {scores['analogy_accuracy']} "
              f"(coverage {scores['analogy_coverage']}), WS353 {scores['wordsim353_spearman']}, "
              f"SimLex {scores['simlex999_spearman']}")
    write_json(metrics, EMBEDDINGS_METRICS)
    write_json(probes, NEIGHBOURS)


if __name__ == "__main__":
    main()
