"""Stage `tsne`: 2-d t-SNE maps of word vectors (each method) and of document vectors (Doc2Vec and the
classifier's pooled states), for the report.

openTSNE, cosine affinities, PCA initialisation, seeded. Gradients (`tsne.gradient`): `auto` is openTSNE's
choice, Barnes-Hut below 10,000 points and FFT interpolation above; FFT's cost grows with the extent of
the map rather than the number of points, so on a few thousand points Barnes-Hut is the faster (and on
tiny data FFT takes seconds where Barnes-Hut takes milliseconds). `tsne.theta` 0.8 (Barnes-Hut's
approximation; 0.5 is the usual) makes a 2,000-point map about a third faster for a barely higher KL. Words: the
`tsne.words` most frequent words of the vocabulary (the same words for every method, those a method
lacks left out). Documents: one sample of `tsne.docs` test documents, stratified by label and source,
the same for every document map, each marked with a classifier's prediction: Doc2Vec maps with the
`docvec@doc2vec_<mode>` baseline's, the pooled-state map with that neural model's own.

Outputs (data/tsne/):
- `words.parquet`: method, token, rank (vocabulary frequency rank, 0 = most frequent), polarity (the
  naive-Bayes log-count ratio of the word over the training documents: > 0 leans to the second label,
  < 0 to the first; more than two labels: its largest one-vs-rest ratio), leaning (that label), x, y
- `docs.parquet`: vectors (doc2vec_dm | doc2vec_dbow | classify), model (the classifier whose predictions
  are shown, null when none), doc_id, label, predicted (null without predictions), correct, source,
  snippet (the first `snippet_words` words), x, y
- `maps.json`: [{kind, name, points, perplexity, seconds, cpu_seconds, note}] one entry per map made or skipped.
Missing optional inputs (pretrained vectors not set, no classifier outputs yet) are skipped with a note.
"""
from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nlpdag.errors import StageError
from nlpdag.catalog.tsne import TSNE_DIR, TSNE_DOCS, TSNE_MAPS, TSNE_WORDS
from nlpdag.catalog.reduce import check_methods, vectors_path
from nlpdag.io.tables import read_frame, read_json, read_table, write_json, write_table
from nlpdag.config.tsne import TsneParams
from nlpdag.io.vectors import Timer, read_vectors
from nlpdag.training.threads import resolve_threads
from nlpdag.catalog.classify import CLASSIFY_PREDICTIONS, CLASSIFY_STATES, SUMMARY
from nlpdag.catalog.ingest import CORPUS, LABELS
from nlpdag.catalog.bow import COUNTS
from nlpdag.catalog.embeddings import DOCVECS_DIR
from nlpdag.catalog.tokenise import VOCAB
WORD_COLUMNS = ["method", "token", "rank", "polarity", "leaning", "x", "y"]
DOC_COLUMNS = ["vectors", "model", "doc_id", "label", "predicted", "correct", "source", "snippet", "x", "y"]


class CpuTimer(Timer):
    """Wall and CPU seconds (all threads of this process): on a busy machine the CPU time is the fairer measure."""

    def __enter__(self) -> "CpuTimer":
        self.cpu_start = time.process_time()
        return super().__enter__()

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.cpu = time.process_time() - self.cpu_start


def embed(x: np.ndarray, perplexity: float = 30.0, n_iter: int = 500, seed: int = 0, n_jobs: int = 2,
          gradient: str = "auto", theta: float = 0.5) -> np.ndarray:
    """(N, 2) float32 t-SNE coordinates of the rows of x (cosine affinities)."""
    from openTSNE import TSNE  # imported here: a second or two that only this stage needs

    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) < 4:
        raise StageError(f"t-SNE needs at least 4 points, got {len(x)}")
    if not np.isfinite(x).all():
        raise StageError("t-SNE input contains NaN or infinite values")
    zero = ~x.any(axis=1)
    if zero.any():  # cosine distance is undefined for a zero vector: give such rows a tiny constant one
        x = np.where(zero[:, None], np.float32(1e-6), x)
    perplexity = min(perplexity, (len(x) - 1) / 3)  # openTSNE's own bound, applied quietly here
    tsne = TSNE(n_components=2, perplexity=perplexity, n_iter=n_iter, metric="cosine", initialization="pca",
                negative_gradient_method=gradient, theta=theta, n_jobs=n_jobs, random_state=seed, verbose=False)
    y = np.asarray(tsne.fit(x), dtype=np.float32)
    if not np.isfinite(y).all():
        raise StageError("t-SNE produced NaN coordinates (lower tsne.perplexity)")
    return y


