"""The course's claims, each answered by this run's measurements, and the human names of every id.

`check_claims` reads the metrics the stages wrote (dicts, no I/O) and returns one `Claim` per claim
of the course: the measurement that answers it and a verdict, `supported`, `contradicted`,
`inconclusive` (the intervals overlap, or the run cannot separate the cases) or `not measured` (with
the `dvc exp run` that would measure it). Accuracies are compared by their 95% intervals (Wilson for
analogy accuracies, the classifier table's bootstrap for classifiers): a claim is only called where
the intervals do not overlap. A timing claim needs both runs of at least a second and a ratio outside
0.8-1.25, and a null score (too little evidence, as evaluate writes it) leaves its claim not measured:
no verdict from noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from nlpdag.names import REDUCER_NAMES, human, human_source, is_model, parse_model

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED = "supported", "contradicted", "inconclusive", "not measured"

@dataclass
class Claim:
    claim: str
    measurement: str
    verdict: str
    how: str = ""            # the command that measures it, where this run does not


def wilson(accuracy: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a proportion."""
    if n <= 0:
        return (0.0, 1.0)
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def compare(a: tuple[float, float], b: tuple[float, float]) -> int:
    """+1 when interval a lies above b, -1 below, 0 when they overlap."""
    return 1 if a[0] > b[1] else -1 if a[1] < b[0] else 0


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _p(p: float) -> str:
    return "< 0.0001" if p < 1e-4 else f"{p:.2g}"


def _scope(scope: str) -> str:
    return scope if scope == "overall" else human_source(scope)


def tally(claims: list[Claim]) -> dict[str, int]:
    """How many claims got each verdict, every verdict present (0 where none)."""
    out = dict.fromkeys((SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED), 0)
    for c in claims:
        out[c.verdict] = out.get(c.verdict, 0) + 1
    return out


def _ci(interval) -> str:
    return f"[{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


# A timing is only evidence when both runs are long enough for the clock and the ratio is wider than the
# run-to-run scatter of a shared 2-core machine: below that a "faster" would be noise.
MIN_SECONDS = 1.0
NOISE_RATIO = (0.8, 1.25)


def speed_claim(emb: Mapping) -> Claim:
    claim = "CBOW trains faster than skip-gram"
    how = "dvc repro word2vec@cbow word2vec@skipgram"
    cbow, skip = (emb.get(m, {}).get("train_seconds") for m in ("word2vec_cbow", "word2vec_skipgram"))
    if cbow is None or skip is None:
        return Claim(claim, "word2vec CBOW or skip-gram did not run", NOT_MEASURED, how)
    times = f"CBOW {cbow:.1f} s, skip-gram {skip:.1f} s"
    if min(cbow, skip) < MIN_SECONDS:
        return Claim(claim, f"{times}: under {MIN_SECONDS:g} s a run is too short to time",
                     NOT_MEASURED, "a larger corpus: dvc exp run -S data.max_docs=null")
    ratio = cbow / skip
    if NOISE_RATIO[0] <= ratio <= NOISE_RATIO[1]:
        return Claim(claim, f"{times} (CBOW takes {ratio:.2f}x the time): within the {NOISE_RATIO[0]:g}-"
                            f"{NOISE_RATIO[1]:g} ratio that run-to-run noise gives", NOT_MEASURED,
                     "a larger corpus: dvc exp run -S data.max_docs=null")
    verdict = SUPPORTED if ratio < NOISE_RATIO[0] else CONTRADICTED
    return Claim(claim, f"same corpus, epochs and threads: {times} (CBOW takes {ratio:.2f}x the time)", verdict)


