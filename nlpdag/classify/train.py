"""Stage `classify`: sentiment (or any labels) from every representation, judged on one test split.

Baselines (nlpdag/models/baselines.py), each a logistic regression or SVM on fixed features:
- `tfidf_logreg`: the `bow` stage's TF-IDF 1..n-gram model, read from its outputs (not refitted).
- `nb_logreg`, `nbsvm`: word 1-2-gram presence scaled by the naive-Bayes log-count ratio (Wang &
  Manning 2012), with logistic regression or the interpolated linear SVM.
- `mean@<method>`, `idf_mean@<method>`: the (IDF-weighted) mean of a document's word vectors.
- `docvec@doc2vec_dm`, `docvec@doc2vec_dbow`, `docvec@doc2vec_dm+doc2vec_dbow`: the Doc2Vec document vectors.
Neural models (nlpdag/models/rnn.py, trained by nlpdag/models/sequences.py), one per entry of `classify.models`,
named "<cell>[-bi]-<pooling>@<embedding>": the embedding layer starts from a method's word vectors
(`word2vec_skipgram`, `glove__vae`, `pretrained`...) or at random. Words of the vocabulary that the
embedding lacks are mapped to the learned unknown-word vector, except with `fasttext`, which builds
them from their character n-grams. Every choice is made on the validation slice of the training split
that ingest chose (data.val_fraction, stratified by label and source; nlpdag/evaluation/protocol.py): each
baseline's C (then refitted on the whole training split), the neural models' epochs (early stopping),
the default model of `nlpdag predict`, the attention panel, the training recipe's defaults
(bench/recipe.py), the ensemble's weights (nlpdag/classify/ensemble.py). The test split is scored once.

Outputs: reports/metrics/classify.json {"models": {name: {accuracy, macro_f1, roc_auc, n, by_source,
accuracy_ci, macro_f1_ci, train_seconds, tokens_per_second, kind, transductive, trained_on, C,
validation_accuracy}}}; reports/classify/summary.json (per scope, overall and per source: winner, or
null and tied_with, by an exact McNemar test; best baseline; best_neural, chosen on the validation
slice); reports/classify/attention.json; reports/plots/classify/<name>.csv (per
epoch); reports/plots/confusion/<name>.csv (actual, predicted); data/classify/predictions.parquet;
data/classify/states.parquet (each neural model's pooled states of the test documents);
data/models/classify/<name>/ (what `nlpdag predict` loads).

Under `torchrun --nproc_per_node N -m stages.classify` every rank trains the neural models together
(DistributedDataParallel, nlpdag/training/distributed.py); rank 0 alone fits the baselines, predicts, logs and
writes every output.
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import torch

from nlpdag.models import baselines as bl
from nlpdag.training import distributed as dd
from nlpdag.evaluation import protocol as evaluation
from nlpdag.errors import StageError, involving
from nlpdag.catalog.embeddings import DOCVECS_DIR, EMBEDDINGS_DIR, METHODS, TRAIN_DIR
from nlpdag.io.tables import read_frame, read_json, read_table
from nlpdag.config.classify import SPEC_HELP, parse_spec as parse_model_spec
from nlpdag.config.classify import ClassifyParams
from nlpdag.classify.dataset import Dataset, Result
from nlpdag.classify.outputs import accuracy_on_test, truncate, validation_accuracy
from nlpdag.io.vectors import read_vectors
from nlpdag.catalog.bow import BOW_METRICS, BOW_PREDICTIONS
from nlpdag.catalog.classify import CHECKPOINTS
from nlpdag.catalog.ingest import CORPUS, LABELS
from nlpdag.catalog.reduce import REDUCED_DIR
from nlpdag.catalog.tokenise import TOKENS, VOCAB
# Outside DVC's outputs, which DVC deletes before a stage runs: an interrupted run resumes from here.


def validation_split(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Positions (within the training split) of the fitting part and of the validation slice that
    ingest chose (stratified by label and source, a function of the texts: nlpdag/evaluation/protocol.py)."""
    val = data.validation[data.train]
    if val.sum() == 0 or val.all():
        raise StageError(f"{CORPUS}: the validation slice of the training split is empty or all of it "
                         "(data.val_fraction)")
    return np.flatnonzero(~val), np.flatnonzero(val)


