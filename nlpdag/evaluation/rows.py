"""The statistics of the classifier table, as pure functions of rows and the split: every row's scores
with their intervals, the summary (a winner only where an exact McNemar test says so, else "tied"), the
course's family tests and the neural-vs-baseline test, and the choices made on the validation slice.
The `classify` stage writes what they return; nothing here reads or writes a file."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from nlpdag.evaluation import protocol as evaluation
from nlpdag.evaluation.scores import classification_metrics
from nlpdag.names import family


@dataclass
class Dataset:
    doc_ids: np.ndarray          # (N,)
    y: np.ndarray                # (N,) label ids
    sources: pd.Series           # (N,) or all-NA
    docs: list[list[str]]        # token lists, in-vocabulary or not
    train: np.ndarray            # (N,) bool
    labels: list[str]
    validation: np.ndarray | None = None   # (N,) bool, within train: the slice every choice is made on

    @property
    def test(self) -> np.ndarray:
        return ~self.train

    def subset(self, mask: np.ndarray) -> list[list[str]]:
        return [d for d, keep in zip(self.docs, mask) if keep]


@dataclass
class Result:
    name: str
    kind: str                    # baseline | neural
    proba: np.ndarray            # (n_test, n_classes)
    seconds: float               # features + selection + fit, the same for every row
    extra: dict = field(default_factory=dict)
    val_proba: np.ndarray | None = None   # (n_validation, n_classes): the chosen setting on the validation slice
    info: dict = field(default_factory=dict)  # C, validation scores, trained_on, transductive...


def score_results(results: list[Result], data: Dataset, seed: int = 0) -> dict:
    y_test = data.y[data.test]
    sources = data.sources[data.test].reset_index(drop=True)
    lengths = np.array([len(data.docs[i]) for i in np.flatnonzero(data.test)])
    bands = length_bands(lengths)
    models = {}
    for r in results:
        scores = classification_metrics(y_test, r.proba.argmax(axis=1), r.proba, len(data.labels), sources, seed)
        correct = r.proba.argmax(axis=1) == y_test
        scores["by_length"] = {name: {"accuracy": round(float(correct[rows].mean()), 4), "n": int(rows.sum())}
                               for name, rows in bands.items() if rows.any()}
        scores["train_seconds"] = round(r.seconds, 2)
        if "tokens_per_second" in r.extra:
            scores["tokens_per_second"] = round(float(r.extra["tokens_per_second"]))
        scores["kind"] = r.kind
        scores["transductive"] = bool(r.info.get("transductive", False))
        for key in ("C", "validation_accuracy", "epochs", "trained_on", "representation_seconds", "gradients",
                    "ensemble"):
            if key in r.info:
                scores[key] = r.info[key]
        models[r.name] = scores
    return {"models": models}


def length_bands(lengths: np.ndarray) -> dict[str, np.ndarray]:
    """Test documents by token length, in quartiles ("<=52 tokens", "53-110 tokens", ...): the
    evidence for 'LSTMs cope with long documents better than plain RNNs'."""
    if not len(lengths):
        return {}
    edges = np.unique(np.quantile(lengths, [0.25, 0.5, 0.75]).astype(int))
    bands, lo = {}, int(lengths.min())
    for hi in [*edges, int(lengths.max())]:
        rows = (lengths >= lo) & (lengths <= hi)
        if rows.any() and hi >= lo:
            bands[f"{lo}-{hi} tokens"] = rows
        lo = hi + 1
    return bands


def accuracy_on_test(result: Result, data: Dataset) -> float:
    """A row's accuracy on the test split (for the stage's log; the scores are `score_results`')."""
    return float(np.mean(result.proba.argmax(axis=1) == data.y[data.test]))


def validation_accuracy(result: Result, data: Dataset) -> float:
    """A row's accuracy on the validation slice (its `val_proba` rows follow the slice's order)."""
    return float(np.mean(result.val_proba.argmax(axis=1) == data.y[data.validation]))


def chosen_on_validation(results: list[Result], data: Dataset) -> Result | None:
    """The most accurate of `results` on the validation slice (ties: the later name); rows without
    validation predictions are not candidates."""
    pool = [r for r in results if r.val_proba is not None]
    return max(pool, key=lambda r: (validation_accuracy(r, data), r.name), default=None)


