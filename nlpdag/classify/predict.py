"""Labels for new texts from a classifier a `neural@<key>` stage saved, without retraining.

The saved model carries its words, labels, truncation and the tokenise params it was trained with,
so a text is tokenised and cut exactly as the training documents were.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nlpdag.catalog.classify import NEURAL_MODELS, SUMMARY
from nlpdag.catalog.ingest import LABELS
from nlpdag.errors import StageError
from nlpdag.io.tables import read_json
from nlpdag.models.classifier import CONFIG_FILE, MODEL_FILE


@dataclass
class Classifier:
    name: str                    # the model's spec (its row in the classifier table)
    key: str                     # its folder and stage: data/models/classify/<key>, neural@<key>
    model: object                # the fitted NeuralClassifier
    phrases: object = None       # gensim's frozen phrases, when trained with tokenise.phrases

    @property
    def labels(self) -> list[str]:
        return self.model.labels_


def saved_models(root: Path = Path(".")) -> dict[str, str]:
    """{key: spec} of every saved model."""
    folder = root / NEURAL_MODELS
    out = {}
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if (p / MODEL_FILE).is_file() and (p / CONFIG_FILE).is_file():
            try:
                out[p.name] = json.loads((p / CONFIG_FILE).read_text(encoding="utf-8"))["spec"]
            except (ValueError, KeyError):
                continue
    return out


def resolve(name: str | None, root: Path = Path(".")) -> str:
    """The key of a model named by key or spec; None: the neural model chosen on the validation slice in
    the last run (reports/classify/summary.json), else the first saved."""
    saved = saved_models(root)
    if not saved:
        raise StageError(f"{root / NEURAL_MODELS}: no trained classifier (run: dvc repro)")
    if name is None:
        summary = root / SUMMARY
        best = read_json(summary).get("best_neural", {}).get("overall") if summary.is_file() else None
        name = best if best in saved.values() else next(iter(saved))
    if name in saved:
        return name
    for key, spec in saved.items():
        if spec == name:
            return key
    known = ", ".join(f"{k} ({s})" for k, s in saved.items())
    raise StageError(f"{root / NEURAL_MODELS}: no such classifier {name!r} (trained: {known})")


def load_classifier(name: str | None = None, root: Path = Path(".")) -> Classifier:
    """A saved model by its key or spec (None: the default, `resolve`)."""
    from nlpdag.models.classifier import NeuralClassifier

    key = resolve(name, root)
    folder = root / NEURAL_MODELS / key
    model = NeuralClassifier.load(folder)
    labels_file = root / LABELS
    if labels_file.is_file():
        current = [str(label) for label in read_json(labels_file)]
        if current != model.labels_:
            raise StageError(f"{folder}: trained on labels {model.labels_} but {labels_file} now has {current} "
                             f"(retrain: dvc repro neural@{key})")
    phrases = None
    if model.meta_.get("tokenise", {}).get("phrases"):
        from nlpdag.text.tokenise import PHRASES, read_phrases

        phrases = read_phrases(root / PHRASES)
    return Classifier(model.spec, key, model, phrases)


def predict_texts(clf: Classifier, texts: Sequence[str]) -> pd.DataFrame:
    """One row per text: text, label, confidence and the probability of every label."""
    from nlpdag.config.tokenise import TokeniseParams
    from nlpdag.text.tokenise import tokenise_texts

    for k, text in enumerate(texts):
        if not text or not text.strip():
            raise StageError(f"text {k + 1}: empty text, nothing to classify")
    docs = tokenise_texts(texts, TokeniseParams(**clf.model.meta_.get("tokenise", {})))
    if clf.phrases is not None:
        docs = [clf.phrases[d] for d in docs]
    proba = np.asarray(clf.model.predict_proba(docs, device="cpu"))
    frame = pd.DataFrame({"text": list(texts), "label": [clf.labels[i] for i in proba.argmax(axis=1)],
                          "confidence": proba.max(axis=1)})
    for j, label in enumerate(clf.labels):
        frame[f"p_{label}"] = proba[:, j]
    return frame
