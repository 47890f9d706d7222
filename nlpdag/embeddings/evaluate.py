"""Stage `evaluate`: intrinsic evaluation of every embedding method on the same footing.

Word analogies (gensim's `questions-words.txt`, restricted to the most frequent words, with the
share of questions answered; accuracy also per half: semantic sections and syntactic "gram" ones), Spearman correlation with human similarity judgements
(`wordsim353.tsv`, `simlex999.txt`, with the out-of-vocabulary ratio), and nearest neighbours of
probe words; for FastText, the typo probes its stage measured (reports/train/fasttext.json). The
test sets ship inside gensim; nothing is downloaded.

Output: `reports/metrics/embeddings.json` ({method: {analogy_accuracy, ...}}), `reports/neighbours.json`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from nlpdag.errors import StageError
from nlpdag.io.tables import read_json, write_json
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.io.vectors import read_vectors
from nlpdag.catalog.embeddings import EMBEDDINGS_DIR, METHODS, TRAIN_DIR
from nlpdag.catalog.evaluate import EMBEDDINGS_METRICS, NEIGHBOURS
# The methods the pipeline trains, in the order the report shows them; `pretrained` joins when set.
ANALOGIES = "questions-words.txt"
SIMILARITY_SETS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}



def keyed_vectors(tokens: list[str], matrix: np.ndarray) -> KeyedVectors:
    kv = KeyedVectors(vector_size=matrix.shape[1])
    kv.add_vectors(tokens, matrix)
    return kv


def analogy_scores(kv: KeyedVectors, questions: str | Path, restrict: int) -> dict:
    """Accuracy over the questions answerable within the `restrict` most frequent words, and the share
    of all questions that were answerable (coverage).

    The same protocol as gensim's `evaluate_word_analogies(restrict_vocab=restrict, case_insensitive=True)`,
    vectorised: words are upper-cased and the first (most frequent) of each upper-cased form stands for
    it; a question counts when its four words are all among the first `restrict` words; the answer is
    3CosAdd, argmax over unit vectors of cos(x, b - a + c) excluding a, b, c (and their case variants),
    found for a batch of questions at a time with one matrix product.
    """
    batch = 512  # questions per product: (512, restrict) float32 scores, 60 MB at 30,000 words
    words = kv.index_to_key[:restrict]
    first: dict[str, int] = {}
    for i, word in enumerate(words):
        first.setdefault(word.upper(), i)
    total, rows, syntactic, is_syntactic = 0, [], [], False
    with open(questions, encoding="utf-8") as f:
        for line in f:
            if line.startswith(":"):  # a section: ": gram..." ones are syntactic, the others semantic
                is_syntactic = line[1:].strip().startswith("gram")
                continue
            if not line.strip():
                continue
            total += 1
            ids = [first.get(word.upper()) for word in line.split()]
            if len(ids) == 4 and None not in ids:
                rows.append(ids)
                syntactic.append(is_syntactic)
    if not rows:  # nothing answerable: undefined, not 0
        return {"analogy_accuracy": None, "analogy_coverage": 0.0 if total else None,
                "analogy_semantic": None, "analogy_syntactic": None}
    quads = np.asarray(rows, dtype=np.int64)  # (Q, 4): a, b, c, expected as indices of first forms
    unit = np.asarray(kv.vectors[:len(words)], dtype=np.float32)
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    unit = unit / np.where(norms > 0, norms, 1.0)  # (R, D)
    # Case variants (e.g. "King" after "king") are excluded along with the form that stands for them.
    group = np.array([first[word.upper()] for word in words], dtype=np.int64)  # (R,)
    variants = np.flatnonzero(group != np.arange(len(words)))
    hits = np.zeros(len(quads), dtype=bool)
    for lo in range(0, len(quads), batch):
        q = quads[lo:lo + batch]
        target = unit[q[:, 1]] - unit[q[:, 0]] + unit[q[:, 2]]  # (B, D)
        sims = target @ unit.T  # (B, R)
        rows_b = np.arange(len(q))[:, None]
        sims[rows_b, q[:, :3]] = -np.inf
        if len(variants):
            hit = (group[variants][None, :, None] == q[:, None, :3]).any(axis=2)  # (B, n_variants)
            sims[:, variants] = np.where(hit, -np.inf, sims[:, variants])
        hits[lo:lo + batch] = sims.argmax(axis=1) == q[:, 3]
    syntactic = np.asarray(syntactic)

    def part(mask: np.ndarray) -> dict | None:  # accuracy and the number of questions, for intervals
        return {"accuracy": round(float(hits[mask].mean()), 4), "n": int(mask.sum())} if mask.any() else None

    return {"analogy_accuracy": round(float(hits.mean()), 4),
            "analogy_coverage": round(len(quads) / total, 4) if total else 0.0,
            "analogy_semantic": part(~syntactic), "analogy_syntactic": part(syntactic)}


def similarity_scores(kv: KeyedVectors, name: str, pairs: str | Path) -> dict:
    try:
        (_, _), (rho, _), oov = kv.evaluate_word_pairs(str(pairs), case_insensitive=True)
    except ValueError:  # scipy refuses a correlation when fewer than two pairs are in the vocabulary
        rows = [l.split("\t")[:2] for l in open(pairs, encoding="utf-8") if l.strip() and not l.startswith("#")]
        known = {w.upper() for w in kv.index_to_key}
        missing = sum(1 for a, b in rows if a.upper() not in known or b.upper() not in known)
        rho, oov = float("nan"), 100.0 * missing / max(len(rows), 1)
    # undefined (fewer than two pairs in the vocabulary): null, never a made-up 0
    rho = round(float(rho), 4) if rho == rho else None
    return {f"{name}_spearman": rho, f"{name}_oov": round(float(oov) / 100, 4)}


def evaluate_vectors(kv: KeyedVectors, params: EvaluateParams, analogies: str | Path | None = None,
                     similarity_sets: dict[str, str | Path] | None = None) -> dict:
    """All intrinsic metrics of one set of word vectors (frequency-ordered)."""
    out = analogy_scores(kv, analogies or datapath(ANALOGIES), params.analogy_restrict)
    for name, path in (similarity_sets or {k: datapath(v) for k, v in SIMILARITY_SETS.items()}).items():
        out.update(similarity_scores(kv, name, path))
    out["vocab_size"] = len(kv)
    return out


def neighbours(kv: KeyedVectors, probes: list[str], n: int) -> dict[str, list[list]]:
    return {p: [[w, round(float(s), 3)] for w, s in kv.most_similar(p, topn=n)] for p in probes if p in kv}


def load_method(method: str, folder: Path = EMBEDDINGS_DIR) -> KeyedVectors | None:
    """The method's vectors, or None when its table is empty (no pre-trained file set)."""
    tokens, matrix = read_vectors(folder / f"{method}.parquet")
    if not tokens:
        return None
    if not np.isfinite(matrix).all():
        raise StageError(f"{folder / f'{method}.parquet'}: vectors contain NaN or infinite values")
    return keyed_vectors(tokens, matrix)


def run(params: EvaluateParams) -> None:
    """The `evaluate` stage: every method's intrinsic scores and probe-word neighbours."""
    logging.getLogger("gensim").setLevel(logging.WARNING)
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
