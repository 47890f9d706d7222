"""Every artefact path, method and stage name of the pipeline, declared once.

Paths are relative to the checkout (DVC runs every stage there); dvc.yaml's outs are these paths.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from nlpdag.errors import StageError

PARAMS_FILE = Path("params.yaml")

# ingest
RAW_DIR = Path("data/raw")
CORPUS = Path("data/corpus.parquet")
LABELS = Path("data/labels.json")
# tokenise
TOKENS = Path("data/tokens.parquet")
VOCAB = Path("data/vocab.parquet")
PHRASES = Path("data/phrases.parquet")
# bow
BOW_DIR = Path("data/bow")
COUNTS = BOW_DIR / "counts.parquet"
TFIDF = BOW_DIR / "tfidf.parquet"
BOW_PREDICTIONS = BOW_DIR / "predictions.parquet"
# cooccur
COOCCUR = Path("data/cooccur.parquet")
# word2vec, glove, fasttext, doc2vec, pretrained: <method>.parquet (+ .txt in word2vec format)
EMBEDDINGS_DIR = Path("data/embeddings")
DOCVECS_DIR = Path("data/docvecs")        # doc2vec's document vectors
MODELS_DIR = Path("data/models")          # native files: fasttext.bin, classify/<model>/
FASTTEXT_MODEL = MODELS_DIR / "fasttext.bin"   # Facebook's binary format
CLASSIFY_MODELS = MODELS_DIR / "classify"
TRAIN_DIR = Path("reports/train")         # per method: training time, loss, settings
GLOVE_LOSS = Path("reports/plots/glove_loss.csv")
# evaluate
NEIGHBOURS = Path("reports/neighbours.json")
# reduce
REDUCED_DIR = Path("data/reduced")        # <method>__<reducer>.parquet
REDUCE_LOSS = Path("reports/plots/reduce_loss.csv")
# topics
TOPICS = Path("data/topics.parquet")
# classify
CLASSIFY_DIR = Path("data/classify")
CLASSIFY_PREDICTIONS = CLASSIFY_DIR / "predictions.parquet"
CLASSIFY_STATES = CLASSIFY_DIR / "states.parquet"
SUMMARY = Path("reports/classify/summary.json")
ATTENTION = Path("reports/classify/attention.json")
CURVES_DIR = Path("reports/plots/classify")
CONFUSION_DIR = Path("reports/plots/confusion")
CHECKPOINTS = Path(".nlpdag/checkpoints/classify")   # resumable training state, outside DVC
# tsne
TSNE_DIR = Path("data/tsne")
TSNE_WORDS, TSNE_DOCS, TSNE_MAPS = "words.parquet", "docs.parquet", "maps.json"   # inside it
# report
INDEX = Path("reports/index.html")
FIGURES = Path("reports/figures")

METRICS_DIR = Path("reports/metrics")
LIVE_DIR = Path("reports/live")          # DVCLive, one folder per training stage: metrics.json, plots/custom/
INGEST_METRICS = METRICS_DIR / "ingest.json"
TOKENISE_METRICS = METRICS_DIR / "tokenise.json"
BOW_METRICS = METRICS_DIR / "bow.json"
COOCCUR_METRICS = METRICS_DIR / "cooccur.json"
EMBEDDINGS_METRICS = METRICS_DIR / "embeddings.json"   # written by `evaluate`
REDUCE_METRICS = METRICS_DIR / "reduce.json"
TOPICS_METRICS = METRICS_DIR / "topics.json"
CLASSIFY_METRICS = METRICS_DIR / "classify.json"

# The embedding methods: one stage (or foreach item) each, a file each under EMBEDDINGS_DIR.
METHODS = ["word2vec_cbow", "word2vec_skipgram", "glove", "fasttext", "doc2vec_dm", "doc2vec_dbow", "pretrained"]

# The reducers of `reduce`: PCA (reference), plain, denoising, stacked and variational auto-encoders;
# a reduced method is named <method>__<reducer>.
REDUCERS = ["pca", "ae", "dae", "stacked_ae", "vae"]


def vectors_path(method: str, root: Path = Path(".")) -> Path:
    """A method's word vectors, or a reduced method's (<method>__<reducer>)."""
    folder = REDUCED_DIR if "__" in method else EMBEDDINGS_DIR
    return Path(root) / folder / f"{method}.parquet"


def known_methods() -> list[str]:
    return METHODS + [f"{m}__{r}" for m in METHODS for r in REDUCERS]


def check_methods(methods: Sequence[str], key: str, reduced: bool = True) -> None:
    """Stop with one line at a method name that is not a method (or, with `reduced`, <method>__<reducer>)."""
    known = set(known_methods() if reduced else METHODS)
    unknown = [m for m in methods if m not in known]
    if unknown:
        also = f" or <method>__<reducer> with reducer {'|'.join(REDUCERS)}" if reduced else ""
        raise StageError(f"params.yaml: {key}: unknown method {unknown[0]!r}; allowed: {', '.join(METHODS)}{also}")
