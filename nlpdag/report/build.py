"""Stage `report`: reports/index.html, one self-contained page (plotly.js and every chart inline, nothing
fetched when it opens), and static PNGs of the t-SNE maps in reports/figures/.

Sections (stable ids, page.SECTIONS): summary (the verdict, first), corpus, embeddings, reduction, classifiers, curves,
confusion, tsne, neighbours, attention. An input that a stage has not produced yet shows as
"not available: <file>"; an unknown method or model named in the `report` params is an error.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from nlpdag.report import charts as charts
from nlpdag.report import page as h
from nlpdag.report import views
from nlpdag.report.claims import check_claims
from nlpdag.report.summary import summary_section
from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path, read_frame
from nlpdag.config.base import StageParams
from nlpdag.config.report import ReportParams
from nlpdag.catalog.tsne import TSNE_DIR, TSNE_DOCS, TSNE_WORDS
from nlpdag.catalog.cooccur import COOCCUR_SCORES
from nlpdag.catalog.evaluate import EMBEDDINGS_SCORES, NEIGHBOURS
from nlpdag.catalog.ingest import INGEST_SCORES, LABELS
from nlpdag.catalog.tokenise import TOKENISE_SCORES
from nlpdag.catalog.topics import TOPICS, TOPICS_SCORES
from nlpdag.catalog.reduce import check_methods, REDUCE_LOSS, REDUCE_SCORES
from nlpdag.catalog.classify import ATTENTION, CLASSIFY_SCORES, CONFUSION_DIR, CURVES_DIR, SUMMARY, TREES
from nlpdag.catalog.report import FIGURES, INDEX
from nlpdag.catalog.embeddings import TRAIN_DIR



@dataclass
class Inputs:
    """Files under `root`; `missing` collects the relative paths that were not there."""
    root: Path
    missing: list[str] = field(default_factory=list)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def json(self, rel: str):
        p = self.path(rel)
        if not p.is_file():
            self.missing.append(rel)
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise StageError(f"{p}: not valid JSON ({exc.msg}, line {exc.lineno})") from None

    def csv(self, rel: str, columns: Sequence[str]) -> pd.DataFrame | None:
        p = self.path(rel)
        if not p.is_file():
            self.missing.append(rel)
            return None
        frame = pd.read_csv(p, keep_default_na=False, dtype={c: str for c in ("actual", "predicted", "model")})
        lacking = [c for c in columns if c not in frame.columns]
        if lacking:
            raise StageError(f"{p}: missing column {lacking[0]!r}")
        return frame

    def parquet(self, rel: str) -> pd.DataFrame | None:
        p = self.path(rel)
        if not p.exists():
            self.missing.append(rel)
            return None
        return read_frame(p)

    def take_missing(self) -> list[str]:
        out, self.missing = self.missing, []
        return out


def check_params(params: ReportParams, classify: dict | None, attention: list | None) -> None:
    """Unknown methods are always an error; unknown model names once the classifier's outputs exist."""
    check_methods(params.methods, key="report.methods")
    if classify is not None:
        models = classify.get("models", {})
        for key, names in (("report.confusion_models", params.confusion_models or []),
                           ("report.attention_model", [params.attention_model] if params.attention_model else [])):
            unknown = [n for n in names if n not in models]
            if unknown:
                raise StageError(f"params.yaml: {key}: unknown model {unknown[0]!r}; "
                                 f"models in {CLASSIFY_SCORES}: {', '.join(sorted(models))}")
    if attention is not None and params.attention_model and \
            params.attention_model not in {e.get("model") for e in attention}:
        raise StageError(f"params.yaml: report.attention_model: {params.attention_model!r} has no attention "
                         f"weights in {ATTENTION} (only attention-pooled models do)")


def confusion_counts(frame: pd.DataFrame, labels: Sequence[str]) -> tuple[list[str], dict]:
    labels = list(dict.fromkeys([*labels, *frame["actual"], *frame["predicted"]]))
    counts = frame.groupby(["actual", "predicted"]).size().to_dict()
    return labels, {(str(a), str(p)): int(n) for (a, p), n in counts.items()}


