"""Charts of the report: interactive plotly figures as HTML divs (the page inlines plotly.js once) and
static PNGs of the t-SNE maps (matplotlib, Agg) for papers and slides.

Scatter plots use SVG traces, not WebGL (scattergl), so that they render in a headless browser
without a GPU and can be counted in the DOM (`.scatterlayer .point`).
"""
from __future__ import annotations

import html
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from nlpdag.names import human, human_source

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
SPLITS = {"train": "training", "val": "validation"}
LABEL_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly package (nothing is fetched)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def to_div(fig, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG)


def _layout(fig, title: str = "", height: int = 420, **kw) -> None:
    fig.update_layout(title=title or None, height=height, margin=dict(l=50, r=20, t=40 if title else 20, b=40),
                      template="plotly_white", legend=dict(font=dict(size=10)), **kw)


def line_figure(series: Sequence[tuple[str, Sequence, Sequence, str]], x_title: str, y_title: str,
                log_y: bool = False):
    """series: (name, x, y, dash) -> a plotly Figure of lines with markers."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, x, y, dash in series:
        fig.add_trace(go.Scatter(x=list(x), y=list(y), name=name, mode="lines+markers", line=dict(dash=dash)))
    _layout(fig, xaxis_title=x_title, yaxis_title=y_title)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def curve_figures(curves: dict[str, pd.DataFrame], train_losses: dict[str, list[float]],
                  reduce_loss: pd.DataFrame | None) -> list[tuple[str, str]]:
    """(title, div) for: classifier loss and accuracy per epoch (train solid, validation dashed), the
    embedding methods' training loss relative to their first epoch, the auto-encoders' validation loss."""
    out = []
    if curves:
        for metric, title in (("loss", "Classifiers: loss"), ("accuracy", "Classifiers: accuracy")):
            series = [(f"{human(name)}, {SPLITS[split]}", c["epoch"], c[f"{split}_{metric}"],
                       "solid" if split == "train" else "dash")
                      for name, c in curves.items() for split in SPLITS if f"{split}_{metric}" in c]
            out.append((title, to_div(line_figure(series, "epoch", metric), f"curve-classify-{metric}")))
    losses = {m: l for m, l in train_losses.items() if l and l[0]}
    if losses:
        series = [(human(m), range(1, len(l) + 1), [v / l[0] for v in l], "solid") for m, l in losses.items()]
        out.append(("Embeddings: training loss / first epoch's",
                    to_div(line_figure(series, "epoch", "relative loss"), "curve-embeddings")))
    if reduce_loss is not None and not reduce_loss.empty:
        series = [(human(name), g["epoch"], g["val_loss"], "solid")
                  for name, g in reduce_loss.groupby("model", sort=False)]
        out.append(("Auto-encoders: validation reconstruction loss",
                    to_div(line_figure(series, "epoch", "MSE", log_y=True), "curve-reduce")))
    return out


def _esc(text: object) -> str:
    """Plotly's hover labels take a little HTML and decode &amp; &lt; &gt;, but not &quot;: escape just those."""
    return html.escape(str(text), quote=False)


def _wrap(text: str, width: int = 60) -> str:
    return "<br>".join(textwrap.wrap(_esc(text), width)) or "&nbsp;"


def labelled_words(frame: pd.DataFrame, probes: Sequence[str] = (), n: int = 30, skip: int = 100) -> pd.DataFrame:
    """Rows to print on a word map: the probe words, and n words at evenly spaced ranks past the `skip`
    most frequent (function words, which crowd one corner of every map)."""
    frame = frame.sort_values("rank")
    rest = frame[frame["rank"] >= skip] if (frame["rank"] >= skip).sum() >= n else frame
    picks = rest.iloc[np.unique(np.linspace(0, len(rest) - 1, n).astype(int))] if len(rest) else rest
    return pd.concat([frame[frame["token"].isin(list(probes))], picks]).drop_duplicates("token")


def polarity_scale(frame: pd.DataFrame, labels: Sequence[str]) -> tuple[np.ndarray, dict, str]:
    """(colour values, colour-scale settings, legend title) of a word map: each word's naive-Bayes
    log-count ratio, clipped at ±2, red for the first label and blue for the second (two labels),
    else the strength of the label it leans to; log frequency rank for maps made before polarity."""
    if "polarity" not in frame:
        return np.log10(frame["rank"].to_numpy() + 1), dict(colorscale="Viridis", reversescale=True), "log10 rank"
    values = np.clip(frame["polarity"].to_numpy(dtype=float), -2, 2)
    if len(labels) == 2:
        return values, dict(colorscale="RdBu", cmin=-2, cmax=2, cmid=0), \
            f"NB log-count ratio<br>← {labels[0]} · {labels[1]} →"
    return values, dict(colorscale="Viridis"), "NB log-count ratio of<br>the label it leans to"