def summarise(metrics: dict, results: list[Result], data: Dataset) -> dict:
    """Per scope (overall, each source): the most accurate row on the test split and whether an exact
    McNemar test separates it from the runner-up (`winner`, else null and `tied_with`); the best
    baseline likewise; and `best_neural`, the neural model chosen on the validation slice (the
    default of `nlpdag predict`, the t-SNE classifier map and the attention panel); `at_chance`, the
    neural rows no better than a majority vote on the validation slice, with the likely reason."""
    models = metrics["models"]
    sources = sorted({s for m in models.values() for s in m.get("by_source", {})})
    y_test = data.y[data.test]
    src = data.sources[data.test].fillna("").to_numpy()
    preds = {r.name: r.proba.argmax(axis=1) for r in results}
    kinds = {r.name: r.kind for r in results}
    out: dict = {key: {} for key in ("winner", "best", "tied_with", "p_value", "runner_up", "best_baseline",
                                     "neural_vs_baseline")}
    for scope in [None, *sources]:
        rows = np.ones(len(y_test), bool) if scope is None else src == scope
        key = scope or "overall"
        v = evaluation.verdict(y_test[rows], {n: p[rows] for n, p in preds.items()})
        for name in ("winner", "best", "tied_with", "p_value", "runner_up"):
            out[name][key] = v[name]
        base = evaluation.verdict(y_test[rows], {n: p[rows] for n, p in preds.items() if kinds[n] == "baseline"})["best"]
        out["best_baseline"][key] = base
        out["neural_vs_baseline"][key] = neural_vs_baseline(y_test[rows], {n: p[rows] for n, p in preds.items()}, kinds, base)
    chosen = chosen_on_validation([r for r in results if r.kind == "neural"], data)
    out["best_neural"] = {"overall": chosen and chosen.name, "chosen_on": "validation accuracy"}
    out["versus"] = family_tests(results, data, sources)
    out["at_chance"] = at_chance(results, data)
    out["served"] = served(results, data)
    return {**out, "labels": data.labels, "sources": sources}


# Below these, an at-chance neural row is blamed on its data or its training (the reason `at_chance`
# gives): a model that learns its own embeddings rarely beats the majority class on fewer than about a
# thousand training documents, and one still improving at its last of fewer than five epochs stopped early.
FEW_TRAINING_DOCUMENTS = 1000
FEW_EPOCHS = 5


def versus_majority(val_proba: np.ndarray, y_val: np.ndarray) -> tuple[int, float, float]:
    """(correct, majority share, p): a row's correct answers on the validation slice, the share of its most
    frequent class, and the one-sided exact binomial p that the row does no better than that share."""
    correct = int(np.sum(val_proba.argmax(axis=1) == y_val))
    majority = float(np.bincount(y_val).max()) / len(y_val)
    return correct, majority, float(binomtest(correct, len(y_val), majority, alternative="greater").pvalue)


def at_chance(results: list[Result], data: Dataset, alpha: float = evaluation.ALPHA) -> dict[str, str]:
    """{neural row: reason} for every neural row whose accuracy on the validation slice is not
    significantly above the share of its most frequent class (one-sided exact binomial test at
    `alpha`): such a row has learnt nothing a majority vote would not, however its test accuracy reads.
    The reason names the likely cause: too few training documents (the training split less its
    validation slice), or too few epochs (trained to its last epoch, fewer than FEW_EPOCHS)."""
    if data.validation is None or not data.validation.any():
        return {}
    y_val = data.y[data.validation]
    n_val = len(y_val)
    n_train = int((data.train & ~data.validation).sum())
    out = {}
    for r in results:
        if r.kind != "neural" or r.val_proba is None:
            continue
        correct, majority, p = versus_majority(r.val_proba, y_val)
        if p < alpha:
            continue
        best = r.info.get("epochs")
        trained = len(r.extra.get("history") or []) or best
        few_docs = n_train < FEW_TRAINING_DOCUMENTS
        # Still improving at its last epoch (early stopping kept it): more epochs might help; a model
        # whose best epoch came earlier had stopped learning, and more of them would not.
        few_epochs = best is not None and best == trained and best < FEW_EPOCHS
        epochs = f"{best} epoch{'s' if best != 1 else ''}"
        if few_docs and few_epochs:
            cause = f"{n_train} training documents and {epochs} are likely too few"
        elif few_docs:
            cause = f"{n_train} training documents are likely too few"
        elif few_epochs:
            cause = f"{epochs} are likely too few (it was still improving at the last one)"
        else:
            cause = (f"neither its {n_train} training documents nor "
                     f"{'its epochs' if best is None else epochs} look short: check its settings")
        out[r.name] = (f"at chance on the validation slice ({correct / n_val:.2f} vs majority {majority:.2f}, "
                       f"p {p:.2f}): {cause}")
    return out


NGRAM_ROWS = ("tfidf_logreg", "nb_logreg", "nbsvm")   # pure bag-of-n-grams: nothing learned beyond a linear model


def paired_test(a: Result, b: Result, data: Dataset, sources: list[str]) -> dict:
    """Row a against row b on the same test documents, overall and per source: exact McNemar tests."""
    y = data.y[data.test]
    src = data.sources[data.test].fillna("").to_numpy()
    pa_, pb = a.proba.argmax(axis=1), b.proba.argmax(axis=1)
    scopes = {}
    for scope in ["overall", *sources]:
        rows = np.ones(len(y), bool) if scope == "overall" else src == scope
        acc_a, acc_b = float(np.mean(pa_[rows] == y[rows])), float(np.mean(pb[rows] == y[rows]))
        p = evaluation.mcnemar(y[rows], pa_[rows], pb[rows])
        scopes[scope] = {"accuracy_a": round(acc_a, 4), "accuracy_b": round(acc_b, 4), "gain": round(acc_a - acc_b, 4),
                         "p_value": float(f"{p:.3g}"), "significant": bool(p < evaluation.ALPHA),
                         "n": int(rows.sum())}  # 3 significant digits: a tiny p stays > 0
    return {"a": a.name, "b": b.name, "scopes": scopes}


