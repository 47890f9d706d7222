"""Labels for new texts from a classifier the `classify` stage saved, without retraining.

The saved model carries its words, labels, truncation and the tokenise params it was trained with,
so a text is tokenised and cut exactly as the training documents were.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nlpdag.catalog.classify import CLASSIFY_MODELS, SUMMARY
from nlpdag.errors import StageError
from nlpdag.io.tables import read_json
from nlpdag.catalog.ingest import LABELS
@dataclass
class Classifier:
    name: str
    model: object
    saved: dict
    phrases: object = None       # gensim's frozen phrases, when trained with tokenise.phrases

    @property
    def labels(self) -> list[str]:
        return self.saved["labels"]


def available(root: Path = Path(".")) -> list[str]:
    folder = root / CLASSIFY_MODELS
    return sorted(p.name for p in folder.iterdir() if (p / "model.pt").is_file()) if folder.is_dir() else []


def default_model(root: Path = Path(".")) -> str:
    """The best neural model of the last run (reports/classify/summary.json), else the only one saved."""
    names = available(root)
    if not names:
        raise StageError(f"{root / CLASSIFY_MODELS}: no trained classifier (run: dvc repro classify)")
    summary = root / SUMMARY
    if summary.is_file():
        best = read_json(summary).get("best_neural", {}).get("overall")
        if best in names:
            return best
    return names[0]


def load_classifier(name: str | None = None, root: Path = Path(".")) -> Classifier:
    from nlpdag.models.checkpoints import load_checkpoint

    name = name or default_model(root)
    path = root / CLASSIFY_MODELS / name / "model.pt"
    if not path.is_file():
        known = ", ".join(available(root)) or "none"
        raise StageError(f"{path}: no such classifier {name!r} (trained: {known})")
    model, saved = load_checkpoint(path)
    words = saved.get("words")
    if words is None or model.config.vocab_size != len(words) + 2:
        raise StageError(f"{path}: checkpoint does not match its vocabulary "
                         f"({model.config.vocab_size} embedding rows for {len(words or [])} words + 2)")
    labels_file = root / LABELS
    if labels_file.is_file():
        current = [str(label) for label in read_json(labels_file)]
        if current != saved["labels"]:
            raise StageError(f"{path}: trained on labels {saved['labels']} but {labels_file} now has {current} "
                             "(retrain: dvc repro classify)")
    model.eval()
    phrases = None
    if saved.get("tokenise", {}).get("phrases"):
        from nlpdag.text.tokenise import PHRASES, read_phrases

        phrases = read_phrases(root / PHRASES)
    return Classifier(name, model, saved, phrases)


def predict_texts(clf: Classifier, texts: Sequence[str]) -> pd.DataFrame:
    """One row per text: text, label, confidence and the probability of every label."""
    from nlpdag.config.tokenise import TokeniseParams
    from nlpdag.models.sequences import encode_docs, predict
    from nlpdag.text.tokenise import tokenise_texts

    for k, text in enumerate(texts):
        if not text or not text.strip():
            raise StageError(f"text {k + 1}: empty text, nothing to classify")
    docs = tokenise_texts(texts, TokeniseParams(**clf.saved.get("tokenise", {})))
    if clf.phrases is not None:
        docs = [clf.phrases[d] for d in docs]
    index = {w: i + 2 for i, w in enumerate(clf.saved["words"])}
    seqs = encode_docs(docs, index, clf.saved["max_len"], clf.saved["truncation"])
    if hasattr(clf.model, "prepare"):  # a tree model: its segment trees (a `rae` model's own auto-encoder builds them)
        seqs = clf.model.prepare(seqs)
    proba = np.asarray(predict(clf.model, seqs, device="cpu")["proba"])
    frame = pd.DataFrame({"text": list(texts), "label": [clf.labels[i] for i in proba.argmax(axis=1)],
                          "confidence": proba.max(axis=1)})
    for j, label in enumerate(clf.labels):
        frame[f"p_{label}"] = proba[:, j]
    return frame
