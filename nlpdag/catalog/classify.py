"""What the classifier stages write: each `neural@<key>` stage (one per entry of classify.models) its
model and its predictions, the `classify` stage every row's scores, the summary and the report's panels."""
from pathlib import Path

# neural@<key>
NEURAL_DIR = Path("data/classify/neural")   # <key>/: proba, states, examples, curves, info
NEURAL_MODELS = Path("data/models/classify")  # <key>/: what `nlpdag predict` loads (weights + JSON)
CHECKPOINTS = Path(".nlpdag/checkpoints/classify")   # resumable training state, outside DVC
PROBA, STATES, EXAMPLES, INFO, CURVES = "proba.parquet", "states.parquet", "examples.json", "info.json", "curves.csv"


def neural_dir(key: str) -> Path:
    return NEURAL_DIR / key


def model_dir(key: str) -> Path:
    return NEURAL_MODELS / key


# classify
ROW_MODELS = Path("data/models/rows")  # <row folder>/: every other servable row (JSON + Parquet + .npz), the ensemble
CLASSIFY_PREDICTIONS = Path("data/classify/predictions.parquet")
CLASSIFY_STATES = Path("data/classify/states.parquet")
SUMMARY = Path("reports/classify/summary.json")
ATTENTION = Path("reports/classify/attention.json")
TREES = Path("reports/classify/trees.json")
CURVES_DIR = Path("reports/plots/classify")
CONFUSION_DIR = Path("reports/plots/confusion")
CLASSIFY_SCORES = Path("reports/scores/classify.json")  # everything the report reads
CLASSIFY_METRICS = Path("reports/metrics/classify.json")  # headline: per row accuracy, macro-F1, per source