def analogy_halves_claim(emb: Mapping) -> Claim:
    claim = "Skip-gram is better on semantic analogies, CBOW on syntactic ones"
    halves = {}
    for method in ("word2vec_cbow", "word2vec_skipgram"):
        for half in ("semantic", "syntactic"):
            part = emb.get(method, {}).get(f"analogy_{half}")
            if not part or part.get("accuracy") is None or not part.get("n"):
                # evaluate writes null where too few questions were answerable to score
                return Claim(claim, f"too few answerable {half} analogies to score {human(method)}", NOT_MEASURED,
                             "dvc exp run -S evaluate.analogy_restrict=100000")
            halves[method, half] = (part["accuracy"], wilson(part["accuracy"], part["n"]), part["n"])
    sem = compare(halves["word2vec_skipgram", "semantic"][1], halves["word2vec_cbow", "semantic"][1])
    syn = compare(halves["word2vec_cbow", "syntactic"][1], halves["word2vec_skipgram", "syntactic"][1])
    verdict = SUPPORTED if sem > 0 and syn > 0 else CONTRADICTED if sem < 0 or syn < 0 else INCONCLUSIVE
    text = "; ".join(f"{half}: skip-gram {_pct(halves['word2vec_skipgram', half][0])} {_ci(halves['word2vec_skipgram', half][1])} "
                     f"vs CBOW {_pct(halves['word2vec_cbow', half][0])} {_ci(halves['word2vec_cbow', half][1])} "
                     f"({halves['word2vec_cbow', half][2]:,} questions)" for half in ("semantic", "syntactic"))
    if 0 < sem + syn < 2 and verdict == INCONCLUSIVE:
        text += " (one half separates, the other's intervals overlap)"
    return Claim(claim, text, verdict)


def sampling_claim() -> Claim:
    return Claim("Negative sampling and subsampling of frequent words make word2vec better and faster",
                 "this run trains one setting (word2vec.negative, word2vec.sample); the comparison is two "
                 "experiments away", NOT_MEASURED,
                 "dvc exp run -S word2vec.negative=0 -S word2vec.hs=true; dvc exp run -S word2vec.sample=0; "
                 "nlpdag compare")


def fasttext_claim(emb: Mapping, tokenise: Mapping) -> Claim:
    claim = "FastText gives useful vectors to unseen words (character n-grams)"
    probes = emb.get("fasttext", {}).get("unseen_words") or {}
    share, n = probes.get("typo_top10"), probes.get("typos", 0)
    if share is None:
        return Claim(claim, "no FastText typo probes in this run", NOT_MEASURED, "dvc repro fasttext evaluate")
    lo, hi = wilson(share, n)
    coverage = tokenise.get("test_token_coverage")
    verdict = SUPPORTED if lo > 0.5 else CONTRADICTED if hi < 0.2 else INCONCLUSIVE
    examples = ", ".join(f"{typo}→{word}" for typo, word, ok in probes.get("examples", [])[:4] if ok)
    return Claim(claim, f"for {n:,} typos of frequent words (a doubled middle letter, never seen), the intended word "
                        f"is among FastText's 10 nearest neighbours {_pct(share)} {_ci((lo, hi))} of the time"
                        + (f" (e.g. {examples})" if examples else "") + "; every other method has no vector at all for "
                        f"them, and {_pct(None if coverage is None else 1 - coverage)} of test tokens are outside the "
                        "vocabulary", verdict)


def glove_claim(emb: Mapping) -> Claim:
    claim = "GloVe is strong on analogies"
    scored = {}
    for method, m in emb.items():
        parts = [m.get(f"analogy_{h}") for h in ("semantic", "syntactic")]
        n = sum(p["n"] for p in parts if p)
        if m.get("analogy_accuracy") is not None and n:
            scored[method] = (m["analogy_accuracy"], wilson(m["analogy_accuracy"], n))
    if "glove" not in scored or len(scored) < 2:
        null = "glove" in emb and emb["glove"].get("analogy_accuracy") is None
        return Claim(claim, "GloVe's analogy score is null (too few answerable questions)" if null else
                     "GloVe or a second method lacks analogy scores", NOT_MEASURED,
                     "dvc exp run -S evaluate.analogy_restrict=100000" if null else "dvc repro glove evaluate")
    best = max(scored, key=lambda k: scored[k][0])
    ranking = ", ".join(f"{human(k)} {_pct(v[0])}" for k, v in sorted(scored.items(), key=lambda kv: -kv[1][0]))
    side = compare(scored["glove"][1], scored[best][1]) if best != "glove" else 0
    verdict = SUPPORTED if best == "glove" or side == 0 else CONTRADICTED
    return Claim(claim, f"3CosAdd accuracy on questions-words: {ranking}" +
                 ("" if best == "glove" else f"; GloVe {_ci(scored['glove'][1])} against {human(best)} "
                                             f"{_ci(scored[best][1])}"), verdict)