# ---- baselines ---------------------------------------------------------------------------------

def _from_bow(data: Dataset) -> Result:
    """The bow stage's predictions hold the probability of the predicted class only; for two classes
    that is the whole distribution."""
    metrics = read_json(BOW_METRICS)["models"]["tfidf_logreg"]
    pred = read_frame(BOW_PREDICTIONS)
    if not np.array_equal(pred["doc_id"].to_numpy(), data.doc_ids[data.test]):
        raise StageError(f"{BOW_PREDICTIONS}: test documents differ from {CORPUS} (rerun: dvc repro bow)")
    k = len(data.labels)
    rest = (1.0 - pred["proba"].to_numpy()) / max(k - 1, 1)
    proba = np.repeat(rest[:, None], k, axis=1)
    proba[np.arange(len(pred)), pred["predicted"].to_numpy()] = pred["proba"].to_numpy()
    info = {key: metrics.get(key) for key in ("C", "validation_accuracy", "trained_on")}
    return Result("tfidf_logreg", "baseline", proba, float(metrics.get("train_seconds", float("nan"))), info=info)


def _select_fit_predict(name: str, fit, grid: list[float], X_train, data: Dataset, X_test,
                        features_seconds: float = 0.0, **info) -> Result:
    """Each C of `grid` fitted on the training split minus its validation slice and scored on the
    slice; the best one (ties: the smaller C) refitted on the whole training split for the test.
    `fit(X, y, C)` returns an estimator with predict_proba. The test split is not seen until the end."""
    fit_pos, val_pos = validation_split(data)
    y_train = data.y[data.train]
    X_fit, X_val = bl.take_rows(X_train, fit_pos), bl.take_rows(X_train, val_pos)
    start = time.perf_counter()
    with involving(f"classify.baselines: {name}"):
        val_proba = {}

        fitted = {}

        def score(C: float) -> float:
            fitted[C] = fit(X_fit, y_train[fit_pos], C)
            val_proba[C] = np.asarray(fitted[C].predict_proba(X_val))
            return float(np.mean(val_proba[C].argmax(axis=1) == y_train[val_pos]))

        C, scores = evaluation.select(grid, score)
        model = fit(X_train, y_train, C)
        proba = np.asarray(model.predict_proba(X_test))
        # The ensemble weighs this row's log-odds as the validation slice showed them: on the test split it
        # needs the same model's, not the refitted one's (more data, other margins and confidence).
        fit_part_proba = np.asarray(fitted[C].predict_proba(X_test))
    seconds = features_seconds + time.perf_counter() - start
    info = {"C": C, "validation_accuracy": {f"{c:g}": round(v, 4) for c, v in scores.items()},
            "trained_on": "train split (C chosen on its validation slice, then refitted on all of it)", **info}
    return Result(name, "baseline", proba, seconds, extra={"fit_part_proba": fit_part_proba},
                  val_proba=val_proba[C], info=info)


def load_docvecs(mode: str, data: Dataset) -> tuple[np.ndarray, bool]:
    """(vectors, transductive): transductive when the test documents' vectors were trained beside the
    training ones (doc2vec.train_on_all), i.e. the model saw the test texts (never their labels)."""
    path = DOCVECS_DIR / f"doc2vec_{mode}.parquet"
    table = read_table(path, columns=["doc_id", "vector", "inferred"])
    ids = table.column("doc_id").to_numpy()
    if not np.array_equal(ids, data.doc_ids):
        raise StageError(f"{path}: documents differ from {CORPUS} (rerun: dvc repro doc2vec@{mode})")
    inferred = table.column("inferred").to_numpy(zero_copy_only=False)
    return bl.stack_vectors(table.column("vector")), not bool(inferred[data.test].all())


