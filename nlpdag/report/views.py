"""The report's views of single test documents: attention weights (an RNN's additive attention beside a
Transformer's, document by document) and the tree panel (one short sentence's tree, as inline SVG, with
each node's predicted label). Pure functions: plain data in, an HTML string out; no script."""
from __future__ import annotations

from typing import Sequence

from nlpdag.report.page import esc, named, section, unavailable

# One colour per label (Okabe-Ito, colour-blind safe), in the order of labels.json.
PALETTE = ["#d55e00", "#0072b2", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000"]


def shaded_tokens(tokens: Sequence[str], weights: Sequence[float]) -> str:
    """Each token in a span whose background opacity is its weight relative to the document's largest."""
    top = max(weights, default=0.0) or 1.0
    return " ".join(f'<span style="background:rgba(255,140,0,{w / top:.3f})" title="{w:.4f}">{esc(t)}</span>'
                    for t, w in zip(tokens, weights))


def _verdict(ex: dict) -> str:
    right = str(ex.get("label")) == str(ex.get("predicted"))
    return '<span class="right">correct</span>' if right else '<span class="wrong">misclassified</span>'


def attention_section(examples: Sequence[dict], missing: Sequence[str] = (), note: str = "") -> str:
    """Per document, one shaded line per model that attends (in the order the examples name them)."""
    body = [unavailable(m) for m in missing]
    if note:
        body.append(f'<p class="small">{esc(note)}</p>')
    docs: dict = {}
    for ex in examples:
        docs.setdefault(ex.get("doc_id"), []).append(ex)
    for doc_id, rows in docs.items():
        lines = [f'<div class="small">document {esc(doc_id)} · label {esc(rows[0].get("label"))}</div>']
        for ex in rows:
            lines.append(f'<div><span class="small">{named(str(ex.get("model")))} · predicted {esc(ex.get("predicted"))} '
                         f'· {_verdict(ex)}</span><br>{shaded_tokens(ex.get("tokens", []), ex.get("weights", []))}</div>')
        body.append('<div class="doc">' + "\n".join(lines) + "</div>")
    return section("attention", "\n".join(body))


def tree_svg(tokens: Sequence[str], children: Sequence[Sequence[int]], predicted: Sequence[str],
             confidence: Sequence[float], labels: Sequence[str]) -> str:
    """A binary tree drawn bottom-up: leaves (the words) along the bottom, each internal node above the
    middle of its span at the height of its subtree; every node a disc in its predicted label's colour,
    opaque as it is confident (hover: label and confidence)."""
    n = len(tokens)
    colour = {str(label): PALETTE[k % len(PALETTE)] for k, label in enumerate(labels)}
    x, height = [float(k) for k in range(n)], [0] * n
    for a, b in children:
        x.append((x[a] + x[b]) / 2)
        height.append(1 + max(height[a], height[b]))
    # room for the longest word under each leaf (~7 px a character at 12 px)
    dx, dy = max(48, 7 * max((len(t) for t in tokens), default=1) + 8), 34
    pad = dx // 2 + 4
    top = max(height)
    px = lambda k: pad + x[k] * dx  # noqa: E731
    py = lambda k: pad + (top - height[k]) * dy  # noqa: E731
    width, tall = int(2 * pad + (n - 1) * dx), int(2 * pad + top * dy + 28)
    parts = [f'<svg width="{width}" height="{tall}" role="img" '
             f'aria-label="tree with each node\'s predicted label">']
    for k, (a, b) in enumerate(children):
        for child in (a, b):
            parts.append(f'<line x1="{px(n + k):.1f}" y1="{py(n + k):.1f}" x2="{px(child):.1f}" y2="{py(child):.1f}" '
                         'stroke="#999" stroke-width="1"/>')
    for k in range(len(x)):
        fill = colour.get(str(predicted[k]), "#777")
        parts.append(f'<circle cx="{px(k):.1f}" cy="{py(k):.1f}" r="7" fill="{fill}" fill-opacity="{confidence[k]:.2f}" '
                     f'stroke="{fill}"><title>{esc(predicted[k])} ({confidence[k]:.2f})</title></circle>')
    for k, token in enumerate(tokens):
        parts.append(f'<text x="{px(k):.1f}" y="{py(k) + 22:.1f}" font-size="12" text-anchor="middle">{esc(token)}</text>')
    return "".join(parts) + "</svg>"


def trees_section(examples: Sequence[dict] | None, labels: Sequence[str], missing: Sequence[str] = (),
                  empty: str | None = None) -> str:
    """`empty`: what to say when no example is shown although a tree model ran (default: that none ran)."""
    body = [unavailable(m) for m in missing]
    if examples is not None and not examples and empty:
        body.append(f'<p class="small">{esc(empty)}</p>')
    elif examples is not None and not examples:
        body.append('<p class="small">no tree model among the classifiers (e.g. dvc exp run -S '
                    "'+classify.models.treelstm_rae=treelstm-rae@word2vec_skipgram')</p>")
    if examples:
        key = " · ".join(f'<span style="color:{PALETTE[k % len(PALETTE)]}">&#9679;</span> {esc(label)}'
                         for k, label in enumerate(labels))
        body.append(f'<p class="small">{named(str(examples[0].get("model")))}: short test sentences with the label '
                    f"the model predicts for every phrase (node) of its tree, a node judged as if it were the whole "
                    f"text; the disc's opacity is the confidence. Labels: {key}</p>")
        for ex in examples:
            body.append(f'<div class="doc"><div class="small">document {esc(ex.get("doc_id"))} · label '
                        f'{esc(ex.get("label"))} · predicted {esc(ex.get("predicted"))} · {_verdict(ex)}</div>'
                        + tree_svg(ex["tokens"], ex["children"], ex["node_predicted"], ex["node_confidence"], labels)
                        + "</div>")
    return section("trees", "\n".join(body))