def confusion_models(params: ReportParams, summary: dict | None) -> list[str]:
    if params.confusion_models is not None:
        return list(params.confusion_models)
    if not summary:
        return []
    names = [*(summary.get("best") or summary.get("winner", {})).values(), summary.get("best_baseline", {}).get("overall")]
    return [n for n in dict.fromkeys(names) if n]


def pick_examples(examples: list[dict], n: int) -> list[dict]:
    """The first `n` documents of classify's candidates (up to n // 2 that the model got wrong, then right
    ones, in their seeded order), every model's view of each, models in their order."""
    wrong = {e["doc_id"]: e.get("wrong", False) for e in examples}
    docs = list(dict.fromkeys(e["doc_id"] for e in examples))
    chosen = [d for d in docs if wrong[d]][:n // 2]
    chosen += [d for d in docs if not wrong[d]][:n - len(chosen)]
    by = {(e["model"], e["doc_id"]): e for e in examples}
    return [by[(m, d)] for m in dict.fromkeys(e["model"] for e in examples) for d in chosen if (m, d) in by]


def pick_attention(examples: list, params: ReportParams) -> list[dict]:
    """The attention examples shown: `report.attention_docs` documents, for `report.attention_model` alone
    when set, else for every model classify wrote them for (per family, the one chosen on the validation
    slice; the same documents for each)."""
    if params.attention_model:
        examples = [e for e in examples if e["model"] == params.attention_model]
    return pick_examples(examples, params.attention_docs)


def topic_words(frame: pd.DataFrame | None, n_topics: int | None = None, n_words: int = 10) -> dict[str, list[list[str]]]:
    """{model: [top words of each topic]}: every topic by default."""
    if frame is None or frame.empty:
        return {}
    out = {}
    for model, g in frame.sort_values(["model", "topic", "rank"]).groupby("model", sort=False):
        out[model] = [t["word"].head(n_words).tolist() for _, t in g.groupby("topic")][:n_topics]
    return out


def build(params: ReportParams, probes: Sequence[str], root: Path = Path("."),
          tsne_dir: Path | None = None) -> tuple[str, pd.DataFrame, pd.DataFrame, list[str]]:
    """(the page's HTML, t-SNE words, t-SNE docs, labels) from the inputs under `root`."""
    inp = Inputs(Path(root))
    classify, summary = inp.json(CLASSIFY_SCORES), inp.json(SUMMARY)
    attention = inp.json(ATTENTION)
    check_params(params, classify, attention)
    classify_missing = inp.take_missing()
    raw_labels = inp.json(LABELS)
    labels = [str(l) for l in (summary or {}).get("labels") or raw_labels or []]
    inp.take_missing()

    sections = []
    ingest, tokenise, cooccur = (inp.json(str(p)) for p in (INGEST_SCORES, TOKENISE_SCORES, COOCCUR_SCORES))
    sections.append(h.corpus_section(ingest, tokenise, cooccur, inp.take_missing()))
    embeddings = inp.json(str(EMBEDDINGS_SCORES))
    sections.append(h.embeddings_section(embeddings, (inp.take_missing() or [None])[0]))
    reduce, topics = inp.json(str(REDUCE_SCORES)), inp.json(str(TOPICS_SCORES))
    words_of_topics = topic_words(inp.parquet(TOPICS))
    sections.append(h.reduction_section(reduce, topics, words_of_topics, inp.take_missing()))
    sections.append(h.classifiers_section(classify, summary, [m for m in classify_missing if m != ATTENTION]))
    claims = check_claims(embeddings, tokenise, reduce, classify, summary)
    sections.append(h.claims_section(claims))
    # The verdict leads the page: a newcomer reads it before any table.
    sections.insert(0, summary_section((classify or {}).get("models"), summary, claims,
                                       [m for m in classify_missing if str(m) == str(SUMMARY)]))

    models = (classify or {}).get("models", {})
    curves = {}
    if not inp.path(CURVES_DIR).is_dir():
        inp.missing.append(f"{CURVES_DIR}/")
    for name in [n for n in models if models[n].get("kind") == "neural"] if inp.path(CURVES_DIR).is_dir() else []:
        frame = inp.csv(f"{CURVES_DIR}/{name}.csv", ["epoch"])
        if frame is not None:
            curves[name] = frame
    train_losses = {}
    for p in sorted(inp.path(TRAIN_DIR).glob("*.json")) if inp.path(TRAIN_DIR).is_dir() else []:
        info = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(info.get("loss"), list):
            train_losses[info.get("method", p.stem)] = info["loss"]
    reduce_loss = inp.csv(REDUCE_LOSS, ["model", "epoch", "val_loss"])
    sections.append(h.figures_section("curves", charts.curve_figures(curves, train_losses, reduce_loss),
                                      missing=inp.take_missing()))

    matrices = {}
    chosen = confusion_models(params, summary)
    for name in chosen:
        frame = inp.csv(f"{CONFUSION_DIR}/{name}.csv", ["actual", "predicted"])
        if frame is not None:
            matrices[name] = confusion_counts(frame, labels)
    missing = inp.take_missing() + ([SUMMARY] if not chosen and summary is None else [])
    sections.append(h.confusion_section(matrices, missing))

    # An absolute tsne_dir (outputs written elsewhere) wins over root: Path("/a") / "/b" is "/b".
    tsne_dir = Path(tsne_dir) if tsne_dir is not None else TSNE_DIR
    words, docs = inp.parquet(str(tsne_dir / TSNE_WORDS)), inp.parquet(str(tsne_dir / TSNE_DOCS))
    if words is None:
        words = pd.DataFrame(columns=["method", "token", "rank", "x", "y"])
    if docs is None:
        docs = pd.DataFrame(columns=["vectors", "model", "label", "predicted", "correct", "source", "snippet"])
    docs = docs.astype({"label": str})
    map_labels = labels or sorted(docs["label"].unique())
    intro = ("Hover over a point: a word map shows the word, a document map the document's first words, its "
             "label and the prediction. Static PNGs: reports/figures/tsne_*.png.")
    sections.append(h.figures_section("tsne", charts.tsne_figures(words, docs, map_labels, probes), intro,
                                      inp.take_missing()))

    neighbours = inp.json(NEIGHBOURS)
    sections.append(h.neighbours_section(neighbours, probes, params.methods, params.neighbours_shown,
                                         (inp.take_missing() or [None])[0]))
    shown = pick_attention(attention or [], params)
    note = ("Each word shaded by its attention weight (darker = more weight; hover for the value): the recurrent "
            "model's additive attention and the Transformer's last layer from its class token, averaged over heads, "
            "for the same documents.")
    sections.append(views.attention_section(shown, [ATTENTION] if attention is None else [],
                                            note if shown else ("report.attention_docs is 0" if attention and
                                                                params.attention_docs == 0 else
                                                                "no attention model among the classifiers"
                                                                if attention is not None else "")))
    trees = inp.json(TREES)
    shown_trees = None if trees is None else pick_examples(trees, params.tree_docs)
    sections.append(views.trees_section(shown_trees, labels, inp.take_missing(),
                                        "report.tree_docs is 0" if trees and params.tree_docs == 0 else None))
    subtitle = "Built by the `report` stage from the pipeline's outputs; nothing is fetched when this page opens."
    return h.page(sections, [charts.plotly_js()], subtitle=subtitle), words, docs, map_labels


def write_figures(words: pd.DataFrame, docs: pd.DataFrame, labels: Sequence[str], folder: Path,
                  probes: Sequence[str] = ()) -> list[Path]:
    """All PNGs into a temporary folder beside `folder`, which then replaces it whole."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        written = charts.write_pngs(words, docs, labels, tmp, probes)
        tmp.chmod(0o755)  # mkdtemp's folder is private; the figures are for sharing
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [folder / p.name for p in written]


def run(params: StageParams, root: Path = Path("."), index: Path = INDEX, figures: Path = FIGURES,
        tsne_dir: Path | None = None) -> list[Path]:
    page, words, docs, labels = build(params.report, params.evaluate.probe_words, root, tsne_dir)
    pngs = write_figures(words, docs, labels, figures, params.evaluate.probe_words)
    with atomic_path(index) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return pngs