def representation_seconds(method: str) -> float | None:
    """The representation's own training time (reports/train/<method>.json), apart from the row's."""
    path = TRAIN_DIR / f"{method.partition('__')[0]}.json"
    return read_json(path).get("train_seconds") if path.is_file() else None


def run_baselines(data: Dataset, params: ClassifyParams, seed: int, log=print) -> list[Result]:
    train, test = data.train, data.test
    results: list[Result] = []
    wanted = set(params.baselines)
    if "tfidf_logreg" in wanted:
        results.append(_from_bow(data))
    if wanted & {"nb_logreg", "nbsvm"}:
        start = time.perf_counter()
        X_train, X_test = bl.ngram_counts(data.subset(train), data.subset(test))
        seconds = time.perf_counter() - start
        if "nb_logreg" in wanted:
            results.append(_select_fit_predict("nb_logreg", lambda X, y, C: bl.fit_nb_logreg(X, y, C=C, seed=seed),
                                               params.nb_C, X_train, data, X_test, seconds))
        if "nbsvm" in wanted:
            results.append(_select_fit_predict("nbsvm", lambda X, y, C: bl.fit_nbsvm(X, y, C=C, seed=seed),
                                               params.nbsvm_C, X_train, data, X_test, seconds))
    dense = lambda X, y, C: bl.fit_dense_logreg(X, y, C=C, seed=seed)  # noqa: E731
    if wanted & {"mean", "idf_mean"}:
        idf = bl.idf_weights(data.subset(train)) if "idf_mean" in wanted else None  # training split only
        for method in params.baseline_methods:
            embedding = load_embedding(method)
            if embedding is None:
                log(f"classify: {method}: no vectors (pretrained.path not set), skipped")
                continue
            tokens, vectors = embedding
            for kind, weights in (("mean", None), ("idf_mean", idf)):
                if kind not in wanted:
                    continue
                start = time.perf_counter()
                X = bl.mean_vectors(data.docs, tokens, vectors, weights)
                results.append(_select_fit_predict(f"{kind}@{method}", dense, params.dense_C, X[train], data, X[test],
                                                   time.perf_counter() - start, transductive=transductive(method, data),
                                                   representation_seconds=representation_seconds(method)))
    if "docvec" in wanted:
        (dm, dm_all), (dbow, dbow_all) = load_docvecs("dm", data), load_docvecs("dbow", data)
        for name, X, seen in (("docvec@doc2vec_dm", dm, dm_all), ("docvec@doc2vec_dbow", dbow, dbow_all),
                              ("docvec@doc2vec_dm+doc2vec_dbow", np.hstack([dm, dbow]), dm_all or dbow_all)):
            methods = name.partition("@")[2].split("+")
            rep = [representation_seconds(m) for m in methods]
            results.append(_select_fit_predict(name, dense, params.dense_C, X[train], data, X[test], transductive=seen,
                                               representation_seconds=None if None in rep else round(sum(rep), 2)))
    for r in results:
        log(f"classify: {r.name}: accuracy {accuracy_on_test(r, data):.4f} "
            f"({r.seconds:.1f} s" + (f", C {r.info['C']:g}" if r.info.get("C") is not None else "") + ")")
    return results


def transductive(embedding: str, data: Dataset) -> bool:
    """Whether an embedding's training saw the test texts: Doc2Vec's word vectors under train_on_all."""
    method = embedding.partition("__")[0]
    return method in ("doc2vec_dm", "doc2vec_dbow") and load_docvecs(method[4:], data)[1]


# ---- embeddings for the neural models ----------------------------------------------------------