def family_tests(results: list[Result], data: Dataset, sources: list[str]) -> dict:
    """The course's questions, each a paired (exact McNemar) test on the same test documents, overall and per
    source, between rows chosen on the validation slice:
    - `tree_vs_recurrent`: the best tree model against the best recurrent one (with `short_source`: the
      source whose test texts have the fewest tokens at the median); `transformer_vs_recurrent` likewise;
    - `learned_vs_ngrams`: the best row with a learned part (word or document vectors, a neural model, the
      ensemble) against the best pure bag-of-n-grams row; `by_docvec`: each `nb_docvec@<source>` row
      against that n-gram row (what each source of document vectors adds);
    - `ngram_vs_word_docvecs`: paragraph vectors over n-grams (docvec@doc2vec_ngram) against paragraph
      vectors over words (docvec@doc2vec_dbow)."""
    lengths = np.array([len(data.docs[i]) for i in np.flatnonzero(data.test)])
    src = data.sources[data.test].fillna("").to_numpy()
    by = {f: chosen_on_validation([r for r in results if r.kind == "neural" and family(r.name) == f], data)
          for f in ("rnn", "tree", "transformer")}
    out = {}
    for key, f in (("tree_vs_recurrent", "tree"), ("transformer_vs_recurrent", "transformer")):
        if by[f] is not None and by["rnn"] is not None:
            out[key] = paired_test(by[f], by["rnn"], data, sources)
    if "tree_vs_recurrent" in out and sources:
        out["tree_vs_recurrent"]["short_source"] = min(sources, key=lambda s: (float(np.median(lengths[src == s])), s))
    ngrams = chosen_on_validation([r for r in results if r.name in NGRAM_ROWS], data)
    learned = chosen_on_validation([r for r in results if r.name not in NGRAM_ROWS], data)
    if ngrams is not None and learned is not None:
        out["learned_vs_ngrams"] = paired_test(learned, ngrams, data, sources)
        out["learned_vs_ngrams"]["transductive"] = bool(learned.info.get("transductive"))  # its vectors saw the test texts
        out["learned_vs_ngrams"]["by_docvec"] = {r.name.partition("@")[2]: paired_test(r, ngrams, data, sources)
                                                 for r in results if r.name.startswith("nb_docvec@")}
    by_name = {r.name: r for r in results}
    if "docvec@doc2vec_ngram" in by_name and "docvec@doc2vec_dbow" in by_name:
        out["ngram_vs_word_docvecs"] = paired_test(by_name["docvec@doc2vec_ngram"], by_name["docvec@doc2vec_dbow"],
                                                   data, sources)
    return out


def neural_vs_baseline(y: np.ndarray, preds: dict, kinds: dict, baseline: str | None) -> dict | None:
    """The most accurate row with a neural component (a neural model or an ensemble) against the best
    baseline, by an exact McNemar test on the same documents: the course's question, deep or linear."""
    deep = evaluation.verdict(y, {n: p for n, p in preds.items() if kinds[n] != "baseline"})["best"]
    if deep is None or baseline is None:
        return None
    gain = float(np.mean(preds[deep] == y) - np.mean(preds[baseline] == y))
    p = evaluation.mcnemar(y, preds[deep], preds[baseline])
    return {"row": deep, "baseline": baseline, "gain": round(gain, 4), "p_value": round(p, 4),
            "significant": bool(p < evaluation.ALPHA and gain > 0)}


def servable(result: Result, results: Sequence[Result] = ()) -> bool:
    """Whether `nlpdag predict` can serve a row (nlpdag/classify/serving.py saves it): a neural model; a
    baseline whose model and features' recipe the stage kept (`extra["serving"]`: not a docvec@ row whose
    Doc2Vec model was not saved, nor tfidf_logreg when the bow stage saved none); an ensemble whose members
    (rows of `results`) all are."""
    if result.kind == "neural":
        return True
    if result.kind == "ensemble":
        by_name = {r.name: r for r in results}
        return all(m in by_name and servable(by_name[m]) for m in result.info.get("ensemble", {}).get("members", []))
    return "serving" in result.extra


def served(results: list[Result], data: Dataset, alpha: float = evaluation.ALPHA) -> dict | None:
    """The row `nlpdag predict` serves by default: the servable row most accurate on the validation slice,
    whatever its kind (an ensemble's is its cross-validated accuracy there), and whether that accuracy is
    near chance: not significantly above the slice's majority-class share (one-sided exact binomial test)."""
    row = chosen_on_validation([r for r in results if servable(r, results)], data)
    if row is None:
        return None
    y_val = data.y[data.validation]
    correct, majority, p = versus_majority(row.val_proba, y_val)
    return {"row": row.name, "validation_accuracy": round(correct / len(y_val), 4), "chosen_on": "validation accuracy",
            "near_chance": bool(p >= alpha), "majority_share": round(majority, 4)}
