"""What `bow` writes."""
from pathlib import Path

BOW_DIR = Path("data/bow")
COUNTS = BOW_DIR / "counts.parquet"
TFIDF = BOW_DIR / "tfidf.parquet"
BOW_PREDICTIONS = BOW_DIR / "predictions.parquet"
BOW_VALIDATION = BOW_DIR / "validation.parquet"   # tfidf_logreg's validation probabilities (its fit without the slice)
TFIDF_MODEL = Path("data/models/tfidf_logreg")    # the fitted tfidf_logreg, for `nlpdag predict`
BOW_SCORES = Path("reports/scores/bow.json")