def check_embedding(name: str) -> None:
    method, _, reducer = name.partition("__")
    if name != "random" and method not in METHODS:
        raise StageError(f"params.yaml: classify.models: unknown embedding {name!r}; allowed: random, "
                         f"{', '.join(METHODS)}, or <method>__<reducer> from the reduce stage")


def load_embedding(name: str) -> tuple[list[str], np.ndarray] | None:
    """(tokens, vectors) of a method (`word2vec_skipgram`) or a reduction (`glove__vae`); None when the
    `pretrained` table is empty (no file set)."""
    check_embedding(name)
    path = (REDUCED_DIR if "__" in name else EMBEDDINGS_DIR) / f"{name}.parquet"
    if not path.exists():
        hint = "reduce" if "__" in name else name
        raise StageError(f"{path}: embedding {name!r} not found (is it produced? dvc repro {hint})")
    tokens, vectors = read_vectors(path)
    return (tokens, vectors) if tokens else None


def embedding_init(vocab: list[str], name: str, seed: int,
                   log=print) -> tuple[list[str], np.ndarray | None]:
    """The classifier's words (ids 2.., after PAD and UNK) and their initial vectors (V + 2, dim),
    None for a random start. Words the embedding lacks are left out, so they map to UNK, except
    with fasttext, whose model builds any word's vector from its character n-grams."""
    if name == "random":
        return vocab, None
    embedding = load_embedding(name)
    if embedding is None:
        raise StageError(f"params.yaml: classify.models: embedding {name!r} is empty (set pretrained.path)")
    tokens, vectors = embedding
    row = {t: i for i, t in enumerate(tokens)}
    if name == "fasttext":
        from nlpdag.io.native import load_fasttext

        missing = [w for w in vocab if w not in row]
        if missing:
            model = load_fasttext()
            vectors = np.vstack([vectors, np.stack([model.wv[w] for w in missing])])
            row.update({w: len(tokens) + k for k, w in enumerate(missing)})
            log(f"classify: {len(missing)} words built from fasttext's character n-grams")
    words = [w for w in vocab if w in row]
    if len(words) < len(vocab):
        log(f"classify: {name}: {len(vocab) - len(words)} of {len(vocab)} words have no vector -> unknown word")
    rng = np.random.default_rng(seed)
    scale = float(vectors.std()) or 1.0
    matrix = np.empty((len(words) + 2, vectors.shape[1]), dtype=np.float32)
    matrix[0] = 0.0                                                    # PAD
    matrix[1] = rng.normal(0.0, scale, vectors.shape[1])               # UNK, learned
    matrix[2:] = vectors[[row[w] for w in words]]
    return words, matrix


def vocab_hash(words: list[str]) -> str:
    return hashlib.sha1("\n".join(words).encode("utf-8")).hexdigest()[:16]


# ---- neural models -----------------------------------------------------------------------------

def parse_spec(spec: str) -> dict:
    parts = parse_model_spec(spec)
    if parts is None:
        raise StageError(f"params.yaml: classify.models: {spec!r} is not {SPEC_HELP}")
    return parts


