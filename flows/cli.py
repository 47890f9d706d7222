"""The `nlpdag` command line."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="nlpdag: a DVC + Prefect pipeline of classic NLP representations.")


def _quiet_prefect(root: Path) -> None:
    """Offline defaults, set before Prefect is imported; a user's own settings win."""
    os.environ.setdefault("PREFECT_HOME", str(root / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY", "false")
    os.environ.setdefault("PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # A fresh SQLite database takes ~10-20 s to migrate on 2 cores; Prefect's default waits 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")


@app.command()
def run(
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout (default: found from the working directory)."),
    retries: int = typer.Option(1, min=0, help="Retries of a failed stage."),
) -> None:
    """Run the whole pipeline through Prefect (DVC skips what is up to date)."""
    from flows.dag import Plan, PipelineError, find_root

    start = time.perf_counter()
    try:
        root = find_root(repo)
    except PipelineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    plan = Plan(root)  # DVC's queries run while Prefect imports and starts
    _quiet_prefect(root)
    from flows.pipeline import pipeline

    state = pipeline(repo=str(root), retries=retries, plan=plan, return_state=True)
    if not state.is_completed():
        try:
            state.result()
        except Exception as exc:  # the failing stage's message, on one line
            message = str(exc.args[0]) if exc.args else repr(exc)
            lines = message.splitlines() or [repr(exc)]
            typer.echo(f"error: {lines[-1].removeprefix('error: ')}", err=True)
        raise typer.Exit(1)
    results = state.result()
    ran = [s for s, r in results.items() if r == "ran"]
    typer.echo(f"nlpdag: {len(results)} stages, ran {', '.join(ran) if ran else 'none'} "
               f"in {time.perf_counter() - start:.1f} s")


@app.command()
def dag(repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout.")) -> None:
    """Print the stages in the order the flow runs them, with their upstream stages."""
    from flows.dag import PipelineError, find_root, stage_graph, stage_order

    try:
        root = find_root(repo)
        graph = stage_graph(root)
    except PipelineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    for stage in stage_order(graph):
        ups = ", ".join(sorted(graph[stage]))
        typer.echo(f"{stage}" + (f"  <- {ups}" if ups else ""))


@app.command()
def similar(
    word: str = typer.Argument(..., help="The word to look up (unseen words work with --method fasttext)."),
    method: str = typer.Option("fasttext", help="An embedding method: w2v_cbow, w2v_skipgram, glove, fasttext, "
                                                "d2v_dm, d2v_dbow or pretrained."),
    top: int = typer.Option(10, min=1, help="How many neighbours."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
) -> None:
    """Print the nearest neighbours of a word in a trained embedding."""
    from flows.dag import PipelineError, find_root
    from stages.errors import StageError
    from stages.evaluate import METHODS, load_method

    try:
        root = find_root(repo)
        if method not in METHODS:
            raise StageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if method == "fasttext":  # the full model: vectors for unseen words from their character n-grams
            from stages.fasttext import load_model

            kv = load_model(root / "data/models/fasttext").wv
        else:
            kv = load_method(method, root / "data/embeddings")
            if kv is None:
                raise StageError(f"{method}: no vectors (set pretrained.path and run dvc repro)")
            if word not in kv.key_to_index:
                raise StageError(f"{word!r} is not in the {method} vocabulary (try --method fasttext)")
    except (PipelineError, StageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    seen = "" if word in kv.key_to_index else "  (unseen word: vector from its character n-grams)"
    typer.echo(f"{word} [{method}]{seen}")
    for neighbour, score in kv.most_similar(word, topn=top):
        typer.echo(f"  {score:.3f}  {neighbour}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
