"""The `ensemble` row of `classify` (its members: info["ensemble"]["members"]): representations combined
(Mesnil et al. 2014, who reached 92.57% on IMDB from NBSVM, paragraph vectors and an RNN language model
this way).

Each member's class log-odds on the validation slice (log p_c - log p_0) are the features of a
logistic regression fitted on the validation slice only; its C is chosen by stratified k-fold
cross-validation within the slice, so nothing of the test split - texts or labels - takes part, and the
test rows are scored once, with the members' test log-odds. `drop_one` refits without each member in
turn and reports the cross-validated accuracy it loses: how much each member adds, on validation.

The members' validation predictions are honest held-out ones (the baselines' come from the fit on the
training split minus the slice; a neural model's early stopping did watch the slice's loss, so it looks
slightly better there than it is), and their test predictions come from the same models (`member_test_proba`:
a baseline's own row uses its refit on the whole training split instead, whose margins differ in scale).
`best_neural` stands for the neural model chosen on the validation slice, as elsewhere.
`nlpdag predict` serves the row from the saved stack (`LogOddsStack.save`) and the members' saved models,
each the very model whose log-odds the weights were fitted on (nlpdag/classify/serving.py).
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from nlpdag.classify.dataset import Dataset, Result
from nlpdag.evaluation.rows import chosen_on_validation
from nlpdag.names import ENSEMBLE
from nlpdag.errors import StageError
from nlpdag.models.linear_state import load_state, logreg_from_state, logreg_state, save_state

BEST_NEURAL = "best_neural"
EPS = 1e-6


def log_odds(proba: np.ndarray) -> np.ndarray:
    """(N, k) probabilities -> (N, k - 1) log-odds of each class against the first."""
    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), EPS, 1.0))
    return logp[:, 1:] - logp[:, :1]


def features(probas: list[np.ndarray]) -> np.ndarray:
    return np.hstack([log_odds(p) for p in probas])


class LogOddsStack:
    """A logistic regression over members' log-odds; `fit` chooses C by `folds`-fold CV (ties: the
    smaller C) and refits on every row. Learned: `C_`, `cv_accuracy_` {C: accuracy}, `oof_proba_`
    (each row predicted by the fold that did not see it, at the chosen C), `model_`."""

    def __init__(self, Cs: list[float], folds: int = 5, seed: int = 0):
        self.Cs, self.folds, self.seed = sorted(Cs), folds, seed

    def _fit(self, X: np.ndarray, y: np.ndarray, C: float) -> LogisticRegression:
        return LogisticRegression(C=C, max_iter=2000).fit(X, y)

    def fit(self, probas: list[np.ndarray], y: np.ndarray) -> "LogOddsStack":
        X, y = features(probas), np.asarray(y)
        folds = min(self.folds, int(np.bincount(y).min()))
        if folds < 2 or len(np.unique(y)) < 2:
            raise StageError("classify.ensemble: the validation slice needs two examples of every class or more "
                             "(data.val_fraction)")
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=self.seed).split(X, y))
        oof = {}
        for C in self.Cs:
            oof[C] = np.zeros((len(y), len(np.unique(y))))
            for fit_rows, held in splits:
                oof[C][held] = self._fit(X[fit_rows], y[fit_rows], C).predict_proba(X[held])
        self.cv_accuracy_ = {C: float(np.mean(oof[C].argmax(1) == y)) for C in self.Cs}
        self.C_ = max(self.Cs, key=lambda C: (self.cv_accuracy_[C], -C))
        self.oof_proba_ = oof[self.C_]
        self.model_ = self._fit(X, y, self.C_)
        return self

    @property
    def accuracy_(self) -> float:
        return self.cv_accuracy_[self.C_]

    def predict_proba(self, probas: list[np.ndarray]) -> np.ndarray:
        return self.model_.predict_proba(features(probas))

    def save(self, folder) -> None:
        """The fitted logistic regression's weights (what predicting needs) and the chosen C."""
        save_state(folder, "log_odds_stack", {"Cs": self.Cs, "folds": self.folds, "seed": self.seed,
                                              "C_": self.C_, "cv_accuracy_": {f"{c:g}": v for c, v in self.cv_accuracy_.items()}},
                   logreg_state(self.model_))

    @classmethod
    def load(cls, folder) -> "LogOddsStack":
        kind, params, arrays = load_state(folder)
        if kind != "log_odds_stack":
            raise StageError(f"{folder}: holds a {kind}, not an ensemble's stack")
        stack = cls(params["Cs"], params["folds"], params["seed"])
        stack.C_ = params["C_"]
        stack.cv_accuracy_ = {float(c): v for c, v in params["cv_accuracy_"].items()}
        stack.model_ = logreg_from_state(arrays, C=stack.C_, max_iter=2000)
        return stack


