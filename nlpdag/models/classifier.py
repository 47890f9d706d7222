"""`NeuralClassifier`: every neural family (recurrent, recursive, Transformer) as one estimator.

In the scikit-learn / openTSNE manner: `NeuralClassifier(spec, **recipe)` holds only its settings;
`fit(docs, y, val_docs, val_y)` learns (early stopping on the validation pair) and returns self; the
learned state ends in `_` (`words_`, `model_`, `history_`, `best_epoch_`, ...); `predict_proba`,
`transform` (the pooled document vectors) and `attention` read token lists; `save(dir)` / `load(dir)`
keep the weights alone in `model.pt` and everything else as JSON and text.

It owns the one path from token lists to ids (`encode`: the embedding's words, truncation, a tree
model's segment trees) and checkpoint/resume (`checkpoint_dir`: a run killed mid-training resumes
from its last epoch and ends with the same weights), on the shared Trainer.

The embedding layer starts from the spec's vectors (nlpdag/names.py: a method, `<method>__<reducer>`,
`pretrained`) or at random. Words of `vocab` that the vectors lack map to the learned unknown-word
vector, except with `fasttext`, whose model builds them from their character n-grams.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path
from nlpdag.io.vectors import read_vectors
from nlpdag.names import Embedding, ModelSpec, parse_model

MODEL_FILE, CONFIG_FILE, VOCAB_FILE = "model.pt", "config.json", "vocab.txt"


@dataclass(frozen=True)
class Recipe:
    """The training recipe and the families' own settings: `classify`'s keys of the same names."""
    embed_dim: int = 100
    freeze_embeddings: bool = False
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.3
    embed_dropout: float = 0.3
    max_len: int = 256
    truncation: str = "head_tail"
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 2e-3
    schedule: str = "cosine"
    warmup: float = 0.1
    pretrained_lr: float = 1.0
    frozen_epochs: int = 1
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    clip: float = 1.0
    patience: int = 2
    pretraining: str = "none"
    pretraining_epochs: int = 1
    pretraining_max_len: int = 100
    tree_segment: int = 30
    rae_epochs: int = 2
    rae_sample: int = 20000
    transformer_heads: int = 4
    transformer_ff: int = 256
    transformer_dropout: float = 0.1
    transformer_pooling: str = "cls"
    device: str = "auto"

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def load_vectors(embedding: Embedding) -> tuple[list[str], np.ndarray]:
    """(tokens, vectors) of a method or a reduction, from the pipeline's files."""
    path = embedding.path()
    if not path.exists():
        raise StageError(f"{path}: embedding {embedding.name!r} not found (run: dvc repro {embedding.producer})")
    tokens, vectors = read_vectors(path)
    if not tokens:
        raise StageError(f"{path}: embedding {embedding.name!r} is empty (set pretrained.path)")
    return tokens, vectors


def fasttext_subwords() -> Callable[[list[str]], np.ndarray]:
    """Vectors of any words from the FastText model's character n-grams."""
    from nlpdag.io.native import load_fasttext

    model = load_fasttext()
    return lambda words: np.stack([model.wv[w] for w in words])


def initial_matrix(vocab: Sequence[str], tokens: Sequence[str], vectors: np.ndarray, seed: int,
                   subwords: Callable | None = None, log=print) -> tuple[list[str], np.ndarray]:
    """The classifier's words (ids 2.., after PAD and UNK) and their initial vectors (V + 2, dim): the
    words of `vocab` that have a vector (with `subwords`, every word)."""
    row = {t: i for i, t in enumerate(tokens)}
    missing = [w for w in vocab if w not in row]
    if subwords is not None and missing:
        vectors = np.vstack([vectors, subwords(missing)])
        row.update({w: len(tokens) + k for k, w in enumerate(missing)})
        log(f"classify: {len(missing)} words built from fasttext's character n-grams")
    words = [w for w in vocab if w in row]
    if len(words) < len(vocab):
        log(f"classify: {len(vocab) - len(words)} of {len(vocab)} words have no vector -> unknown word")
    rng = np.random.default_rng(seed)
    scale = float(vectors.std()) or 1.0
    matrix = np.empty((len(words) + 2, vectors.shape[1]), dtype=np.float32)
    matrix[0] = 0.0                                                    # PAD
    matrix[1] = rng.normal(0.0, scale, vectors.shape[1])               # UNK, learned
    matrix[2:] = vectors[[row[w] for w in words]]
    return words, matrix