def autoencoder_claim(reduce: Mapping) -> Claim:
    claim = "Auto-encoders improve word vectors whatever the method"
    scores = ("analogy_accuracy", "wordsim353_spearman", "simlex999_spearman")
    wins = total = 0
    best_per_method = []
    for method, by in reduce.items():
        refs = [by.get("none", {}), by.get("pca", {})]
        gains: dict[str, list[bool]] = {}   # reducer -> one win/loss per score all three rows define
        for reducer, m in by.items():
            if reducer in ("none", "pca"):
                continue
            for score in scores:
                values = [m.get(score), *(r.get(score) for r in refs)]
                if None not in values:
                    gains.setdefault(reducer, []).append(values[0] > max(values[1:]))
        for outcomes in gains.values():
            total += len(outcomes)
            wins += sum(outcomes)
        if gains:
            top = max(gains, key=lambda r: sum(gains[r]))
            best_per_method.append(f"{human(method)}: {REDUCER_NAMES.get(top, top)} {sum(gains[top])}/{len(gains[top])}")
    if not total:
        return Claim(claim, "no reduction table in this run", NOT_MEASURED, "dvc repro reduce")
    share = wins / total
    verdict = SUPPORTED if share >= 0.75 else CONTRADICTED if share <= 0.25 else INCONCLUSIVE
    return Claim(claim, f"an auto-encoder beats both the unreduced vectors and PCA in {wins} of {total} "
                        f"(method, auto-encoder, score) cases ({_pct(share)}); best per method: "
                        + "; ".join(best_per_method), verdict)


def _neural(models: Mapping, cell: str, pooling: str) -> dict[str, str]:
    """{'<bi>@<embedding>': model name} of the neural rows with that cell and pooling."""
    out = {}
    for name in models:
        if is_model(name) and (m := parse_model(name)).family == "rnn" and m.cell == cell and m.pooling == pooling:
            out[f"{'-bi' if m.bidirectional else ''}@{m.embedding.name}"] = name
    return out


def long_documents_claim(models: Mapping) -> Claim:
    claim = "LSTMs cope with long documents better than plain RNNs (vanishing gradients)"
    for pooling in ("attention", "max", "mean", "last"):
        pairs = set(_neural(models, "lstm", pooling)) & set(_neural(models, "rnn", pooling))
        if pairs:
            key = sorted(pairs)[0]
            lstm, rnn = _neural(models, "lstm", pooling)[key], _neural(models, "rnn", pooling)[key]
            break
    else:
        return Claim(claim, "the run has no plain RNN beside an LSTM of the same pooling and embedding", NOT_MEASURED,
                     "dvc exp run -S '+classify.models.birnn_attention=rnn-bi-attention@word2vec_skipgram'")
    bands = [b for b in models[lstm].get("by_length", {}) if b in models[rnn].get("by_length", {})]
    if not bands:
        return Claim(claim, "no accuracy by document length in the classifier table", NOT_MEASURED, "dvc repro classify")
    gaps = []
    for band in (bands[0], bands[-1]):
        a, b = models[lstm]["by_length"][band], models[rnn]["by_length"][band]
        if None in (a.get("accuracy"), b.get("accuracy")) or not a.get("n") or not b.get("n"):
            return Claim(claim, f"no accuracy in the {band} band for {human(lstm)} or {human(rnn)}", NOT_MEASURED,
                         "dvc repro classify")
        gaps.append((band, a["accuracy"], b["accuracy"],
                     compare(wilson(a["accuracy"], a["n"]), wilson(b["accuracy"], b["n"]))))
    (short, ls, rs, _), (long_, ll, rl, side) = gaps
    verdict = SUPPORTED if side > 0 and (ll - rl) > (ls - rs) else CONTRADICTED if side < 0 else INCONCLUSIVE
    return Claim(claim, f"{human(lstm)} against {human(rnn)}: shortest quarter ({short}) {_pct(ls)} vs {_pct(rs)}, "
                        f"longest quarter ({long_}) {_pct(ll)} vs {_pct(rl)}", verdict)


def attention_claim(models: Mapping) -> Claim:
    claim = "Attention helps (attention pooling against max pooling)"
    for cell in ("lstm", "gru", "rnn"):
        pairs = set(_neural(models, cell, "attention")) & set(_neural(models, cell, "max"))
        if pairs:
            key = sorted(pairs)[0]
            att, mx = _neural(models, cell, "attention")[key], _neural(models, cell, "max")[key]
            a, b = models[att], models[mx]
            if a.get("accuracy") is None or b.get("accuracy") is None:
                return Claim(claim, f"{human(att)} or {human(mx)} has no test accuracy", NOT_MEASURED,
                             "dvc repro classify")
            side = compare(a["accuracy_ci"], b["accuracy_ci"]) if a.get("accuracy_ci") and b.get("accuracy_ci") else 0
            verdict = SUPPORTED if side > 0 else CONTRADICTED if side < 0 else INCONCLUSIVE
            return Claim(claim, f"{human(att)} {_pct(a['accuracy'])} {_ci(a['accuracy_ci'])} against {human(mx)} "
                                f"{_pct(b['accuracy'])} {_ci(b['accuracy_ci'])}", verdict)
    return Claim(claim, "the run has no attention model beside a max-pooling one of the same cell and embedding",
                 NOT_MEASURED, "dvc exp run -S '+classify.models.bilstm_max=lstm-bi-max@word2vec_skipgram'")


