"""The evaluation protocol: how documents are split, how every choice is made, how a score is reported.

- Splits are functions of the documents, never of their row numbers: each document gets a seeded
  64-bit key from its text (`doc_keys`), and within each label x source stratum the documents with
  the smallest keys form the test split (`hash_split`); the validation slice of the training split is
  chosen the same way under another salt. The same documents in any file order give the same split.
- Trainers see documents in the order of such keys (`stream_order`), so no label-sorted file reaches one.
- Every choice (a linear model's C, epochs, the default model of `predict`, the t-SNE classifier map,
  the attention panel) is made on the validation slice; the test split is scored once (`select`).
- Every accuracy and macro-F1 carries a seeded 95% bootstrap interval (`bootstrap_ci`); a winner is
  named only when an exact McNemar test against the runner-up says so at 5% (`verdict`), else "tied".
"""
from __future__ import annotations

import hashlib
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy.stats import binomtest

SPLIT_SALT, VALIDATION_SALT, STREAM_SALT, SAMPLE_SALT = "test", "validation", "stream", "sample"
BOOTSTRAP_ROUNDS = 1000
ALPHA = 0.05


def doc_keys(texts: Sequence[str], seed: int, salt: str) -> np.ndarray:
    """(n,) uint64: a key per document from its text alone (texts may be digests of the texts)."""
    prefix = f"{seed}\x1f{salt}\x1f".encode()
    return np.fromiter((int.from_bytes(hashlib.blake2b(prefix + t.encode("utf-8", "surrogatepass"),
                                                       digest_size=8).digest(), "little") for t in texts),
                       dtype=np.uint64, count=len(texts))


def hash_split(strata: Sequence[str], keys: np.ndarray, fraction: float) -> np.ndarray:
    """(n,) bool: round(fraction * n) documents, shared among the strata in proportion to their sizes
    (largest remainders, ties by stratum name), within each stratum those with the smallest keys."""
    strata = np.asarray(strata, dtype=object)
    names, inverse = np.unique(strata, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(names))
    exact = sizes * fraction
    take = np.floor(exact).astype(int)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: int(round(len(strata) * fraction)) - take.sum()]] += 1
    chosen = np.zeros(len(strata), dtype=bool)
    for s, k in enumerate(take):
        if k:
            members = np.flatnonzero(inverse == s)
            chosen[members[np.argsort(keys[members], kind="stable")[:k]]] = True
    return chosen


def stream_order(keys: np.ndarray) -> np.ndarray:
    """The order in which a trainer sees documents: by their keys, a seeded shuffle that does not
    depend on the file's row order."""
    return np.argsort(keys, kind="stable")


# ---- intervals and paired tests ------------------------------------------------------------------

def _macro_f1_from_counts(counts: np.ndarray) -> np.ndarray:
    """counts (..., k, k) confusion (actual, predicted) -> macro-F1 over classes present in actual
    or predicted; classes never seen count as F1 0 only where scikit-learn would (labels=range(k))."""
    tp = np.diagonal(counts, axis1=-2, axis2=-1).astype(np.float64)
    actual, predicted = counts.sum(axis=-1), counts.sum(axis=-2)
    denom = actual + predicted
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return f1.mean(axis=-1)


def bootstrap_ci(y: np.ndarray, pred: np.ndarray, n_classes: int, seed: int = 0,
                 rounds: int = BOOTSTRAP_ROUNDS, level: float = 0.95) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals of accuracy and macro-F1 (documents resampled with replacement,
    `rounds` times, seeded); None for an empty set."""
    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if len(y) == 0:
        return {"accuracy_ci": None, "macro_f1_ci": None}
    rng = np.random.default_rng([seed, len(y)])
    draws = rng.integers(0, len(y), size=(rounds, len(y)))
    cell = y[draws] * n_classes + pred[draws]                                      # (R, n)
    flat = (np.arange(rounds)[:, None] * n_classes * n_classes + cell).ravel()
    counts = np.bincount(flat, minlength=rounds * n_classes * n_classes).reshape(rounds, n_classes, n_classes)
    accuracy = np.trace(counts, axis1=1, axis2=2) / len(y)
    macro_f1 = _macro_f1_from_counts(counts)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2

    def interval(values: np.ndarray) -> list[float]:
        return [round(float(np.percentile(values, lo)), 4), round(float(np.percentile(values, hi)), 4)]

    return {"accuracy_ci": interval(accuracy), "macro_f1_ci": interval(macro_f1)}


def mcnemar(y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Exact McNemar p-value (two-sided) that models a and b are equally accurate on the same documents."""
    y, a, b = np.asarray(y), np.asarray(pred_a), np.asarray(pred_b)
    only_a = int(((a == y) & (b != y)).sum())
    only_b = int(((b == y) & (a != y)).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def verdict(y: np.ndarray, preds: Mapping[str, np.ndarray], alpha: float = ALPHA) -> dict:
    """The most accurate model, and whether a paired test separates it from the others: `winner` is its
    name when McNemar against the runner-up gives p < alpha, else None; `best` is always its name;
    `tied_with` lists every model the test does not separate from it (p >= alpha)."""
    if not preds:
        return {"best": None, "winner": None, "runner_up": None, "p_value": None, "tied_with": []}
    accuracy = {name: float(np.mean(np.asarray(p) == y)) for name, p in preds.items()}
    ranked = sorted(accuracy, key=lambda n: (-accuracy[n], n))
    best = ranked[0]
    p_values = {name: mcnemar(y, preds[best], preds[name]) for name in ranked[1:]}
    tied = [name for name in ranked[1:] if p_values[name] >= alpha]
    runner_up = ranked[1] if len(ranked) > 1 else None
    separated = runner_up is None or p_values[runner_up] < alpha
    return {"best": best, "winner": best if separated else None, "runner_up": runner_up,
            "p_value": None if runner_up is None else round(p_values[runner_up], 4), "tied_with": tied}


# ---- choosing on the validation slice -------------------------------------------------------------

def select(grid: Sequence[float], score: Callable[[float], float]) -> tuple[float, dict[float, float]]:
    """The value of `grid` with the best validation score (ties: the smaller value, the stronger
    regularisation for C), and every value's score. `score` fits on the training part only."""
    scores = {float(value): float(score(value)) for value in sorted(grid)}
    best = max(scores, key=lambda v: (scores[v], -v))
    return best, scores
