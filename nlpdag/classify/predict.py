"""Labels for new texts from any saved row of the classifier table, without retraining: a neural model a
`neural@<key>` stage saved (data/models/classify/<key>), or a baseline or the ensemble the `classify` stage
saved (data/models/rows/<folder>, nlpdag/classify/serving.py).

Every saved model carries its labels and the tokenise params it was trained with, so a text is tokenised
exactly as the training documents were. The default is the row the last run chose on the validation
slice (reports/classify/summary.json "served").
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nlpdag.catalog.classify import NEURAL_MODELS, ROW_MODELS, SUMMARY
from nlpdag.catalog.ingest import LABELS
from nlpdag.classify.serving import NOT_SERVABLE, load_row, not_servable_reason, saved_rows
from nlpdag.errors import StageError
from nlpdag.io.tables import read_json
from nlpdag.models.classifier import CONFIG_FILE, MODEL_FILE


@dataclass
class Classifier:
    name: str                    # its row in the classifier table
    key: str                     # its folder: data/models/classify/<key> (neural@<key>) or data/models/rows/<key>
    model: object                # a NeuralClassifier, or a serving.RowModel
    phrases: object = None       # gensim's frozen phrases, when trained with tokenise.phrases
    kind: str = "neural"         # neural | row
    validation_accuracy: float | None = None
    served: dict = field(default_factory=dict)   # summary["served"] when this is the served row

    @property
    def neural(self) -> bool:
        return self.kind == "neural"

    @property
    def labels(self) -> list[str]:
        return list(self.model.labels_ if self.neural else self.model.labels)

    @property
    def tokenise(self) -> dict:
        return dict(self.model.meta_.get("tokenise", {}) if self.neural else self.model.tokenise)

    def predict_proba(self, docs: list[list[str]]) -> np.ndarray:
        if self.neural:
            return np.asarray(self.model.predict_proba(docs, device="cpu"))
        return np.asarray(self.model.predict_proba(docs))


def saved_models(root: Path = Path(".")) -> dict[str, str]:
    """{key: spec} of every saved neural model."""
    folder = root / NEURAL_MODELS
    out = {}
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        if (p / MODEL_FILE).is_file() and (p / CONFIG_FILE).is_file():
            try:
                out[p.name] = json.loads((p / CONFIG_FILE).read_text(encoding="utf-8"))["spec"]
            except (ValueError, KeyError):
                continue
    return out


def restorable(path: Path, root: Path) -> bool:
    """Whether dvc.lock records `path` (or a folder above it) as an output whose data is in the DVC cache:
    then `dvc checkout` brings it back without rerunning anything."""
    import yaml

    lock = root / "dvc.lock"
    if not lock.is_file():
        return False
    try:
        stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
    except yaml.YAMLError:
        return False
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    for stage in stages.values():
        for out in stage.get("outs", []):
            where, md5 = str(out.get("path", "")), str(out.get("md5", ""))
            if md5 and (rel == where or rel.startswith(where.rstrip("/") + "/")):
                return (root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).exists()
    return False


def _missing(path: Path, root: Path) -> str:
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    return f"restore it: dvc checkout {rel}" if restorable(path, root) else "run: dvc repro"


def available(root: Path = Path(".")) -> dict[str, tuple[str, str]]:
    """{row name: (kind, folder)} of every servable saved model: kind "neural" or "row"."""
    out = {spec: ("neural", key) for key, spec in saved_models(root).items()}
    out.update({name: ("row", folder) for name, folder in saved_rows(root).items()})
    return out


def _summary(root: Path) -> dict:
    summary = root / SUMMARY
    return read_json(summary) if summary.is_file() else {}


def resolve(name: str | None, root: Path = Path(".")) -> tuple[str, str, str]:
    """(row name, kind, folder) of a model named by its row name, neural key or row folder; None: the row
    the last run serves (summary.json "served"), else its best neural model, else the first saved."""
    saved = available(root)
    if name is None:
        summary = _summary(root)
        wanted = (summary.get("served") or {}).get("row") or (summary.get("best_neural") or {}).get("overall")
        if wanted is not None and wanted not in saved:
            folder = root / (ROW_MODELS if wanted not in saved_models(root).values() else NEURAL_MODELS)
            raise StageError(f"{folder}: the served model {wanted!r} is missing ({_missing(folder, root)})")
        if not saved:
            raise StageError(f"{root / NEURAL_MODELS}: no trained classifier ({_missing(root / NEURAL_MODELS, root)})")
        name = wanted or next(iter(saved))
    if name in saved:
        return (name, *saved[name])
    for row, (kind, folder) in saved.items():
        if folder == name:
            return row, kind, folder
    known = ", ".join(row if saved[row][0] == "row" else f"{row} (key {saved[row][1]})" for row in saved) or "none"
    why = not_servable_reason(name)
    # Only the kinds this run could not save are worth a word (an older run's bow or doc2vec stage kept no model).
    missing = {k: v for k, v in NOT_SERVABLE.items() if not any(not_servable_reason(row) == v for row in saved)}
    unserved = "; ".join(f"{k}{'*' if k.endswith('@') else ''}: {v}" for k, v in missing.items())
    raise StageError(f"no such classifier {name!r}" + (f" ({why})" if why else "") +
                     f"; saved: {known}" + (f"; not servable: {unserved}" if unserved else ""))


def load_classifier(name: str | None = None, root: Path = Path(".")) -> Classifier:
    """A saved model by its row name, key or folder (None: the default, `resolve`)."""
    row, kind, key = resolve(name, root)
    if kind == "neural":
        from nlpdag.models.classifier import NeuralClassifier

        folder = root / NEURAL_MODELS / key
        model = NeuralClassifier.load(folder)
        labels, retrain = list(model.labels_), f"neural@{key}"
        accuracy = None
    else:
        folder = root / ROW_MODELS / key
        model = load_row(folder, root)
        labels, retrain, accuracy = list(model.labels), "classify", model.validation_accuracy
    labels_file = root / LABELS
    if labels_file.is_file():
        current = [str(label) for label in read_json(labels_file)]
        if current != labels:
            raise StageError(f"{folder}: trained on labels {labels} but {labels_file} now has {current} "
                             f"(retrain: dvc repro {retrain})")
    served = _summary(root).get("served") or {}
    served = served if served.get("row") == row else {}
    if accuracy is None:
        accuracy = served.get("validation_accuracy", _scored_accuracy(row, root))
    clf = Classifier(row, key, model, kind=kind, validation_accuracy=accuracy, served=served)
    if clf.tokenise.get("phrases"):
        from nlpdag.text.tokenise import PHRASES, read_phrases

        clf.phrases = read_phrases(root / PHRASES)
    return clf


def _scored_accuracy(row: str, root: Path) -> float | None:
    """A neural row's validation accuracy as the last classify run scored it (reports/scores/classify.json)."""
    from nlpdag.catalog.classify import CLASSIFY_SCORES

    path = root / CLASSIFY_SCORES
    value = read_json(path).get("models", {}).get(row, {}).get("validation_accuracy") if path.is_file() else None
    return float(value) if isinstance(value, (int, float)) else None


def predict_texts(clf: Classifier, texts: Sequence[str]) -> pd.DataFrame:
    """One row per text: text, label, confidence and the probability of every label."""
    from nlpdag.config.tokenise import TokeniseParams
    from nlpdag.text.tokenise import tokenise_texts

    for k, text in enumerate(texts):
        if not text or not text.strip():
            raise StageError(f"text {k + 1}: empty text, nothing to classify")
    docs = tokenise_texts(texts, TokeniseParams(**clf.tokenise))
    if clf.phrases is not None:
        docs = [clf.phrases[d] for d in docs]
    proba = clf.predict_proba(docs)
    labels = clf.labels
    frame = pd.DataFrame({"text": list(texts), "label": [labels[i] for i in proba.argmax(axis=1)],
                          "confidence": proba.max(axis=1)})
    for j, label in enumerate(labels):
        frame[f"p_{label}"] = proba[:, j]
    return frame