def resolve_members(members: list[str], results: list[Result], best_neural: str | None) -> list[Result]:
    """The rows named by `classify.ensemble` (`best_neural`: the neural model chosen on validation).
    `check_members` vetted the names before anything trained; what is left to catch here is a row the
    run skipped (e.g. `mean@pretrained` without vectors) and `best_neural` naming a listed member."""
    by_name = {r.name: r for r in results}
    out = []
    for name in members:
        name = (best_neural or name) if name == BEST_NEURAL else name
        if name not in by_name:
            raise StageError(f"params.yaml: classify.ensemble: {name!r} is not a row of this run; rows: "
                             f"{', '.join(sorted(by_name))}")
        if by_name[name] in out:
            raise StageError(f"params.yaml: classify.ensemble: {name!r} is listed twice (best_neural is {name})")
        out.append(by_name[name])
    return out


def member_test_proba(member: Result) -> np.ndarray:
    """A member's test predictions from the very model whose validation predictions fitted the weights:
    a baseline's fit on the training split minus the slice (not its refit on all of it); a neural
    model trains on that part anyway."""
    return member.extra.get("fit_part_proba", member.proba)


def fit_ensemble(members: list[Result], data: Dataset, Cs: list[float], seed: int = 0) -> Result:
    """The ensemble's row: fitted on the validation slice's labels only (`data.y[data.validation]`)."""
    y_val = data.y[data.validation]
    stack = LogOddsStack(Cs, seed=seed).fit([m.val_proba for m in members], y_val)
    proba = stack.predict_proba([member_test_proba(m) for m in members])
    drop_one = {}
    for k, member in enumerate(members):
        rest = [m.val_proba for j, m in enumerate(members) if j != k]
        drop_one[member.name] = round(stack.accuracy_ - LogOddsStack(Cs, seed=seed).fit(rest, y_val).accuracy_, 4)
    coef = stack.model_.coef_  # (1 or k, members x (k - 1))
    k1 = len(data.labels) - 1
    weights = {m.name: [round(float(w), 4) for w in coef[:, j * k1:(j + 1) * k1].ravel()] for j, m in enumerate(members)}
    info = {"C": stack.C_, "validation_accuracy": round(stack.accuracy_, 4),
            "trained_on": "validation slice (the members' log-odds, each from its fit on the training split minus "
                          "the slice; C by 5-fold cross-validation within it)",
            "transductive": any(m.info.get("transductive", False) for m in members),
            "ensemble": {"members": [m.name for m in members], "weights": weights,
                         "intercept": [round(float(b), 4) for b in stack.model_.intercept_],
                         "validation_accuracy_by_C": {f"{c:g}": round(v, 4) for c, v in stack.cv_accuracy_.items()},
                         "drop_one": drop_one}}
    seconds = sum(m.seconds for m in members)
    return Result(ENSEMBLE, "ensemble", proba, seconds, extra={"stack": stack}, val_proba=stack.oof_proba_, info=info)


def expected_rows(baselines: list[str], baseline_methods: list[str], models: list[str],
                  nb_docvec: list[str] = ()) -> set[str]:
    """The row names `classify` will make from its params (for checking `classify.ensemble` early)."""
    rows = {b for b in baselines if b in ("tfidf_logreg", "nb_logreg", "nbsvm")}
    for kind in ("mean", "idf_mean"):
        if kind in baselines:
            rows |= {f"{kind}@{m}" for m in baseline_methods}
    if "docvec" in baselines:
        rows |= {"docvec@doc2vec_dm", "docvec@doc2vec_dbow", "docvec@doc2vec_dm+doc2vec_dbow", "docvec@doc2vec_ngram"}
    if "nb_docvec" in baselines:
        rows |= {f"nb_docvec@{m}" for m in nb_docvec}
    return rows | set(models) | ({BEST_NEURAL} if models else set())


def check_members(members: list[str], baselines: list[str], baseline_methods: list[str], models: list[str],
                  nb_docvec: list[str] = ()) -> None:
    rows = expected_rows(baselines, baseline_methods, models, nb_docvec)
    for name in members:
        if name not in rows:
            raise StageError(f"params.yaml: classify.ensemble: {name!r} is not a row of this run; choose from "
                             f"{', '.join(sorted(rows))}")
        if name == "tfidf_logreg":
            raise StageError("params.yaml: classify.ensemble: tfidf_logreg has no validation predictions "
                             "(it comes fitted from the bow stage); use nb_logreg or nbsvm")


def ensemble_row(results: list[Result], data: Dataset, members: list[str], Cs: list[float], seed: int = 0) -> Result:
    """The `ensemble` row over the finished rows of `results`."""
    chosen = chosen_on_validation([r for r in results if r.kind == "neural"], data)
    return fit_ensemble(resolve_members(members, results, chosen and chosen.name), data, Cs, seed)