def build_classifier(parts: dict, vocab_size: int, n_classes: int, init: np.ndarray | None, seqs: list,
                     train_seqs: list, params: ClassifyParams, seed: int, log=print):
    """The untrained model of a spec's family. A `rae` tree model first trains its recursive
    auto-encoder on the training split's text (`train_seqs`) from the initial word vectors."""
    embed_dim = params.embed_dim if init is None else init.shape[1]
    vectors = None if init is None else torch.from_numpy(init)
    common = {"vocab_size": vocab_size, "n_classes": n_classes, "embed_dim": embed_dim,
              "embed_dropout": params.embed_dropout, "freeze_embeddings": params.freeze_embeddings}
    torch.manual_seed(seed)
    if parts["family"] == "rnn":
        from nlpdag.models.rnn import RNNClassifier, RNNConfig

        config = RNNConfig(cell=parts["cell"], bidirectional=parts["bidirectional"], layers=params.layers,
                           hidden=params.hidden, pooling=parts["pooling"], dropout=params.dropout, **common)
        return RNNClassifier(config, vectors)
    if parts["family"] == "tree":
        from nlpdag.models.recursive import TreeClassifier, TreeConfig, train_rae

        config = TreeConfig(cell=parts["cell"], tree=parts["tree"], hidden=params.hidden, segment=params.tree_segment,
                            dropout=params.dropout, **common)
        rae = None
        if parts["tree"] == "rae":
            leaves = init if init is not None else torch.nn.Embedding(vocab_size, embed_dim).weight.detach().numpy()
            leaves = np.array(leaves, dtype=np.float32)
            leaves[0] = 0.0  # PAD
            rae = train_rae(leaves, train_seqs, params.tree_segment, params.rae_epochs, params.rae_sample, seed=seed, log=log)
            torch.manual_seed(seed)
        return TreeClassifier(config, vectors, rae)
    from nlpdag.models.transformer import TransformerClassifier, TransformerConfig

    config = TransformerConfig(layers=parts["layers"], d_model=parts["d_model"], heads=params.transformer_heads,
                               ff=params.transformer_ff, pooling=params.transformer_pooling,
                               dropout=params.transformer_dropout, **{**common, "embed_dropout": params.embed_dropout})
    return TransformerClassifier(config, vectors)


def train_neural(spec: str, data: Dataset, vocab: list[str], params: ClassifyParams, seed: int,
                 device: torch.device, log=print, live=None) -> tuple[Result | None, object, dict]:
    """Train one model; returns its Result (None on ranks other than 0, which only help train), the
    model and what `nlpdag predict` needs to rebuild it. `live`: the stage's DVCLive logger."""
    from nlpdag.models.pretraining import pretrain_encoder
    from nlpdag.models.sequences import encode_docs, fit_classifier, predict
    from nlpdag.training.progress import DVCLiveLogger
    from nlpdag.training.trainer import TrainerConfig

    parts = parse_spec(spec)
    words, init = embedding_init(vocab, parts["embedding"], seed, log)
    index = {w: i + 2 for i, w in enumerate(words)}
    seqs = encode_docs(data.docs, index, params.max_len, params.truncation)
    train_idx = np.flatnonzero(data.train)
    fit, val = validation_split(data)
    start = time.perf_counter()
    model = build_classifier(parts, len(words) + 2, len(data.labels), init, seqs,
                             [seqs[train_idx[i]] for i in fit], params, seed, log)
    config = model.config
    if hasattr(model, "prepare"):  # a tree model's input: every document's segment trees
        seqs = model.prepare(seqs)
    words_hash = vocab_hash(words)
    key = hashlib.sha1(json.dumps([spec, params.model_dump(), words_hash, train_idx.tolist()[:50],
                                   len(train_idx), seed]).encode()).hexdigest()[:12]
    checkpoint = CHECKPOINTS / f"{spec.replace('@', '_at_')}-{key}.pt"
    train_config = TrainerConfig(name=spec, epochs=params.epochs, batch_size=params.batch_size,
                                 learning_rate=params.learning_rate, schedule=params.schedule, warmup=params.warmup,
                                 groups=pretrained_groups(init is not None, config, params if parts["family"] == "rnn"
                                                          else params.model_copy(update={"pretraining": "none"})),
                                 weight_decay=params.weight_decay, optimizer=params.optimizer, clip=params.clip,
                                 patience=params.patience, device=str(device), device_param="classify.device",
                                 seed=seed, checkpoint=str(checkpoint), verbose=True)
    pretrain_history: list[dict] = []
    if params.pretraining != "none" and parts["family"] != "rnn":
        log(f"classify: {spec}: classify.pretraining applies to the recurrent models only; this one starts from "
            "its embedding")
    elif params.pretraining != "none" and not checkpoint.exists():  # a resumed run has its pretrained weights
        train_seqs = [seqs[i] for i in train_idx]  # the training split's text only, never a test document
        pretrain_history = pretrain_encoder(model, train_seqs, params.pretraining, params.pretraining_epochs,
                                            train_config, max_len=params.pretraining_max_len,
                                            callbacks=[DVCLiveLogger(live, f"{spec} pretraining")])
    trainer = fit_classifier(model, train_config, [seqs[train_idx[i]] for i in fit], data.y[train_idx[fit]],
                             [seqs[train_idx[i]] for i in val], data.y[train_idx[val]], [DVCLiveLogger(live, spec)])
    seconds = time.perf_counter() - start
    saved = {"spec": spec, "words": words, "vocab_hash": words_hash, "labels": data.labels,
             "max_len": params.max_len, "truncation": params.truncation}
    if not dd.is_main():
        return None, model, saved
    test_idx = np.flatnonzero(data.test)
    out = predict(model, [seqs[i] for i in test_idx], device=str(device), with_states=True,
                  with_attention=model.attends)
    val_proba = predict(model, [seqs[train_idx[i]] for i in val], device=str(device))["proba"]
    checkpoint.unlink(missing_ok=True)
    extra = {"history": trainer.history_, "tokens_per_second": trainer.tokens_per_second_,
             "best_epoch": trainer.best_epoch_, "states": out["states"], "attention": out.get("attention"),
             "pretrain_history": pretrain_history}
    result = Result(spec, "neural", np.asarray(out["proba"]), seconds, extra, np.asarray(val_proba))
    result.info = {
        "validation_accuracy": round(validation_accuracy(result, data), 4), "epochs": trainer.best_epoch_,
        "trained_on": "train split minus its validation slice (epochs chosen on the slice by early stopping)",
        "transductive": parts["embedding"] != "random" and transductive(parts["embedding"], data),
        "representation_seconds": None if parts["embedding"] == "random" else representation_seconds(parts["embedding"]),
        "gradients": gradient_summary(trainer.grad_norms_, params.clip)}
    return result, model, saved


