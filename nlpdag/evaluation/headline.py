"""The headline numbers each stage declares as DVC metrics (reports/metrics/<stage>.json), apart from
everything else it measured (reports/scores/<stage>.json, which the report reads).

`dvc exp show`, `dvc metrics diff` and `nlpdag compare` print every number of a metrics file; with
intervals, bands and grids in them a one-parameter change filled hundreds of columns. So the metrics
hold only what a comparison is about, under keys that do not change from run to run:
- per classifier row: accuracy, macro-F1 and each source's accuracy; a neural row under its
  classify.models key (stable when its spec changes), the ensemble as `ensemble` (its members live in
  the scores, not in the key);
- per embedding method: the analogy accuracy, the WS353 and SimLex-999 Spearman correlations (null
  where the evaluation had too little evidence) and its training seconds;
- per topic model: coherence; and the corpus's size, the vocabulary's, co-occurrence's seconds.
"""
from __future__ import annotations

from pathlib import Path

from nlpdag.io.tables import write_json

ENSEMBLE_KEY = "ensemble"


def classify_headline(models: dict, keys: dict[str, str] | None = None) -> dict:
    """{row: {accuracy, macro_f1, <source>: accuracy}}: `models` is the scores' "models" mapping,
    `keys` maps a neural row's spec to its classify.models key."""
    keys = keys or {}
    out = {}
    for name, s in models.items():
        key = ENSEMBLE_KEY if s.get("kind") == "ensemble" else keys.get(name, name)
        row = {"accuracy": s.get("accuracy"), "macro_f1": s.get("macro_f1")}
        for source, scores in (s.get("by_source") or {}).items():
            row[source] = scores.get("accuracy")
        out[key] = row
    return out


def embeddings_headline(methods: dict) -> dict:
    """{method: {analogy, wordsim353, simlex999, seconds}} from the evaluate stage's scores."""
    return {m: {"analogy": s.get("analogy_accuracy"), "wordsim353": s.get("wordsim353_spearman"),
                "simlex999": s.get("simlex999_spearman"), "seconds": s.get("train_seconds")}
            for m, s in methods.items()}


def topics_headline(models: dict) -> dict:
    return {m: {"coherence": s.get("coherence")} for m, s in models.items()}


def pick(scores: dict, *names: str) -> dict:
    return {n: scores.get(n) for n in names}


def write_scores(scores: dict, scores_path: Path, metrics_path: Path | None = None, headline: dict | None = None) -> None:
    """Everything to `scores_path`; the headline (when the stage has one) to `metrics_path`."""
    write_json(scores, scores_path)
    if metrics_path is not None:
        write_json(headline, metrics_path)