def clipping_claim(models: Mapping) -> Claim:
    claim = "Gradient clipping tames exploding gradients (backprop through time)"
    grads = {n: m["gradients"] for n, m in models.items() if m.get("gradients")}
    if not grads:
        return Claim(claim, "no neural model recorded its gradient norms", NOT_MEASURED, "dvc repro classify")
    parts = [f"{human(n)}: median norm {g['median']:.2f}, max {g['max']:.2f}"
             + (f", {_pct(g['clipped_share'])} of {g['steps']:,} steps cut at {g['clip']:g}" if g.get("clip") else
                ", no clipping") for n, g in grads.items()]
    spikes = any(g["max"] > 5 * max(g["median"], 1e-9) for g in grads.values())
    return Claim(claim, "pre-clipping gradient norms: " + "; ".join(parts)
                 + (". Spikes well above the median occur and were bounded; whether they would derail training "
                    "without clipping needs the unclipped run" if spikes else
                    ". No spike far above the median occurred: this run does not show exploding gradients"),
                 INCONCLUSIVE, "dvc exp run -S classify.clip=0; nlpdag compare")


def ensemble_claim(models: Mapping, summary: Mapping) -> Claim:
    claim = "Combining representations beats each one (Mesnil et al. 2014: NBSVM + paragraph vectors + an RNN)"
    rows = [n for n, m in models.items() if m.get("kind") == "ensemble"]
    if not rows or not summary.get("best"):
        return Claim(claim, "the run has no ensemble row", NOT_MEASURED,
                     "dvc exp run -S 'classify.ensemble=[nbsvm,nb_docvec@doc2vec_ngram,docvec@doc2vec_dbow,best_neural]'")
    row = rows[0]
    parts, sides = [], []
    for scope, best in summary["best"].items():
        if best is None:
            continue
        winner = summary.get("winner", {}).get(scope)
        acc = models[row].get("accuracy") if scope == "overall" else models[row].get("by_source", {}).get(scope, {}).get("accuracy")
        if best == row:
            sides.append(1 if winner == row else 0)
            p = summary.get("p_value", {}).get(scope)
            parts.append(f"{_scope(scope)}: the ensemble is best ({_pct(acc)}), " +
                         ("McNemar separates it from the runner-up" if winner == row else
                          f"tied with {human(summary.get('runner_up', {}).get(scope) or '?')} "
                          f"(McNemar p {'n/a' if p is None else _p(p)})"))
        else:
            sides.append(-1 if winner else 0)
            parts.append(f"{_scope(scope)}: {human(best)} is best, the ensemble {_pct(acc)}")
    verdict = SUPPORTED if all(s > 0 for s in sides) else CONTRADICTED if any(s < 0 for s in sides) else INCONCLUSIVE
    adds = models[row].get("ensemble", {}).get("drop_one", {})
    text = "; ".join(parts) + (". Validation accuracy lost without each member: " +
                               ", ".join(f"{human(m)} {100 * d:+.1f} pts" for m, d in adds.items()) if adds else "")
    return Claim(claim, text, verdict)