def word_map_figure(frame: pd.DataFrame, method: str, probes: Sequence[str] = (), labels: Sequence[str] = ()):
    """One method's word map, each word coloured by the sentiment (label) it carries in the training
    documents (`polarity_scale`): a method that separates sentiment words shows red and blue regions.
    Hover: the word, its frequency rank and its leaning; probe words and a spread of others printed."""
    import plotly.graph_objects as go

    shown = labelled_words(frame, probes)
    colour, scale, title = polarity_scale(frame, labels)
    leaning = frame["leaning"] if "leaning" in frame else [None] * len(frame)
    polarity = frame["polarity"] if "polarity" in frame else [None] * len(frame)
    fig = go.Figure(go.Scatter(
        x=frame["x"], y=frame["y"], mode="markers", name=human(method),
        marker=dict(size=5, color=colour, **scale, colorbar=dict(title=title, thickness=10), opacity=0.85),
        hovertext=[f"<b>{_esc(t)}</b><br>frequency rank {r + 1}"
                   + (f"<br>leans to {_esc(str(lean))} (r = {pol:+.2f})" if lean is not None else "")
                   for t, r, lean, pol in zip(frame["token"], frame["rank"], leaning, polarity)],
        hoverinfo="text"))
    fig.add_trace(go.Scatter(x=shown["x"], y=shown["y"], mode="text", text=shown["token"], textposition="top center",
                             textfont=dict(size=10, color="#333"), hoverinfo="skip"))
    _layout(fig, height=480, showlegend=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def doc_map_figure(frame: pd.DataFrame, labels: Sequence[str]):
    """One document map: a trace per label (colour); misclassified documents as crosses in their label's colour."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, label in enumerate(labels):
        colour = LABEL_COLOURS[k % len(LABEL_COLOURS)]
        rows = frame[frame["label"] == label]
        wrong = rows["correct"].eq(False).fillna(False).to_numpy(dtype=bool) if "correct" in rows else np.zeros(len(rows), bool)
        for part, name, symbol, size in ((rows[~wrong], str(label), "circle", 5),
                                         (rows[wrong], f"{label}, misclassified", "x", 7)):
            if part.empty:
                continue
            hover = [f"<b>label {_esc(l)}</b> · predicted {_esc(p) if isinstance(p, str) else '–'}"
                     f" · {_esc(human_source(s))}<br>{_wrap(t)}"
                     for l, p, s, t in zip(part["label"], part["predicted"], part["source"], part["snippet"])]
            fig.add_trace(go.Scatter(x=part["x"], y=part["y"], mode="markers", name=name, hovertext=hover,
                                     hoverinfo="text", marker=dict(size=size, color=colour, symbol=symbol,
                                                                   opacity=0.75 if symbol == "circle" else 0.95)))
    _layout(fig, height=480)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def map_names(words: pd.DataFrame, docs: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(kind, name, file stem) of every map, words first, in the order the stage made them."""
    out = [("words", m, f"words_{m}") for m in dict.fromkeys(words["method"])] if not words.empty else []
    out += [("docs", v, f"docs_{v}") for v in dict.fromkeys(docs["vectors"])] if not docs.empty else []
    return out


def doc_map_name(vectors: str, model: str | None) -> str:
    """A document map's vectors in words: Doc2Vec's by the method, `classify` by the classifier whose
    pooled states they are."""
    if vectors == "classify":
        return f"{human(model)}, pooled states" if model else "the classifier's pooled states"
    return human(vectors)


def tsne_figures(words: pd.DataFrame, docs: pd.DataFrame, labels: Sequence[str],
                 probes: Sequence[str] = ()) -> list[tuple[str, str]]:
    out = []
    for kind, name, stem in map_names(words, docs):
        if kind == "words":
            fig = word_map_figure(words[words["method"] == name], name, probes, labels)
            title = f"Words: {human(name)} ({(words['method'] == name).sum():,} most frequent)"
        else:
            part = docs[docs["vectors"] == name]
            fig = doc_map_figure(part, labels)
            model = part["model"].dropna().iloc[0] if part["model"].notna().any() else None
            wrong = int(part["correct"].eq(False).sum())
            title = f"Documents: {doc_map_name(name, model)} ({len(part):,} test documents" + \
                    (f"; × = misclassified by {'it' if name == 'classify' else human(model)}: {wrong:,})"
                     if model else ")")
        out.append((title, to_div(fig, f"tsne-{stem}")))
    return out


def write_pngs(words: pd.DataFrame, docs: pd.DataFrame, labels: Sequence[str], folder: Path,
               probes: Sequence[str] = ()) -> list[Path]:
    """reports/figures/tsne_<stem>.png for every map; word maps print the probe words and a spread of others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, name, stem in map_names(words, docs):
        fig, ax = plt.subplots(figsize=(8, 8), dpi=120)
        if kind == "words":
            part = words[words["method"] == name].sort_values("rank")
            colour, scale, title = polarity_scale(part, labels)
            cmap = {"RdBu": "RdBu", "Viridis": "viridis"}[scale["colorscale"]] + ("_r" if scale.get("reversescale") else "")
            points = ax.scatter(part["x"], part["y"], s=4, c=colour, cmap=cmap, alpha=0.75,
                                vmin=scale.get("cmin"), vmax=scale.get("cmax"))
            fig.colorbar(points, ax=ax, shrink=0.6).set_label(title.replace("<br>", " "))
            for _, row in labelled_words(part, probes).iterrows():
                ax.annotate(row["token"], (row["x"], row["y"]), fontsize=8, alpha=0.9)
            ax.set_title("\n".join(textwrap.wrap(f"t-SNE of {human(name)} word vectors ({len(part):,} most "
                                                  "frequent words)", 70)))
        else:
            part = docs[docs["vectors"] == name]
            for k, label in enumerate(labels):
                rows = part[part["label"] == label]
                wrong = rows["correct"].eq(False).fillna(False).to_numpy(dtype=bool)
                colour = LABEL_COLOURS[k % len(LABEL_COLOURS)]
                ax.scatter(rows["x"][~wrong], rows["y"][~wrong], s=5, color=colour, alpha=0.6, label=str(label))
                if wrong.any():
                    ax.scatter(rows["x"][wrong], rows["y"][wrong], s=14, color=colour, marker="x",
                               label=f"{label}, misclassified")
            ax.legend(loc="best", fontsize=8, markerscale=2)
            model = part["model"].dropna().iloc[0] if part["model"].notna().any() else None
            ax.set_title("\n".join(textwrap.wrap(f"t-SNE of {doc_map_name(name, model)} document vectors "
                                                  f"({len(part):,} test documents)", 70)))
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout()
        path = folder / f"tsne_{stem}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
