"""Every name a classifier row can have, parsed and printed in one place.

- An embedding: a method (`word2vec_skipgram`), a reduction `<method>__<reducer>` (`glove__vae`),
  `pretrained` or `random`; a Doc2Vec method's word vectors are `doc2vec_dm` / `doc2vec_dbow` (`doc2vec_ngram`'s are none:
  it trains document vectors only).
- A neural model spec, `<family parts>@<embedding>`:
  recurrent `<cell>[-bi]-<pooling>` (lstm-bi-attention@word2vec_skipgram, gru-max@random);
  recursive `<treelstm|recnn>-<balanced|left|right|rae>` (treelstm-rae@glove);
  Transformer `transformer-<layers>x<d_model>` (transformer-2x128@word2vec_skipgram).
- A baseline row `tfidf_logreg`, `nb_logreg`, `nbsvm`, `mean@<method>`, `idf_mean@<method>`,
  `docvec@<doc2vec method>[+<doc2vec method>]`, `nb_docvec@<doc2vec method>`, and the `ensemble` row (its members
  are in its scores' `ensemble.members`).

Config validation, training, `nlpdag predict`, the `classify` stage and the report's claims all read
names through this module; `human` gives the words the report shows for each.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nlpdag.catalog.embeddings import METHODS
from nlpdag.catalog.reduce import REDUCERS, vectors_path

CELLS = {"rnn": "plain RNN", "lstm": "LSTM", "gru": "GRU"}
POOLINGS = ("last", "max", "mean", "attention")
TREE_CELLS = {"treelstm": "Tree-LSTM", "recnn": "recursive NN"}
TREE_SHAPES = {"balanced": "balanced trees", "left": "left-branching trees", "right": "right-branching trees",
               "rae": "recursive auto-encoder trees"}
METHOD_NAMES = {"word2vec_cbow": "word2vec CBOW", "word2vec_skipgram": "word2vec skip-gram", "glove": "GloVe",
                "fasttext": "FastText", "doc2vec_dm": "Doc2Vec PV-DM", "doc2vec_dbow": "Doc2Vec PV-DBOW",
                "doc2vec_ngram": "Doc2Vec DV-ngram (PV-DBOW over words and n-grams)",
                "pretrained": "pre-trained vectors", "random": "random initialisation"}
REDUCER_NAMES = {"none": "no reduction", "pca": "PCA", "ae": "plain auto-encoder", "dae": "denoising auto-encoder",
                 "stacked_ae": "stacked auto-encoder", "vae": "variational auto-encoder"}
BASELINE_NAMES = {"tfidf_logreg": "TF-IDF + logistic regression",
                  "nb_logreg": "NB-LR (naive-Bayes features + logistic regression)",
                  "nbsvm": "NBSVM (naive-Bayes features + SVM)", "mean": "mean word vector + logistic regression",
                  "idf_mean": "IDF-weighted mean word vector + logistic regression",
                  "docvec": "document vectors + logistic regression",
                  "nb_docvec": "NB-weighted n-grams + document vectors in one logistic regression"}

_RNN = re.compile(rf"^({'|'.join(CELLS)})(-bi)?-({'|'.join(POOLINGS)})$")
_TREE = re.compile(rf"^({'|'.join(TREE_CELLS)})-({'|'.join(TREE_SHAPES)})$")
_TRANSFORMER = re.compile(r"^transformer-([1-9][0-9]*)x([1-9][0-9]*)$")
MODEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")   # a DVC foreach key: neural@<key>

SPEC_HELP = ("<cell>[-bi]-<pooling>@<embedding> (cell rnn|lstm|gru, pooling last|max|mean|attention), "
             "<treelstm|recnn>-<balanced|left|right|rae>@<embedding> or transformer-<layers>x<d_model>@<embedding>")
EMBEDDING_HELP = f"random, {', '.join(METHODS)}, or <method>__<reducer> (reducer {'|'.join(REDUCERS)})"


@dataclass(frozen=True)
class Embedding:
    name: str
    method: str | None            # None for random
    reducer: str | None = None

    @property
    def random(self) -> bool:
        return self.method is None

    @property
    def doc2vec_mode(self) -> str | None:
        """dm / dbow when these are a Doc2Vec model's word vectors (their training may have seen the test texts)."""
        return self.method.removeprefix("doc2vec_") if self.method and self.method.startswith("doc2vec_") else None

    def path(self, root: Path = Path(".")) -> Path | None:
        """The vectors' Parquet file (through the catalog); None for random."""
        return None if self.random else vectors_path(self.name, root)

    @property
    def producer(self) -> str:
        """The DVC stage that writes the vectors."""
        if self.reducer:
            return "reduce"
        if self.method.startswith(("word2vec_", "doc2vec_")):
            head, _, tail = self.method.partition("_")
            return f"{head}@{tail}"
        return self.method

    @property
    def human(self) -> str:
        if self.random:
            return METHOD_NAMES["random"]
        return METHOD_NAMES[self.method] + (f", reduced by {REDUCER_NAMES[self.reducer]}" if self.reducer else "")