def _versus(claim: str, test: Mapping | None, scopes: list[str], how: str, missing: str) -> Claim:
    """A claim that row a beats row b, judged by the paired (McNemar) tests classify ran in `scopes`:
    contradicted where b wins significantly in any scope; supported where a wins significantly in the primary
    scope, `overall` when it is among `scopes` (each source holds a part of the test documents, so its test
    has less power: a source where the gain is not significant is named in the text), else in every scope."""
    if not test:
        return Claim(claim, missing, NOT_MEASURED, how)
    parts, sides = [], {}   # sides: scope -> +1 a wins, -1 b wins (significantly), 0 not separated
    for scope in scopes:
        t = test["scopes"].get(scope)
        if t is None or None in (t.get("p_value"), t.get("gain"), t.get("accuracy_a"), t.get("accuracy_b")):
            continue
        sides[scope] = (1 if t["gain"] > 0 else -1) if t["significant"] else 0
        parts.append(f"{_scope(scope)}: {_pct(t['accuracy_a'])} against {_pct(t['accuracy_b'])} ({100 * t['gain']:+.1f} pts, "
                     f"McNemar p {_p(t['p_value'])})")
    if not sides:
        return Claim(claim, missing, NOT_MEASURED, how)
    primary = [sides["overall"]] if "overall" in sides else list(sides.values())
    verdict = (CONTRADICTED if any(s < 0 for s in sides.values()) else SUPPORTED if all(s > 0 for s in primary)
               else INCONCLUSIVE)
    unseparated = [_scope(scope) for scope, side in sides.items() if side == 0]
    note = (f"; not significant on {', '.join(unseparated)} alone" if verdict == SUPPORTED and unseparated else "")
    return Claim(claim, f"{human(test['a'])} against {human(test['b'])} (each chosen on the validation slice): "
                        + "; ".join(parts) + note, verdict)


def tree_claim(summary: Mapping) -> Claim:
    test = (summary.get("versus") or {}).get("tree_vs_recurrent")
    short = (test or {}).get("short_source")
    return _versus("Tree structure helps on short sentences (a recursive net against a recurrent one, on the source "
                   "with the shortest texts" + (f": {human_source(short)})" if short else ")"), test, [short] if short else [],
                   "dvc exp run -S '+classify.models.treelstm_rae=treelstm-rae@word2vec_skipgram'",
                   "the run has no tree model beside a recurrent one, or its corpus has no sources")


def self_attention_claim(summary: Mapping) -> Claim:
    test = (summary.get("versus") or {}).get("transformer_vs_recurrent")
    return _versus("Self-attention beats recurrence (a Transformer encoder against a recurrent model)", test,
                   list((test or {}).get("scopes", {})),
                   "dvc exp run -S '+classify.models.transformer=transformer-2x128@word2vec_skipgram'",
                   "the run has no Transformer beside a recurrent model")


def learned_claim(summary: Mapping) -> Claim:
    test = (summary.get("versus") or {}).get("learned_vs_ngrams")
    claim = _versus("Learned document vectors add to bag-of-n-grams (the best row with a learned part against the "
                    "best pure n-gram row)", test, list((test or {}).get("scopes", {})),
                    "dvc exp run -S 'classify.baselines=[nb_logreg,nbsvm,docvec,nb_docvec]'",
                    "the run has no n-gram row, or no row with a learned part")
    if test and claim.verdict != NOT_MEASURED:
        # what each source of document vectors adds on its own, and whether the best one needed the test texts
        each = [f"{human(src)} {100 * t['scopes']['overall']['gain']:+.1f} pts (p {_p(t['scopes']['overall']['p_value'])})"
                for src, t in test.get("by_docvec", {}).items() if "overall" in t["scopes"]]
        extra = (". NB n-grams + document vectors, overall, per source of vectors: " + ", ".join(each) if each else "")
        extra += (". † its vectors were trained beside the test texts (doc2vec.train_on_all), never their labels"
                  if test.get("transductive") else "")
        claim = Claim(claim.claim, claim.measurement + extra, claim.verdict, claim.how)
    return claim


def dv_ngram_claim(summary: Mapping) -> Claim:
    test = (summary.get("versus") or {}).get("ngram_vs_word_docvecs")
    return _versus("Paragraph vectors over n-grams beat paragraph vectors over words (DV-ngram against PV-DBOW, "
                   "Li et al. 2016)", test, list((test or {}).get("scopes", {})),
                   "dvc exp run -S 'classify.baselines=[nbsvm,docvec]'",
                   "the run has no docvec@doc2vec_ngram row beside docvec@doc2vec_dbow")


def check_claims(embeddings: Mapping | None, tokenise: Mapping | None, reduce: Mapping | None,
                 classify: Mapping | None, summary: Mapping | None = None) -> list[Claim]:
    emb, models = embeddings or {}, (classify or {}).get("models", {})
    return [speed_claim(emb), analogy_halves_claim(emb), sampling_claim(), fasttext_claim(emb, tokenise or {}),
            glove_claim(emb), autoencoder_claim(reduce or {}), long_documents_claim(models), attention_claim(models),
            clipping_claim(models), ensemble_claim(models, summary or {}), tree_claim(summary or {}),
            self_attention_claim(summary or {}), learned_claim(summary or {}), dv_ngram_claim(summary or {})]