def pretrained_groups(embedding_init: bool, config, params: ClassifyParams) -> tuple:
    """The layers that start from knowledge learn at `pretrained_lr` times the rate, and not at all in the
    first `frozen_epochs` epochs (at most all but the last): the embedding when it starts from a method's vectors, and what
    pre-training trained (ULMFiT's discriminative rates and gradual unfreezing, in two steps: the layers
    above first, then everything). The output layer always learns at the full rate."""
    from nlpdag.training.schedule import ParamGroup

    prefixes = ["embedding."] if embedding_init or params.pretraining != "none" else []
    if params.pretraining == "autoencoder":
        prefixes += ["rnns.", "att_"]  # its document vector is the classifier's own pooling
    elif params.pretraining == "lm":  # a bidirectional stack pre-trains its first layer only (PretrainHead)
        prefixes += ["rnns.0." if config.directions > 1 else "rnns."]
    if params.pretrained_lr == 1.0 and params.frozen_epochs == 0:
        return ()
    frozen = min(params.frozen_epochs, params.epochs - 1)  # at least one epoch learns (epochs: 1 freezes nothing)
    return tuple(ParamGroup(p, params.pretrained_lr, frozen) for p in prefixes)


def gradient_summary(norms: list[float], clip: float) -> dict | None:
    """The global gradient norms of every step before clipping (backprop through time): how large they
    grew and how often `clip` cut them, the evidence for 'clipping tames exploding gradients'."""
    if not norms:
        return None
    norms_ = np.asarray(norms, dtype=np.float64)
    return {"steps": len(norms_), "median": round(float(np.median(norms_)), 4), "max": round(float(norms_.max()), 4),
            "clip": clip or None, "clipped_share": round(float((norms_ > clip).mean()), 4) if clip else None}