def parse_embedding(name: str) -> Embedding:
    """An embedding name, or ValueError saying what is allowed."""
    if name == "random":
        return Embedding(name, None)
    method, sep, reducer = name.partition("__")
    if method not in METHODS or (sep and reducer not in REDUCERS):
        what = f"unknown reducer {reducer!r}" if method in METHODS else f"unknown embedding {name!r}"
        raise ValueError(f"{what}; allowed: {EMBEDDING_HELP}")
    return Embedding(name, method, reducer or None)


@dataclass(frozen=True)
class ModelSpec:
    spec: str
    family: str                   # rnn | tree | transformer
    embedding: Embedding
    cell: str | None = None       # rnn|lstm|gru, or treelstm|recnn
    bidirectional: bool = False
    pooling: str | None = None    # recurrent: last|max|mean|attention
    tree: str | None = None       # balanced|left|right|rae
    layers: int | None = None     # Transformer
    d_model: int | None = None

    @property
    def attends(self) -> bool:
        """Whether the model has attention weights to show: attention pooling, or self-attention."""
        return self.pooling == "attention" or self.family == "transformer"

    @property
    def human(self) -> str:
        on = f", on {self.embedding.human}"
        if self.family == "rnn":
            return f"{'bidirectional ' if self.bidirectional else ''}{CELLS[self.cell]}, {self.pooling} pooling{on}"
        if self.family == "tree":
            return f"{TREE_CELLS[self.cell]} over {TREE_SHAPES[self.tree]}{on}"
        return f"Transformer encoder ({self.layers} layers of width {self.d_model}){on}"


def parse_model(spec: str) -> ModelSpec:
    """A neural model's spec, or ValueError saying what is allowed."""
    model, at, embedding = spec.rpartition("@")
    if not at:
        raise ValueError(f"{spec!r} is not {SPEC_HELP} (e.g. lstm-bi-attention@word2vec_skipgram)")
    if m := _RNN.match(model):
        parts = {"family": "rnn", "cell": m.group(1), "bidirectional": bool(m.group(2)), "pooling": m.group(3)}
    elif m := _TREE.match(model):
        parts = {"family": "tree", "cell": m.group(1), "tree": m.group(2)}
    elif m := _TRANSFORMER.match(model):
        parts = {"family": "transformer", "layers": int(m.group(1)), "d_model": int(m.group(2))}
    else:
        raise ValueError(f"{spec!r} is not {SPEC_HELP} (e.g. lstm-bi-attention@word2vec_skipgram)")
    try:
        emb = parse_embedding(embedding)
    except ValueError as exc:
        raise ValueError(f"{spec!r}: {exc}") from None
    return ModelSpec(spec, embedding=emb, **parts)


def is_model(name: str) -> bool:
    try:
        parse_model(name)
    except ValueError:
        return False
    return True


def family(name: str) -> str | None:
    """A row's model family (rnn, tree, transformer), None for a baseline or the ensemble."""
    return parse_model(name).family if is_model(name) else None


# ---- baseline and ensemble rows -------------------------------------------------------------------

ENSEMBLE = "ensemble"


def split_members(joined: str) -> list[str]:
    """'nbsvm+lstm-bi-max@glove+docvec@doc2vec_dm+doc2vec_dbow' -> its rows; a '+' right after 'docvec@...'
    joins Doc2Vec modes within one row."""
    out: list[str] = []
    for part in joined.split("+"):
        if out and out[-1].startswith(("docvec@", "nb_docvec@")) and part.startswith("doc2vec_"):
            out[-1] += "+" + part
        else:
            out.append(part)
    return out


def row_embeddings(name: str) -> list[Embedding]:
    """The embeddings a row's features come from (a neural model's, `mean@m`'s, `docvec@a+b`'s); none for
    the n-gram baselines and the ensemble (its members' are theirs: `row_embeddings` of each)."""
    if is_model(name):
        return [parse_model(name).embedding]
    kind, _, on = name.partition("@")
    return [parse_embedding(m) for m in on.split("+")] if kind in BASELINE_NAMES and on else []


def human(name: str) -> str:
    """'lstm-bi-attention@word2vec_skipgram' -> 'bidirectional LSTM, attention pooling, on word2vec skip-gram';
    any row, embedding or method; an unknown name is returned as it is."""
    try:
        return parse_embedding(name).human
    except ValueError:
        pass
    if is_model(name):
        return parse_model(name).human
    if name == ENSEMBLE:
        return "ensemble (logistic regression over its members' log-odds)"
    kind, _, on = name.partition("@")
    if kind in BASELINE_NAMES:
        return BASELINE_NAMES[kind] + (f", on {' + '.join(human(m) for m in on.split('+'))}" if on else "")
    return METHOD_NAMES.get(name, name)  # doc2vec_ngram: a method with document vectors only


SOURCE_NAMES = {"imdb": "IMDB", "rotten_tomatoes": "Rotten Tomatoes"}


def human_source(name: str) -> str:
    """A corpus source id as the report prints it: 'rotten_tomatoes' -> 'Rotten Tomatoes'; a user's own
    source keeps its spelling, underscores read as spaces."""
    return SOURCE_NAMES.get(name, str(name).replace("_", " "))