def word_polarity(doc_id: np.ndarray, token_id: np.ndarray, doc_label: dict[int, int], n_labels: int,
                  n_words: int, alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(polarity, leaning) of word ids 0..n_words-1 from (doc, word) presence pairs of labelled
    documents: Wang & Manning's log-count ratio r = log(p/|p|) - log(q/|q|), smoothed by alpha. Two
    labels: r of the second against the first (leaning 1 where r > 0); more: the largest one-vs-rest r."""
    # one vectorised lookup and one bincount: the default corpus has ~5.9M (doc, word) pairs
    ids = np.fromiter(doc_label, dtype=np.int64, count=len(doc_label))
    order = np.argsort(ids)
    ids, values = ids[order], np.fromiter(doc_label.values(), dtype=np.int64, count=len(doc_label))[order]
    at = np.minimum(np.searchsorted(ids, doc_id), max(len(ids) - 1, 0))
    labels = np.where((len(ids) > 0) & (ids[at] == doc_id), values[at], -1) if len(ids) else np.full(len(doc_id), -1)
    keep = (labels >= 0) & (token_id < n_words)
    per_class = np.bincount(labels[keep] * n_words + token_id[keep],
                            minlength=n_labels * n_words).reshape(n_labels, n_words).astype(np.float64)
    p = per_class + alpha
    rest = p.sum(axis=0, keepdims=True) - p + alpha * (n_labels - 2)
    r = np.log(p / p.sum(axis=1, keepdims=True)) - np.log(rest / rest.sum(axis=1, keepdims=True))
    if n_labels == 2:
        return r[1].astype(np.float32), (r[1] > 0).astype(np.int32)
    return r.max(axis=0).astype(np.float32), r.argmax(axis=0).astype(np.int32)


def word_map(method: str, tokens: list[str], matrix: np.ndarray, top: Sequence[str],
             params: TsneParams, seed: int) -> pd.DataFrame:
    """Map the words of `top` (frequency order) that the method has."""
    index = {t: i for i, t in enumerate(tokens)}
    ranks = [r for r, t in enumerate(top) if t in index]
    rows = [index[top[r]] for r in ranks]
    xy = embed(matrix[rows], params.perplexity, params.n_iter, seed, resolve_threads(params.n_jobs), params.gradient,
               params.theta)
    return pd.DataFrame({"method": method, "token": [top[r] for r in ranks], "rank": np.asarray(ranks, np.int32),
                         "x": xy[:, 0], "y": xy[:, 1]})


def stratified_sample(frame: pd.DataFrame, n: int, seed: int, by: Sequence[str] = ("label", "source")) -> pd.DataFrame:
    """n rows (all when fewer), each stratum in proportion to its size (largest remainders), seeded."""
    if n >= len(frame):
        return frame.sort_values("doc_id").reset_index(drop=True)
    groups = frame.groupby(list(by), sort=True).indices
    sizes = np.array([len(v) for v in groups.values()])
    quota = sizes * n / sizes.sum()
    take = np.floor(quota).astype(int)
    take[np.argsort(-(quota - take), kind="stable")[:n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    picked = np.concatenate([rng.choice(rows, k, replace=False) for rows, k in zip(groups.values(), take)])
    return frame.iloc[np.sort(picked)].reset_index(drop=True)


_TAGS = re.compile(r"<[^>]+>")


def snippet(text: str, words: int) -> str:
    parts = html.unescape(_TAGS.sub(" ", text)).split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def test_sample(corpus: pd.DataFrame, labels: list, n: int, seed: int, snippet_words: int) -> pd.DataFrame:
    """The documents every document map shows: doc_id, label_id, label (string), source, snippet."""
    test = corpus[corpus["split"] == "test"]
    if test.empty:
        raise StageError(f"{CORPUS}: no test documents to map")
    test = test.assign(source=test["source"].astype(str) if "source" in test else "all")
    sample = stratified_sample(test, n, seed, by=("label_id", "source"))
    return pd.DataFrame({"doc_id": sample["doc_id"].astype(np.int64), "label_id": sample["label_id"].astype(int),
                         "label": [str(labels[i]) for i in sample["label_id"]], "source": sample["source"],
                         "snippet": [snippet(t, snippet_words) for t in sample["text"]]})


def read_docvecs(path: Path, doc_ids: np.ndarray, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(doc_ids found, vectors) of the documents in doc_ids, from a table with doc_id and vector columns
    (and model, filtered to `model` when given)."""
    table = read_table(path)
    if model is not None:
        table = table.filter(pc.equal(table.column("model"), model))
    table = table.filter(pc.is_in(table.column("doc_id"), pa.array(doc_ids, pa.int64())))
    if table.num_rows == 0:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    column = table.column("vector").combine_chunks()
    size = column.type.list_size if pa.types.is_fixed_size_list(column.type) else len(column[0])
    vectors = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, size)
    return table.column("doc_id").to_numpy().astype(np.int64), vectors


