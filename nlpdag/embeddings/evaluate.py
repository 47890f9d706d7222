"""Stage `evaluate`: intrinsic evaluation of every embedding method on the same footing.

Word analogies (gensim's `questions-words.txt`, restricted to the most frequent words, with the
share of questions answered; accuracy also per half: semantic sections and syntactic "gram" ones), Spearman correlation with human similarity judgements
(`wordsim353.tsv`, `simlex999.txt`, with the out-of-vocabulary ratio), and nearest neighbours of
probe words; for FastText, the typo probes its stage measured (reports/train/fasttext.json). The
test sets ship inside gensim; nothing is downloaded.

No confident numbers from noise: on a small corpus of one's own, most test words are unknown and
a Spearman correlation over two or three pairs is ±1 by construction. So a score is null unless its
evidence reaches a minimum, and the evidence is recorded next to it:
- a similarity set's Spearman correlation needs MIN_PAIRS (10) pairs with both words in the vocabulary
  (`<set>_pairs` counts them): over 3 pairs there are 6 rankings and ±1 turns up by chance one time in
  three; even at 10 the 95% interval of a true 0 spans about ±0.6, so fewer pairs measure nothing;
- the analogy accuracy needs MIN_ANALOGY_QUESTIONS (100) answerable questions (`analogy_questions`):
  the 95% interval of an accuracy over 100 questions is still about ±0.1 wide each side, over a
  handful it covers most of [0, 1]; its semantic/syntactic halves (each with its `n`) are null with it.

Output: `reports/scores/embeddings.json` ({method: {analogy_accuracy, analogy_questions,
wordsim353_spearman, wordsim353_pairs, ...}}, the headline in reports/metrics/), `reports/neighbours.json`.
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
from nlpdag.catalog.evaluate import EMBEDDINGS_METRICS, EMBEDDINGS_SCORES, NEIGHBOURS
from nlpdag.evaluation.headline import embeddings_headline, write_scores
# The methods the pipeline trains, in the order the report shows them; `pretrained` joins when set.
ANALOGIES = "questions-words.txt"
SIMILARITY_SETS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
MIN_PAIRS = 10                 # known pairs a similarity score needs (module docstring)
MIN_ANALOGY_QUESTIONS = 100    # answerable questions an analogy accuracy needs (module docstring)


def keyed_vectors(tokens: list[str], matrix: np.ndarray) -> KeyedVectors:
    kv = KeyedVectors(vector_size=matrix.shape[1])
    kv.add_vectors(tokens, matrix)
    return kv


def analogy_scores(kv: KeyedVectors, questions: str | Path, restrict: int,
                   min_questions: int = MIN_ANALOGY_QUESTIONS) -> dict:
    """Accuracy over the questions answerable within the `restrict` most frequent words (null, with its
    halves, when fewer than `min_questions` are), their number, and the share of all questions that
    were answerable (coverage).

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
    coverage = round(len(rows) / total, 4) if total else None
    if not rows or len(rows) < min_questions:  # too little evidence: undefined, not a noisy number
        return {"analogy_accuracy": None, "analogy_questions": len(rows), "analogy_coverage": coverage,
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

    return {"analogy_accuracy": round(float(hits.mean()), 4), "analogy_questions": len(quads),
            "analogy_coverage": coverage,
            "analogy_semantic": part(~syntactic), "analogy_syntactic": part(syntactic)}


def known_pairs(kv: KeyedVectors, pairs: str | Path) -> tuple[int, int]:
    """(pairs with both words in the vocabulary, all pairs) of a similarity file, read as gensim's
    `evaluate_word_pairs(case_insensitive=True)` reads it: tab-separated word, word, score; lines
    starting with # and lines that do not parse are skipped."""
    known = {w.upper() for w in kv.index_to_key}
    hits = total = 0
    with open(pairs, encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            try:
                a, b, score = fields
                float(score)
            except ValueError:
                continue
            total += 1
            hits += a.upper() in known and b.upper() in known
    return hits, total


def similarity_scores(kv: KeyedVectors, name: str, pairs: str | Path, min_pairs: int = MIN_PAIRS) -> dict:
    """`<name>_spearman` against human judgements, null unless `min_pairs` pairs are in the vocabulary;
    `<name>_pairs`, how many are; `<name>_oov`, the share that are not."""
    n, total = known_pairs(kv, pairs)
    out = {f"{name}_spearman": None, f"{name}_pairs": n, f"{name}_oov": round(1 - n / total, 4) if total else None}
    if n >= max(min_pairs, 2):  # scipy needs two pairs for any correlation
        (_, _), (rho, _), _ = kv.evaluate_word_pairs(str(pairs), case_insensitive=True)
        out[f"{name}_spearman"] = round(float(rho), 4) if rho == rho else None  # constant ranks: NaN, undefined
    return out


def evaluate_vectors(kv: KeyedVectors, params: EvaluateParams, analogies: str | Path | None = None,
                     similarity_sets: dict[str, str | Path] | None = None, min_pairs: int = MIN_PAIRS,
                     min_questions: int = MIN_ANALOGY_QUESTIONS) -> dict:
    """All intrinsic metrics of one set of word vectors (frequency-ordered); a score without enough
    evidence (module docstring) is None."""
    out = analogy_scores(kv, analogies or datapath(ANALOGIES), params.analogy_restrict, min_questions)
    for name, path in (similarity_sets or {k: datapath(v) for k, v in SIMILARITY_SETS.items()}).items():
        out.update(similarity_scores(kv, name, path, min_pairs))
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


def shown(value: float | None, n: int | None, unit: str) -> str:
    """A score for the log, with its evidence: "0.412 (353 pairs)", or "n/a (3 pairs)" when undefined."""
    return f"{'n/a' if value is None else f'{value:.3f}'} ({n if n is not None else '?'} {unit})"


def log_line(method: str, scores: dict) -> str:
    """The stage's line for a method; never fails on a null score."""
    s = scores.get
    return (f"evaluate: {method:<13} analogy {shown(s('analogy_accuracy'), s('analogy_questions'), 'questions')}, "
            f"WS353 {shown(s('wordsim353_spearman'), s('wordsim353_pairs'), 'pairs')}, "
            f"SimLex {shown(s('simlex999_spearman'), s('simlex999_pairs'), 'pairs')}")


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
        print(log_line(method, scores))
    write_scores(metrics, EMBEDDINGS_SCORES, EMBEDDINGS_METRICS, embeddings_headline(metrics))
    write_json(probes, NEIGHBOURS)
