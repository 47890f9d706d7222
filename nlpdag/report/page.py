"""The HTML pieces of reports/index.html: pure functions, plain data in, an HTML string out.

Every section is a <section id="..."> with a stable id (SECTIONS); an input that is missing renders as a
short "not available: <file>" note in its place. Nothing here reads a file or touches the network.
"""
from __future__ import annotations

import html
import math
from typing import Iterable, Mapping, Sequence

from nlpdag.names import REDUCER_NAMES, human, human_source

SECTIONS = {"summary": "Summary", "corpus": "Corpus", "embeddings": "Embedding evaluation", "reduction": "Reduction and topics",
            "classifiers": "Classifiers", "claims": "The course's claims, checked on this corpus", "curves": "Training curves", "confusion": "Confusion matrices",
            "tsne": "t-SNE maps", "neighbours": "Nearest neighbours", "attention": "Attention",
            "trees": "Recursive nets"}

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
nav a{margin-right:1em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h1{margin:.3em 0 .1em} #summary h2{margin-top:.8em} #summary ul{margin:.3em 0} .tight{margin-bottom:0}
td .id{display:block;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em} th,td{border:1px solid #ddd;padding:.25em .6em}
th{background:#f4f4f4;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.best{font-weight:bold;background:#e6f4ea} .note{color:#a33;font-style:italic}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:1em}
.doc{border:1px solid #ddd;padding:.5em;margin:.5em 0;line-height:1.9} .doc span{padding:1px 2px;border-radius:2px}
.wrong{color:#a33} .right{color:#2a7} .small{font-size:.85em;color:#555}
"""


class Markup(str):
    """Cell text that is already HTML (a human name with its id in small print): not escaped again."""


def esc(value: object) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value), quote=True)


def named(name: str, suffix: str = "") -> Markup:
    """A row's human name (nlpdag/names.py) with its id in small print."""
    title = human(name)
    if title == name:
        return Markup(esc(name) + esc(suffix))
    return Markup(f'{esc(title)}{esc(suffix)} <span class="small id">{esc(name)}</span>')


def dagger(row: Mapping) -> str:
    """" †" for a classifier row whose representation saw the test texts (its `transductive` flag), else ""."""
    return " †" if row.get("transductive") else ""


# What † means, under the classifier table and, when a verdict names such a row, on the first screen.
DAGGER_MEANING = ("† saw the test texts, never their labels, while learning its representation (Doc2Vec with "
                  "<code>doc2vec.train_on_all: true</code>, the paper's protocol); "
                  "<code>dvc exp run -S doc2vec.train_on_all=false</code> infers the test documents' vectors "
                  "instead (<code>infer_vector</code>).")


def fmt(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    return esc(value)


def unavailable(path: str, why: str = "") -> str:
    return f'<p class="note">not available: {esc(path)}{" (" + esc(why) + ")" if why else ""}</p>'


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], best: dict[int, str] | None = None,
          caption: str = "") -> str:
    """An HTML table; numbers right-aligned. best: {column index: "max"|"min"} bolds that column's best."""
    rows = [list(r) for r in rows]
    marks: dict[tuple[int, int], bool] = {}
    for col, how in (best or {}).items():
        values = [(i, r[col]) for i, r in enumerate(rows)
                  if isinstance(r[col], (int, float)) and not isinstance(r[col], bool) and r[col] == r[col]]
        if values:
            target = (max if how == "max" else min)(v for _, v in values)
            marks.update({(i, col): True for i, v in values if v == target})
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, v in enumerate(row):
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cls = " ".join(c for c in ("num" if num else "", "best" if marks.get((i, j)) else "") if c)
            cells.append(f'<td{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>{fmt(v)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def section(sid: str, body: str, title: str | None = None) -> str:
    return f'<section id="{esc(sid)}"><h2>{esc(title or SECTIONS.get(sid, sid))}</h2>\n{body}\n</section>'


def corpus_section(ingest: dict | None, tokenise: dict | None, cooccur: dict | None,
                   missing: Sequence[str] = ()) -> str:
    parts = [unavailable(m) for m in missing]
    if ingest:
        rows = [("documents", ingest.get("docs")), ("train documents", ingest.get("train_docs")),
                ("test documents", ingest.get("test_docs")), ("read", ingest.get("docs_read")),
                ("dropped: duplicates", ingest.get("dropped_duplicates")),
                ("dropped: blank", ingest.get("dropped_blank"))]
        parts.append(table(["", "count"], [r for r in rows if r[1] is not None]))
        for key, title in (("labels", "label"), ("sources", "source")):
            counts = ingest.get(key) or {}
            if counts:
                total = sum(counts.values())
                show = human_source if key == "sources" else str
                parts.append(table([title, "documents", "share"],
                                   [(show(k), v, round(v / total, 4)) for k, v in counts.items()]))
    if tokenise:
        parts.append(table(["tokens", "training tokens", "vocabulary", "test token coverage"],
                           [(tokenise.get("tokens"), tokenise.get("train_tokens"), tokenise.get("vocab_size"),
                             tokenise.get("test_token_coverage"))]))
    if cooccur:
        parts.append(f'<p class="small">Co-occurrence matrix: {fmt(cooccur.get("nonzeros"))} non-zeros over '
                     f'{fmt(cooccur.get("vocab_size"))} words.</p>')
    return section("corpus", "\n".join(parts))


EMBEDDING_COLUMNS = [("analogy_accuracy", "analogy acc.", "max"), ("analogy_coverage", "analogy coverage", None),
                     ("wordsim353_spearman", "WordSim353 ρ", "max"), ("simlex999_spearman", "SimLex999 ρ", "max"),
                     ("wordsim353_oov", "WS353 OOV", None), ("vocab_size", "vocabulary", None),
                     ("train_seconds", "train s", "min")]


def embeddings_section(metrics: dict | None, missing: str | None = None) -> str:
    if metrics is None:
        return section("embeddings", unavailable(missing or "reports/metrics/embeddings.json"))
    rows = [[named(method)] + [m.get(key) for key, _, _ in EMBEDDING_COLUMNS] for method, m in metrics.items()]
    best = {i + 1: how for i, (_, _, how) in enumerate(EMBEDDING_COLUMNS) if how}
    note = ('<p class="small">Analogies: questions-words.txt restricted to the most frequent words (accuracy over '
            'the answerable share, "coverage"); similarity: Spearman ρ against human judgements. Best in bold.</p>')
    return section("embeddings", note + table(["method"] + [t for _, t, _ in EMBEDDING_COLUMNS], rows, best))


REDUCE_SCORES = [("analogy_accuracy", "analogy acc."), ("wordsim353_spearman", "WordSim353 ρ"),
                 ("simlex999_spearman", "SimLex999 ρ"), ("reconstruction_mse", "reconstruction MSE")]


def named_text(name: str) -> str:
    return human(name)


def _above(value: float | None, reference: float | None) -> bool:
    """value beats reference; an undefined (null) score beats nothing and is beaten by nothing."""
    return value is not None and reference is not None and value > reference


def reduction_section(reduce: dict | None, topics: dict | None, topic_words: dict[str, list[list[str]]] | None,
                      missing: Sequence[str] = ()) -> str:
    """reduce: {method: {reducer: scores}} with reducer "none" the unreduced vectors; topics: {model: {coherence,
    ...}}; topic_words: {model: [[word, ...] per topic]}."""
    parts = [unavailable(m) for m in missing]
    if reduce:
        parts.append('<p class="small">Each method\'s vectors reduced by PCA and by each auto-encoder '
                     '(ae plain, dae denoising, stacked_ae stacked, vae variational); <b>none</b> is the unreduced '
                     'reference. Per method, the best reducer on each score is in bold; ▲ marks an '
                     'auto-encoder that beats both none and PCA on that score.</p>')
        for method, by_reducer in reduce.items():
            rows = []
            for reducer, scores in by_reducer.items():
                row = [scores.get(k) for k, _ in REDUCE_SCORES[:3]]
                beats = reducer not in ("none", "pca") and any(
                    all(_above(scores.get(k), by_reducer.get(ref, {}).get(k)) for ref in ("none", "pca"))
                    for k, _ in REDUCE_SCORES[:3])
                title = REDUCER_NAMES.get(reducer, reducer)
                row.insert(0, Markup(f'{esc(title)}{" ▲" if beats else ""} <span class="small id">{esc(reducer)}</span>'
                                     if title != reducer else esc(reducer) + (" ▲" if beats else "")))
                rows.append(row + [scores.get("reconstruction_mse")])
            parts.append(table(["reducer"] + [t for _, t in REDUCE_SCORES], rows,
                               best={1: "max", 2: "max", 3: "max"}, caption=f"{named_text(method)} ({method})"))
    if topics:
        rows = [(model, m.get("coherence"), m.get("stop_word_share"), m.get("reconstruction_mse"))
                for model, m in topics.items()]
        parts.append("<h3>Topics</h3>" + table(["model", "NPMI coherence (held-out)", "stop-word share of top words",
                                                "reconstruction MSE"], rows, {1: "max"})
                     + '<p class="small">The topic auto-encoder and NMF, fitted on the training documents\' TF-IDF over '
                     'words that are not stop words and not in most documents (topics.stop_words, topics.max_df); '
                     'coherence is the NPMI of each topic\'s top words in the test documents, which neither saw.</p>')
    if topic_words:
        for model, topics_ in topic_words.items():
            rows = [(i, " ".join(words)) for i, words in enumerate(topics_)]
            parts.append(table(["topic", "top words"], rows, caption=f"{model}: topics"))
    return section("reduction", "\n".join(parts))


def _ci(interval: Sequence[float] | None) -> str | None:
    return None if not interval else f"{interval[0]:.3f}–{interval[1]:.3f}"


def _metric_cells(m: dict, sources: Sequence[str]) -> list:
    cells = [m.get("kind", ""), m.get("accuracy"), _ci(m.get("accuracy_ci")), m.get("macro_f1"),
             _ci(m.get("macro_f1_ci")), m.get("roc_auc")]
    return cells + [m.get("by_source", {}).get(s, {}).get("accuracy") for s in sources]


def _cost_cells(m: dict) -> list:
    return [_short_trained_on(m.get("trained_on")), m.get("train_seconds"), m.get("representation_seconds"),
            m.get("tokens_per_second")]


def _short_trained_on(text: str | None) -> str | None:
    """The table's short form of a row's `trained_on` (the metrics file keeps the sentence)."""
    if not text:
        return text
    if text.startswith("train split minus"):
        return "train − validation (early stopping on it)"
    if text.startswith("validation slice"):
        return "validation (members' log-odds)"
    return "train (C chosen on validation)" if "C chosen" in text else text


def comparisons(summary: dict) -> list[str]:
    """The lines under the verdict (nlpdag/report/summary.py): the best neural row against the best
    baseline per scope, and the model chosen on the validation slice."""
    lines = []
    versus = [(key, v) for key, v in (summary.get("neural_vs_baseline") or {}).items() if v]
    if versus:
        lines.append("The best row with a neural component against the best baseline (exact McNemar test): " + "; ".join(
            f"{esc('overall' if key == 'overall' else human_source(key))}: {esc(human(v['row']))} "
            f"{100 * v['gain']:+.1f} pts over {esc(human(v['baseline']))}, p = {fmt(v['p_value'])} "
            f"({'significant' if v['significant'] else 'not significant'})" for key, v in versus) + ".")
    chosen = (summary.get("best_neural") or {}).get("overall")
    if chosen:
        lines.append(f"Chosen on the validation slice (the default of <code>nlpdag predict</code>, the t-SNE "
                     f"classifier map and the attention panel): <b>{esc(human(chosen))}</b>.")
    return lines


def classifiers_section(metrics: dict | None, summary: dict | None, missing: Sequence[str] = ()) -> str:
    """Two tables that each fit a 1,400-pixel window: the scores (overall, intervals, per source), then
    how each row was trained and what it cost. The verdict itself leads the page (summary section)."""
    parts = [unavailable(m) for m in missing]
    if metrics:
        models = metrics.get("models", {})
        sources = (summary or {}).get("sources") or sorted({s for m in models.values() for s in m.get("by_source", {})})
        if summary:
            lines = ['The verdict per source is in the <a href="#summary">summary</a> at the top.',
                     *comparisons(summary)]
            parts.append("<ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>")
        order = sorted(models, key=lambda n: (-(models[n].get("accuracy") or 0), n))
        columns = ["model", "kind", "accuracy", "accuracy 95% CI", "macro F1", "macro F1 95% CI", "ROC AUC"] + \
                  [f"accuracy on {human_source(s)}" for s in sources]
        best = {i: "max" for i in (2, 4, 6, *range(7, 7 + len(sources)))}
        names = {n: named(n, dagger(models[n])) for n in order}
        parts.append(table(columns, [[names[n]] + _metric_cells(models[n], sources) for n in order], best))
        parts.append('<p class="small">Intervals: 95% bootstrap over the test documents (1,000 resamples, '
                     f'seeded). {DAGGER_MEANING}</p>')
        parts.append(table(["model", "trained on", "train s", "representation s", "tokens/s"],
                           [[names[n]] + _cost_cells(models[n]) for n in order], {2: "min", 4: "max"},
                           caption="How each row was trained, and its cost"))
        parts.append('<p class="small">"train s": features, choosing C on the validation slice and fitting, the '
                     'same for every row; "representation s": training the word or document vectors it uses, '
                     'apart.</p>')
        parts += [ensemble_table(n, models[n]["ensemble"]) for n in order if models[n].get("ensemble")]
    return section("classifiers", "\n".join(parts))


def ensemble_table(name: str, info: dict) -> str:
    """An ensemble's members: the weight of each one's log-odds and what leaving it out costs."""
    rows = [[named(m), ", ".join(f"{w:+.3f}" for w in info["weights"][m]), 100 * info["drop_one"][m]]
            for m in info["members"]]
    return (table(["member", "weight of its log-odds", "validation accuracy lost without it (pts)"], rows,
                  {2: "max"}, caption=f"{name}: members")
            + '<p class="small">A logistic regression over the members\' log-odds, fitted on the validation slice '
              'only (C by 5-fold cross-validation within it); the drop-one column refits without each member and '
              'reports the cross-validated accuracy lost, on the validation slice, never the test split.</p>')


VERDICT_COLOURS = {"supported": "#2a7", "contradicted": "#a33", "inconclusive": "#b80", "not measured": "#777"}


def claims_section(claims: Sequence) -> str:
    """One row per claim of the course: the measurement that answers it and the verdict."""
    rows = []
    for c in claims:
        colour = VERDICT_COLOURS.get(c.verdict, "#222")
        how = f'<br><span class="small">measure it: <code>{esc(c.how)}</code></span>' if c.how else ""
        rows.append(f"<tr><td>{esc(c.claim)}</td><td>{esc(c.measurement)}{how}</td>"
                    f'<td style="color:{colour};font-weight:bold;white-space:nowrap">{esc(c.verdict)}</td></tr>')
    intro = ('<p class="small">Each claim against this run\'s own numbers. <b>supported</b> / <b>contradicted</b>: '
             'the 95% intervals do not overlap (Wilson for analogy accuracies, bootstrap for classifiers) or a '
             'timing ratio outside 0.8-1.25 with both runs of 1 s or more; <b>inconclusive</b>: they overlap, or the run cannot separate the cases; '
             '<b>not measured</b>: the run lacks the comparison, or its numbers are too few or too close to '
             'tell from noise (a null score, a short or near-equal timing); the command that measures it is given.</p>')
    return section("claims", intro + "<table><thead><tr><th>claim</th><th>measurement</th><th>verdict</th></tr>"
                                     "</thead><tbody>" + "".join(rows) + "</tbody></table>")


def confusion_table(name: str, labels: Sequence[str], counts: dict[tuple[str, str], int]) -> str:
    """Rows actual, columns predicted; each cell shaded by its share of the row."""
    head = "".join(f"<th>pred. {esc(l)}</th>" for l in labels)
    rows = []
    for a in labels:
        total = sum(counts.get((a, p), 0) for p in labels) or 1
        cells = []
        for p in labels:
            n = counts.get((a, p), 0)
            share = n / total
            colour = "46,125,50" if a == p else "198,40,40"
            cells.append(f'<td class="num" style="background:rgba({colour},{share * 0.6:.3f})">{n:,} '
                         f'<span class="small">({share:.1%})</span></td>')
        rows.append(f"<tr><th>actual {esc(a)}</th>{''.join(cells)}</tr>")
    return (f"<table><caption>{named(name)}</caption><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def confusion_section(matrices: dict[str, tuple[list[str], dict]], missing: Sequence[str] = ()) -> str:
    body = [unavailable(m) for m in missing]
    body += [f"<div>{confusion_table(name, labels, counts)}</div>" for name, (labels, counts) in matrices.items()]
    return section("confusion", '<div class="grid">' + "\n".join(body) + "</div>")


def figures_section(sid: str, figures: Sequence[tuple[str, str]], intro: str = "",
                    missing: Sequence[str] = ()) -> str:
    """figures: (title, HTML of a chart div); laid out in a grid."""
    body = [unavailable(m) for m in missing]
    body += [f'<div class="figure"><h3>{esc(title)}</h3>{div}</div>' for title, div in figures]
    return section(sid, (f'<p class="small">{intro}</p>' if intro else "") + '<div class="grid">'
                   + "\n".join(body) + "</div>")


def neighbours_section(neighbours: dict | None, probes: Sequence[str], methods: Sequence[str], n: int,
                       missing: str | None = None) -> str:
    if neighbours is None:
        return section("neighbours", unavailable(missing or "reports/neighbours.json"))
    shown = [m for m in methods if m in neighbours]
    rows = []
    for probe in probes:
        row = [probe]
        for m in shown:
            found = neighbours[m].get(probe)
            row.append(", ".join(w for w, _ in found[:n]) if found else "(not in vocabulary)")
        rows.append(row)
    note = f'<p class="small">The {n} nearest words (cosine) of each probe word (evaluate.probe_words).</p>'
    return section("neighbours", note + table(["probe"] + [named(m) for m in shown], rows))


def page(sections: Sequence[str], scripts: Sequence[str] = (), title: str = "nlpdag report",
         subtitle: str = "") -> str:
    """The whole document: every script inline, no external reference."""
    nav = " ".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t in SECTIONS.items())
    # Written by `nlpdag run` after the stages (this page is one of them), so a link, not a section.
    nav += (' <a href="timeline.html" title="When each stage of the last nlpdag run started and ended, its CPU '
            'time, threads and memory, and the critical path">run timeline</a>')
    js = "\n".join(f"<script>{s}</script>" for s in scripts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<link rel="icon" href="data:,"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{STYLE}</style>{js}</head>\n<body><h1>{esc(title)}</h1>"
            f'<p class="small">{esc(subtitle)}</p><nav>{nav}</nav>\n' + "\n".join(sections) + "\n</body></html>\n")