def state_models(root: Path) -> list[str]:
    """Neural models with pooled states, [] when the classify stage has not written any."""
    path = root / CLASSIFY_STATES
    if not path.exists():
        return []
    return sorted(set(read_table(path, columns=["model"]).column("model").to_pylist()))


def pick_classify_model(requested: str | None, available: list[str], summary: dict | None) -> str:
    """`tsne.classify_model`, else the neural model `classify` chose on the validation slice (never
    the test split's favourite), else the first with states."""
    if requested is not None:
        if requested not in available:
            raise StageError(f"params.yaml: tsne.classify_model: no pooled states for {requested!r} in {CLASSIFY_STATES}; "
                             f"available: {', '.join(available)}")
        return requested
    chosen = ((summary or {}).get("best_neural") or {}).get("overall")
    return chosen if chosen in available else available[0]


def mark_predictions(sample: pd.DataFrame, predictions: pd.DataFrame | None, model: str | None,
                     labels: list) -> pd.DataFrame:
    """Add model, predicted (label string) and correct; null where there is no such prediction."""
    out = sample.copy()
    pred = None
    if predictions is not None and model is not None:
        pred = predictions[predictions["model"] == model].set_index("doc_id")["predicted"]
    if pred is None or pred.empty:
        out["model"], out["predicted"], out["correct"] = None, None, None
        return out
    ids = out["doc_id"].map(pred)
    out["model"] = model
    out["predicted"] = [None if pd.isna(i) else str(labels[int(i)]) for i in ids]
    out["correct"] = [None if pd.isna(i) else bool(int(i) == l) for i, l in zip(ids, out["label_id"])]
    return out