def words_by_frequency(docs: Sequence[Sequence[str]]) -> list[str]:
    from collections import Counter

    counts = Counter(t for d in docs for t in d)
    return sorted(counts, key=lambda t: (-counts[t], t))


def build_network(spec: ModelSpec, recipe: Recipe, vocab_size: int, n_classes: int, init: np.ndarray | None,
                  train_seqs: Sequence[np.ndarray], seed: int, log=print) -> torch.nn.Module:
    """The untrained network of a spec's family. A `rae` tree model first trains its recursive
    auto-encoder on the training text (`train_seqs`) from the initial word vectors."""
    embed_dim = recipe.embed_dim if init is None else init.shape[1]
    vectors = None if init is None else torch.from_numpy(init)
    common = {"vocab_size": vocab_size, "n_classes": n_classes, "embed_dim": embed_dim,
              "embed_dropout": recipe.embed_dropout, "freeze_embeddings": recipe.freeze_embeddings}
    torch.manual_seed(seed)
    if spec.family == "rnn":
        from nlpdag.models.rnn import RNNClassifier, RNNConfig

        return RNNClassifier(RNNConfig(cell=spec.cell, bidirectional=spec.bidirectional, layers=recipe.layers,
                                       hidden=recipe.hidden, pooling=spec.pooling, dropout=recipe.dropout, **common),
                             vectors)
    if spec.family == "tree":
        from nlpdag.models.recursive import TreeClassifier, TreeConfig, train_rae

        config = TreeConfig(cell=spec.cell, tree=spec.tree, hidden=recipe.hidden, segment=recipe.tree_segment,
                            dropout=recipe.dropout, **common)
        rae = None
        if spec.tree == "rae":
            leaves = init if init is not None else torch.nn.Embedding(vocab_size, embed_dim).weight.detach().numpy()
            leaves = np.array(leaves, dtype=np.float32)
            leaves[0] = 0.0  # PAD
            rae = train_rae(leaves, train_seqs, recipe.tree_segment, recipe.rae_epochs, recipe.rae_sample,
                            seed=seed, log=log)
            torch.manual_seed(seed)
        return TreeClassifier(config, vectors, rae)
    from nlpdag.models.transformer import TransformerClassifier, TransformerConfig

    return TransformerClassifier(TransformerConfig(layers=spec.layers, d_model=spec.d_model,
                                                   heads=recipe.transformer_heads, ff=recipe.transformer_ff,
                                                   pooling=recipe.transformer_pooling,
                                                   dropout=recipe.transformer_dropout, **common), vectors)


def pretrained_groups(recipe: Recipe, embedding_init: bool, pretraining: str, config) -> tuple:
    """The layers that start from knowledge learn at `pretrained_lr` times the rate, and not at all in the
    first `frozen_epochs` epochs (at most all but the last): the embedding when it starts from a method's
    vectors, and what pre-training trained (ULMFiT's discriminative rates and gradual unfreezing, in two
    steps: the layers above first, then everything). The output layer always learns at the full rate."""
    from nlpdag.training.schedule import ParamGroup

    prefixes = ["embedding."] if embedding_init or pretraining != "none" else []
    if pretraining == "autoencoder":
        prefixes += ["rnns.", "att_"]  # its document vector is the classifier's own pooling
    elif pretraining == "lm":  # a bidirectional stack pre-trains its first layer only (PretrainHead)
        prefixes += ["rnns.0." if config.directions > 1 else "rnns."]
    if recipe.pretrained_lr == 1.0 and recipe.frozen_epochs == 0:
        return ()
    frozen = min(recipe.frozen_epochs, recipe.epochs - 1)  # at least one epoch learns (epochs: 1 freezes nothing)
    return tuple(ParamGroup(p, recipe.pretrained_lr, frozen) for p in prefixes)


