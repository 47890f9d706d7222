"""The report's first section: what a newcomer needs before any table.

The verdict per scope (overall, each source: a winner, or "tied" and why), the claims tally, what the
run could not measure and why, and the model `nlpdag predict` serves. Short on purpose: the verdict and
the tally fit the first screen of a 1,400x900 window. Pure functions: plain data in, an HTML string out.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from nlpdag.evaluation.protocol import ALPHA   # the level classify names a winner at
from nlpdag.names import human, human_source
from nlpdag.report.claims import CONTRADICTED, INCONCLUSIVE, NOT_MEASURED, SUPPORTED, Claim, tally
from nlpdag.report.page import DAGGER_MEANING, VERDICT_COLOURS, dagger, esc, section, unavailable



def scope_name(key: str) -> str:
    return "Overall" if key == "overall" else human_source(key)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def p_text(p: float | None) -> str:
    return "n/a" if p is None else "< 0.0001" if p < 1e-4 else f"{p:.2g}"


def accuracy_of(models: Mapping, name: str | None, key: str) -> tuple[float | None, int | None]:
    """(accuracy, test documents) of a row in a scope."""
    m = models.get(name or "", {})
    scores = m if key == "overall" else m.get("by_source", {}).get(key, {})
    return scores.get("accuracy"), scores.get("n")


def named(models: Mapping, name: str | None) -> str:
    """A row's human name, with the classifier table's † when its representation saw the test texts."""
    return esc(human(name or "?")) + dagger(models.get(name or "", {}))


def verdicts(models: Mapping, summary: Mapping) -> list[str]:
    """One sentence per scope: the winner where an exact McNemar test separates the most accurate row from
    the runner-up at 5%, else "tied" with the reason: the gap is what chance gives on that many documents.
    A row whose representation saw the test texts carries † (DAGGER_MEANING, under the verdicts, says what it means)."""
    lines = []
    best_of = summary.get("best") or summary.get("winner", {})
    for key, best in best_of.items():
        if best is None:
            continue
        winner = (summary.get("winner") or {}).get(key)
        runner = (summary.get("runner_up") or {}).get(key)
        p = (summary.get("p_value") or {}).get(key)
        acc, n = accuracy_of(models, best, key)
        runner_acc, _ = accuracy_of(models, runner, key)
        docs = f"{n:,} test documents" if n else "the test documents"
        scope = f"<b>{esc(scope_name(key))}</b>"
        if winner:
            lines.append(f"{scope}: <b>{named(models, winner)}</b> wins ({pct(acc)}); the runner-up, "
                         f"{named(models, runner)} ({pct(runner_acc)}), is behind by more than chance gives on "
                         f"{docs} (McNemar p = {p_text(p)}, below {ALPHA:g}).")
        elif runner is None:
            lines.append(f"{scope}: only <b>{named(models, best)}</b> ({pct(acc)}) was scored; nothing to compare.")
        else:
            gap = "" if acc is None or runner_acc is None else f" differ by {100 * (acc - runner_acc):.1f} pts:"
            tied = (summary.get("tied_with") or {}).get(key) or []
            others = len(tied) - 1
            more = (f" {others} more row{'s are' if others > 1 else ' is'} tied with it too." if others > 0 else "")
            lines.append(f"{scope}: <b>tied</b>. The most accurate, <b>{named(models, best)}</b> ({pct(acc)}), and the "
                         f"runner-up, {named(models, runner)} ({pct(runner_acc)}),{gap or ' differ'} within what chance "
                         f"gives on {docs} (McNemar p = {p_text(p)}, above {ALPHA:g}).{more}")
    return lines


def tally_line(claims: Sequence[Claim]) -> str:
    counts = tally(list(claims))
    parts = [f'<b style="color:{VERDICT_COLOURS[v]}">{counts[v]} {v}</b>'
             for v in (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED)]
    return (f'<p id="claims-tally">The course\'s {len(claims)} claims, checked on this corpus: {", ".join(parts)} '
            f'(<a href="#claims">each claim</a>).</p>')


def served_line(summary: Mapping) -> str:
    """Which model `nlpdag predict` answers with, and a warning when it is hardly better than a guess."""
    served = summary.get("served") or {}
    row = served.get("row") or (summary.get("best_neural") or {}).get("overall")
    if not row:
        return ""
    acc = served.get("validation_accuracy")
    text = (f"<code>nlpdag predict</code> serves <b>{esc(human(row))}</b>, chosen on the validation slice"
            + (f" ({pct(acc)} there)" if acc is not None else "") + ".")
    if served.get("near_chance"):
        share = served.get("majority_share")
        text += (' <span class="wrong">It is near chance: not significantly better than always answering the most '
                 f'common label{f" ({pct(share)} of the validation slice)" if share is not None else ""}.</span>')
    return f'<p id="served">{text}</p>'


def unmeasured_items(claims: Sequence[Claim], at_chance: Mapping[str, str]) -> list[str]:
    items = [f"{esc(c.claim)}: <span class=\"small\">{esc(c.measurement)}</span>"
             for c in claims if c.verdict == NOT_MEASURED]
    items += [f"{esc(human(row))} is at chance: <span class=\"small\">{esc(why)}</span>"
              for row, why in at_chance.items()]
    return items


def summary_section(models: Mapping | None, summary: Mapping | None, claims: Sequence[Claim],
                    missing: Sequence[str] = ()) -> str:
    parts = [unavailable(m) for m in missing]
    if summary:
        labels = [str(label) for label in summary.get("labels") or []]
        task = (f"Telling {esc(', '.join(labels[:-1]))} from {esc(labels[-1])}: which classifier is best on the test "
                "split, per source" if len(labels) >= 2 else "The best classifier on the test split, per source")
        lines = verdicts(models or {}, summary)
        parts.append(f'<p>{task}:</p><ul id="verdict">' + "".join(f"<li>{line}</li>" for line in lines) + "</ul>")
        shown = {*(summary.get("best") or {}).values(), *(summary.get("runner_up") or {}).values()}
        if any(dagger((models or {}).get(n, {})) for n in shown):
            parts.append(f'<p class="small" id="transductive">{DAGGER_MEANING}</p>')
    parts.append(tally_line(claims))
    if summary:
        parts.append(served_line(summary))
    items = unmeasured_items(claims, (summary or {}).get("at_chance") or {})
    if items:
        parts.append('<p class="tight">What this run could not measure, and why:</p><ul class="small" '
                     'id="unmeasured">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    return section("summary", "\n".join(p for p in parts if p))