def run(params: TsneParams, seed: int = 0, root: Path = Path("."), out: Path = TSNE_DIR,
        log=None) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Make every map from the inputs under `root`; write words/docs/maps under `out` (None: no writing)."""
    check_methods(params.methods, "tsne.methods")
    root = Path(root)
    log = log or (lambda msg: print(msg, flush=True))
    labels = read_json(root / LABELS)
    vocab = read_frame(root / VOCAB, columns=["id", "token"]).sort_values("id")
    top = vocab["token"].head(params.words).tolist()
    top_ids = vocab["id"].head(params.words).to_numpy()
    counts = read_table(root / COUNTS, columns=["doc_id", "token_id"])
    split = read_frame(root / CORPUS, columns=["doc_id", "label_id", "split"])
    train = split[split["split"] == "train"]
    polarity, leaning = word_polarity(counts.column("doc_id").to_numpy(), counts.column("token_id").to_numpy(),
                                      dict(zip(train["doc_id"].tolist(), train["label_id"].tolist())), len(labels),
                                      int(top_ids.max(initial=-1)) + 1)
    polarity_of = {t: (float(polarity[i]), str(labels[leaning[i]])) for t, i in zip(top, top_ids)}
    maps: list[dict] = []

    def note(kind: str, name: str, why: str) -> None:
        maps.append({"kind": kind, "name": name, "points": 0, "perplexity": None, "seconds": 0.0, "cpu_seconds": 0.0,
                     "note": why})
        log(f"tsne: {kind} {name} skipped ({why})")

    def made(kind: str, name: str, n: int, timer: CpuTimer) -> None:
        maps.append({"kind": kind, "name": name, "points": n, "perplexity": round(min(params.perplexity, (n - 1) / 3), 2),
                     "seconds": round(timer.seconds, 2), "cpu_seconds": round(timer.cpu, 2), "note": None})
        log(f"tsne: {kind} {name}: {n} points, {timer.seconds:.1f} s ({timer.cpu:.1f} s CPU)")

    loaded = {}
    for method in params.methods:  # every input read before the first (slow) map
        path = vectors_path(method, root)
        if method == "pretrained" and path.exists() and read_table(path).num_rows == 0:
            loaded[method] = None
            continue
        tokens, matrix = read_vectors(path)
        if not tokens:
            raise StageError(f"{path}: the vectors table is empty (rerun its stage or drop {method} from tsne.methods)")
        loaded[method] = (tokens, matrix)
    word_frames = []
    for method, vectors in loaded.items():
        if vectors is None:
            note("words", method, "no pretrained vectors set")
            continue
        known = set(vectors[0])
        if sum(t in known for t in top) < 4:  # e.g. a small pre-trained file that shares few words
            note("words", method, f"only {sum(t in known for t in top)} of the {len(top)} most frequent words have vectors")
            continue
        with CpuTimer() as timer:
            frame = word_map(method, *vectors, top, params, seed)
        frame.insert(3, "polarity", np.array([polarity_of[t][0] for t in frame["token"]], dtype=np.float32))
        frame.insert(4, "leaning", [polarity_of[t][1] for t in frame["token"]])
        word_frames.append(frame)
        made("words", method, len(word_frames[-1]), timer)

    corpus = read_frame(root / CORPUS, columns=["doc_id", "text", "label_id", "source", "split"])
    sample = test_sample(corpus, labels, params.docs, seed, params.snippet_words)
    predictions = read_frame(root / CLASSIFY_PREDICTIONS, ["model", "doc_id", "label_id", "predicted"]) \
        if (root / CLASSIFY_PREDICTIONS).exists() else None
    doc_frames = []
    for name in params.doc_vectors:
        if name == "classify":
            available = state_models(root)
            if not available:
                note("docs", name, f"no classifier states ({CLASSIFY_STATES})")
                continue
            summary = read_json(root / SUMMARY) if (root / SUMMARY).exists() else None
            model = pick_classify_model(params.classify_model, available, summary)
            ids, vectors = read_docvecs(root / CLASSIFY_STATES, sample["doc_id"].to_numpy(), model=model)
        else:
            model = f"docvec@{name}"
            ids, vectors = read_docvecs(root / DOCVECS_DIR / f"{name}.parquet", sample["doc_id"].to_numpy())
        if len(ids) < 4:
            note("docs", name, f"{len(ids)} of the sampled test documents have vectors")
            continue
        order = np.argsort(ids)
        part = sample.set_index("doc_id").loc[ids[order]].reset_index()
        with CpuTimer() as timer:
            xy = embed(vectors[order], params.perplexity, params.n_iter, seed, resolve_threads(params.n_jobs), params.gradient,
                       params.theta)
        part = mark_predictions(part, predictions, model, labels)
        doc_frames.append(part.assign(vectors=name, x=xy[:, 0], y=xy[:, 1])[DOC_COLUMNS])
        made("docs", name, len(part), timer)

    words = pd.concat(word_frames, ignore_index=True) if word_frames else pd.DataFrame(columns=WORD_COLUMNS)
    docs = pd.concat(doc_frames, ignore_index=True) if doc_frames else pd.DataFrame(columns=DOC_COLUMNS)
    words = words.astype({"method": str, "token": str, "rank": np.int32, "x": np.float32, "y": np.float32})
    docs = docs.astype({"vectors": str, "doc_id": np.int64, "label": str, "source": str, "snippet": str,
                        "x": np.float32, "y": np.float32})
    # Nullable types: the columns stay string / bool in Parquet even when every value is missing.
    docs = docs.astype({"model": "string", "predicted": "string", "correct": "boolean"})
    if out is not None:
        write_table(words, Path(out) / TSNE_WORDS)
        write_table(docs, Path(out) / TSNE_DOCS)
        write_json(maps, Path(out) / TSNE_MAPS)
    return words, docs, maps