def gradient_summary(norms: list[float], clip: float) -> dict | None:
    """The global gradient norms of every step before clipping (backprop through time): how large they
    grew and how often `clip` cut them, the evidence for 'clipping tames exploding gradients'."""
    if not norms:
        return None
    norms_ = np.asarray(norms, dtype=np.float64)
    return {"steps": len(norms_), "median": round(float(np.median(norms_)), 4), "max": round(float(norms_.max()), 4),
            "clip": clip or None, "clipped_share": round(float((norms_ > clip).mean()), 4) if clip else None}


class NeuralClassifier:
    """spec: a model spec (nlpdag/names.py); recipe: `Recipe`'s keys. vocab: the words that may get an
    id (None: every training word, most frequent first); vectors: (tokens, matrix) to start the
    embedding from (None: the spec's embedding from the pipeline's files); seed; checkpoint_dir: where
    an interrupted fit resumes from (None: no checkpoints); callbacks: the Trainer's (e.g. DVCLive)."""

    def __init__(self, spec: str, *, vocab: Sequence[str] | None = None, vectors=None, seed: int = 0,
                 checkpoint_dir: str | Path | None = None, callbacks: Sequence[object] = (), verbose: bool = True,
                 log=print, **recipe):
        self.spec = spec
        self.spec_ = parse_model(spec)
        self.recipe = Recipe(**recipe)
        self.vocab, self.vectors, self.seed = vocab, vectors, seed
        self.checkpoint_dir, self.callbacks, self.verbose, self.log = checkpoint_dir, list(callbacks), verbose, log

    # ---- the one encode path ----------------------------------------------------------------------

    def encode(self, docs: Sequence[Sequence[str]]) -> list:
        """Token lists -> what the network reads: id arrays cut to max_len, and a tree model's segment trees."""
        from nlpdag.models.sequences import encode_docs

        seqs = encode_docs(docs, self.index_, self.recipe.max_len, self.recipe.truncation)
        return self.model_.prepare(seqs) if hasattr(self.model_, "prepare") else seqs

    def _words(self, docs) -> tuple[list[str], np.ndarray | None]:
        emb = self.spec_.embedding
        vocab = list(self.vocab) if self.vocab is not None else words_by_frequency(docs)
        if emb.random:
            return vocab, None
        tokens, vectors = self.vectors if self.vectors is not None else load_vectors(emb)
        subwords = fasttext_subwords() if emb.name == "fasttext" and self.vectors is None else None
        return initial_matrix(vocab, tokens, vectors, self.seed, subwords, self.log)

    # ---- fitting ------------------------------------------------------------------------------------

    def fit(self, docs: Sequence[Sequence[str]], y, val_docs: Sequence[Sequence[str]] | None = None, val_y=None,
            labels: Sequence[str] | None = None) -> "NeuralClassifier":
        from nlpdag.models.pretraining import pretrain_encoder
        from nlpdag.models.sequences import encode_docs, fit_classifier
        from nlpdag.training.devices import resolve_device
        from nlpdag.training.trainer import TrainerConfig

        r, spec = self.recipe, self.spec_
        y = np.asarray(y, dtype=np.int64)
        self.labels_ = [str(label) for label in labels] if labels is not None else [str(c) for c in range(int(y.max()) + 1)]
        start = time.perf_counter()
        self.words_, init = self._words(docs)
        self.index_ = {w: i + 2 for i, w in enumerate(self.words_)}
        seqs = encode_docs(docs, self.index_, r.max_len, r.truncation)
        self.model_ = build_network(spec, r, len(self.words_) + 2, len(self.labels_), init, seqs, self.seed, self.log)
        train = self.model_.prepare(seqs) if hasattr(self.model_, "prepare") else seqs
        val = self.encode(val_docs) if val_docs is not None and len(val_docs) else None
        device = resolve_device(r.device, "classify.device")
        pretraining = r.pretraining if spec.family == "rnn" else "none"
        if pretraining != r.pretraining:
            self.log(f"classify: {self.spec}: classify.pretraining applies to the recurrent models only; this one "
                     "starts from its embedding")
        checkpoint = self._checkpoint_path(y)
        config = TrainerConfig(name=self.spec, epochs=r.epochs, batch_size=r.batch_size, learning_rate=r.learning_rate,
                               schedule=r.schedule, warmup=r.warmup,
                               groups=pretrained_groups(r, init is not None, pretraining, self.model_.config),
                               weight_decay=r.weight_decay, optimizer=r.optimizer, clip=r.clip, patience=r.patience,
                               device=str(device), device_param="classify.device", seed=self.seed,
                               checkpoint=str(checkpoint) if checkpoint else None, verbose=self.verbose)
        self.pretrain_history_: list[dict] = []
        if pretraining != "none" and not (checkpoint and checkpoint.exists()):  # a resumed run has its weights
            from nlpdag.training.progress import DVCLiveLogger

            text = seqs + (encode_docs(val_docs, self.index_, r.max_len, r.truncation) if val is not None else [])
            live = [c for c in self.callbacks if isinstance(c, DVCLiveLogger)]
            hooks = [DVCLiveLogger(c.logger, f"{self.spec} pretraining") for c in live]
            self.pretrain_history_ = pretrain_encoder(self.model_, text, pretraining, r.pretraining_epochs, config,
                                                      max_len=r.pretraining_max_len, callbacks=hooks)
        trainer = fit_classifier(self.model_, config, train, y, val, val_y, self.callbacks)
        self.seconds_ = time.perf_counter() - start
        self.history_, self.best_epoch_ = trainer.history_, trainer.best_epoch_
        self.tokens_per_second_ = trainer.tokens_per_second_
        self.gradients_ = gradient_summary(trainer.grad_norms_, r.clip)
        if checkpoint:
            checkpoint.unlink(missing_ok=True)
        return self

    def _checkpoint_path(self, y: np.ndarray) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        words = hashlib.sha1("\n".join(self.words_).encode("utf-8")).hexdigest()[:16]
        key = hashlib.sha1(json.dumps([self.spec, asdict(self.recipe), words, len(y), y[:50].tolist(),
                                       self.seed]).encode()).hexdigest()[:12]
        return Path(self.checkpoint_dir) / f"{self.spec.replace('@', '_at_')}-{key}.pt"

    # ---- prediction ---------------------------------------------------------------------------------

    def _predict(self, docs, states: bool = False, attention: bool = False, device: str | None = None) -> dict:
        from nlpdag.models.sequences import predict

        return predict(self.model_, self.encode(docs), device=device or self.recipe.device, with_states=states,
                       with_attention=attention)

    def predict_proba(self, docs: Sequence[Sequence[str]], device: str | None = None) -> np.ndarray:
        """(N, n_classes) float32."""
        return self._predict(docs, device=device)["proba"]

    def transform(self, docs: Sequence[Sequence[str]]) -> np.ndarray:
        """(N, out_dim) float32: the pooled document vectors the output layer reads."""
        return self._predict(docs, states=True)["states"]

    def attention(self, docs: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Per document, a weight per token the model read (attention pooling; a Transformer's last layer from
        its class token, averaged over heads). ValueError for a family without attention."""
        if not self.spec_.attends:
            raise ValueError(f"{self.spec}: has no attention weights")
        return self._predict(docs, attention=True)["attention"]

    def predict_all(self, docs: Sequence[Sequence[str]]) -> dict:
        """proba, states and (where the model attends) attention in one pass."""
        return self._predict(docs, states=True, attention=self.spec_.attends)

    def read_tokens(self, doc: Sequence[str]) -> list[str]:
        """The words of `doc` the model reads, cut as `encode` cuts them (for showing attention)."""
        max_len, doc = self.recipe.max_len, list(doc)
        if len(doc) <= max_len:
            return doc
        if self.recipe.truncation == "head":
            return doc[:max_len]
        if self.recipe.truncation == "tail":
            return doc[-max_len:]
        head = max_len // 4
        return doc[:head] + doc[len(doc) - (max_len - head):]

    def tree_nodes(self, docs: Sequence[Sequence[str]]) -> list[dict]:
        """A tree model's first segment tree of each document: its children table and every node's class
        probabilities (N nodes, n_classes)."""
        from nlpdag.models.trees import make_forest

        if self.spec_.family != "tree":
            raise ValueError(f"{self.spec}: not a tree model")
        model = self.model_.cpu().eval()
        out = []
        with torch.no_grad():
            for doc in self.encode(docs):
                forest = make_forest([doc], keep_nodes=True)
                proba = torch.softmax(model.node_logits(model.node_states(forest)[forest.nodes]).float(), dim=1)
                out.append({"children": doc.trees[0].tolist(), "proba": proba.numpy()})
        return out

    # ---- saving -------------------------------------------------------------------------------------

    def save(self, folder: str | Path, **meta) -> None:
        """model.pt (the weights alone), config.json (spec, recipe, the network's config, labels, history,
        `meta`), vocab.txt (a word per line, id 2 first); each written atomically."""
        from nlpdag.models.checkpoints import FAMILIES

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rae = getattr(self.model_, "rae", None)
        config = {"spec": self.spec, "family": FAMILIES[type(self.model_).__name__], "recipe": asdict(self.recipe),
                  "seed": self.seed, "network": asdict(self.model_.config),
                  "rae_dim": None if rae is None else int(rae.leaves.shape[1]), "labels": self.labels_,
                  "best_epoch": self.best_epoch_, "history": self.history_, "meta": meta}
        with atomic_path(folder / MODEL_FILE) as tmp:
            torch.save(self.model_.state_dict(), tmp)
        with atomic_path(folder / VOCAB_FILE) as tmp:
            Path(tmp).write_text("".join(f"{w}\n" for w in self.words_), encoding="utf-8")
        with atomic_path(folder / CONFIG_FILE) as tmp:
            Path(tmp).write_text(json.dumps(config, indent=1, default=float) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> "NeuralClassifier":
        """A fitted classifier from `save`'s folder, on the CPU in eval mode (weights read with weights_only)."""
        from nlpdag.models.checkpoints import build_model

        folder = Path(folder)
        try:
            config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            words = (folder / VOCAB_FILE).read_text(encoding="utf-8").split("\n")[:-1]
            clf = cls(config["spec"], seed=config["seed"], **{**config["recipe"], "device": "cpu"})
            model = build_model(config["family"], config["network"], config["rae_dim"])
            model.load_state_dict(torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True))
        except (OSError, KeyError, TypeError, RuntimeError, ValueError) as exc:
            raise StageError(f"{folder}: not a classifier nlpdag can rebuild ({exc.__class__.__name__}: {exc})") from None
        if model.config.vocab_size != len(words) + 2:
            raise StageError(f"{folder / VOCAB_FILE}: {len(words)} words for {model.config.vocab_size} embedding rows "
                             "(expected words + 2)")
        clf.model_, clf.words_ = model.eval(), words
        clf.index_ = {w: i + 2 for i, w in enumerate(words)}
        clf.labels_, clf.history_, clf.best_epoch_ = config["labels"], config["history"], config["best_epoch"]
        clf.meta_ = config["meta"]
        return clf
