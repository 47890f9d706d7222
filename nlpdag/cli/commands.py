"""The `nlpdag` command line."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from nlpdag.cli import sweep as cli_sweep
from nlpdag.cli.util import fail as _fail
from nlpdag.cli.util import find_checkout as _root
from nlpdag.cli.util import quiet_prefect as _quiet_prefect

commands = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="nlpdag: a DVC + Prefect pipeline of classic NLP representations.")


@commands.command()
def run(
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout (default: found from the working directory)."),
    retries: int = typer.Option(1, min=0, help="Retries of a stage killed from outside (memory, a signal); a stage's own error is never retried."),
    wait: float = typer.Option(3600, min=0, help="Seconds to wait for another nlpdag run in this workspace."),
    jobs: str = typer.Option("1", "--jobs", "-j", help="Stages at once: a number, or auto (as many as the cores "
                                                        "admit; each stage holds its threads' share of them)."),
    force: bool = typer.Option(False, help="Run every stage again, even those DVC has cached (dvc repro --force)."),
    pool: Optional[str] = typer.Option(None, help="Send each ready stage to the Prefect workers of this work pool "
                                                  "(README: a run across machines)."),
    git_remote: str = typer.Option("origin", help="With --pool: the git remote workers clone from."),
    send: Optional[list[str]] = typer.Option(None, help="With --pool: the stages to send, as patterns (repeat: "
                                                        "--send 'neural@*' --send glove); the others run here. "
                                                        "Default: all."),
) -> None:
    """Run the whole pipeline through Prefect (DVC skips what is up to date)."""
    from nlpdag.runs.dag import Plan, PipelineError, find_root
    from nlpdag.runs.lock import LockTimeout, RunLock

    from nlpdag.config.base import PARAMS_FILE
    from nlpdag.config.params import load_params
    from nlpdag.errors import StageError

    start = time.perf_counter()
    try:
        workers = parse_jobs(jobs)
        root = find_root(repo)
        load_params(root / PARAMS_FILE)  # all of it, before anything runs (the `check` stage again, in-process)
        lock = RunLock(root, timeout=wait)
        lock.acquire()  # before DVC's queries: a run in progress would make them stale or "busy"
    except (PipelineError, LockTimeout, StageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    plan = Plan(root)  # DVC's queries run while Prefect imports and starts
    _quiet_prefect(root)
    from nlpdag.runs.server import prefect_home, recorded

    if "PREFECT_API_URL" not in os.environ and (server := recorded(prefect_home(root))):
        # The checkout's own server (`nlpdag serve`): no temporary one on the same database.
        os.environ["PREFECT_API_URL"] = server.api_url
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.pipeline import pipeline

    try:
        prepared = None
        if pool is not None:
            from flows.stage import stage_run
            from nlpdag.runs.remote import prepare_pool

            try:
                prepared = prepare_pool(root, pool, stage_run, git_remote, send)
            except PipelineError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2)
        # auto: a thread per stage, so every ready stage waits for its cores inside Prefect's concurrency limit
        runner = ThreadPoolTaskRunner(max_workers=workers or 256)
        state = pipeline.with_options(task_runner=runner)(repo=str(root), retries=retries, plan=plan,
                                                          jobs=workers or 0, force=force, pool=prepared,
                                                          return_state=True)
    finally:
        lock.release()
    if not state.is_completed():  # the flow's one line (flows/pipeline.py `failed`); no traceback
        data = state.result(raise_on_failure=False)
        user_error = isinstance(data, dict) and data.get("user_error", False)
        lines = (state.message or "").splitlines() or ["the pipeline failed"]
        typer.echo(f"error: {lines[-1].removeprefix('error: ')}", err=True)
        raise typer.Exit(2 if user_error else 1)
    results = state.result()
    facts = results.pop("_run")
    ran = [s for s, r in results.items() if r == "ran"]
    restored = [s for s, r in results.items() if r == "restored"]
    typer.echo(f"nlpdag: {len(results)} stages, ran {', '.join(ran) if ran else 'none'}"
               + (f", restored {', '.join(restored)} from the run cache" if restored else "")
               + f" in {time.perf_counter() - start:.1f} s")
    if ran:
        ratio = facts["wall_over_bound"]
        typer.echo(f"timeline: reports/timeline.html; stages {facts['wall_seconds']:.0f} s against a bound of "
                   f"{facts['bound_seconds']:.0f} s (critical path {facts['critical_path_seconds']:.0f} s, CPU "
                   f"{facts['cpu_seconds']:.0f} s / {facts['cores']} cores)"
                   + (f", {ratio:.2f}x the bound" if ratio else ""))


def parse_jobs(value: str) -> int | None:
    """--jobs: a whole number >= 1, or auto (None)."""
    from nlpdag.errors import StageError

    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise StageError(f"--jobs {value}: expected a whole number >= 1 or auto")
    return int(value)



@commands.command()
def dag(repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout.")) -> None:
    """Print the stages in the order the flow runs them, with their upstream stages."""
    from nlpdag.runs.dag import PipelineError, find_root, stage_graph, stage_order

    try:
        root = find_root(repo)
        graph = stage_graph(root)
    except PipelineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    for stage in stage_order(graph):
        ups = ", ".join(sorted(graph[stage]))
        typer.echo(f"{stage}" + (f"  <- {ups}" if ups else ""))


@commands.command()
def similar(
    word: str = typer.Argument(..., help="The word to look up (unseen words work with --method fasttext)."),
    method: str = typer.Option("fasttext", help="An embedding method: word2vec_cbow, word2vec_skipgram, glove, fasttext, "
                                                "doc2vec_dm, doc2vec_dbow or pretrained."),
    top: int = typer.Option(10, min=1, help="How many neighbours."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
) -> None:
    """Print the nearest neighbours of a word in a trained embedding."""
    from nlpdag.runs.dag import PipelineError, find_root
    from nlpdag.errors import StageError
    from nlpdag.embeddings.evaluate import METHODS, load_method

    try:
        root = find_root(repo)
        if method not in METHODS:
            raise StageError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if method == "fasttext":  # the full model: vectors for unseen words from their character n-grams
            from nlpdag.catalog.embeddings import FASTTEXT_MODEL
            from nlpdag.io.native import load_fasttext

            kv = load_fasttext(root / FASTTEXT_MODEL).wv
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


@commands.command()
def predict(
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to classify."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="A file with one text per line."),
    model: Optional[str] = typer.Option(None, help="Any saved row of the classifier table (nbsvm, mean@glove, "
                                                   "ensemble, a neural spec or its key in classify.models; default: "
                                                   "the row most accurate on the validation slice)."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
) -> None:
    """Label texts with a saved classifier, with the probability of each label (tab-separated)."""
    from nlpdag.runs.dag import PipelineError, find_root
    from nlpdag.errors import StageError
    from nlpdag.classify.predict import load_classifier, predict_texts

    try:
        root = find_root(repo)
        items = list(texts or [])
        if file is not None:
            if not file.is_file():
                raise StageError(f"{file}: file not found")
            items += [line for line in read_text_file(file).splitlines() if line.strip()]
        if not items:
            raise StageError("nothing to classify: give texts as arguments or --file")
        clf = load_classifier(model, root)
        frame = predict_texts(clf, items)
    except (PipelineError, StageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    accuracy = "" if clf.validation_accuracy is None else f" (validation accuracy {clf.validation_accuracy:.2f})"
    typer.echo(f"# model: {clf.name}{accuracy}")
    if clf.served.get("near_chance"):
        typer.echo(f"warning: {clf.name} is near chance on the validation slice ({clf.served['validation_accuracy']:.2f} "
                   f"vs {clf.served['majority_share']:.2f} for always answering the most frequent label): "
                   "treat its labels with care", err=True)
    labels = clf.labels
    typer.echo("\t".join(["label", "confidence", *(f"p_{label}" for label in labels), "text"]))
    for row in frame.to_dict("records"):
        text = " ".join(row["text"].split())
        snippet = text if len(text) <= 60 else text[:57] + "..."
        typer.echo("\t".join([str(row["label"]), f"{row['confidence']:.3f}",
                               *(f"{row[f'p_{label}']:.3f}" for label in labels), snippet]))


@commands.command()
def compare(
    revs: Optional[list[str]] = typer.Argument(None, help="Git revisions or experiment names (default: the "
                                                          "experiments `dvc exp show` lists), or `workspace`."),
    all_experiments: bool = typer.Option(False, "--all-experiments",
                                         help="Experiments of every commit, not only HEAD's."),
    metric: Optional[list[str]] = typer.Option(None, help='Columns to show even when unchanged: metrics matching a '
                                                          'glob over "<file stem>.<path>", e.g. "embeddings.glove.*".'),
    everything: bool = typer.Option(False, "--all", help="Every metric, changed or not (seconds included)."),
    html: Optional[Path] = typer.Option(None, help="Where to write the HTML table (default: reports/compare.html)."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
) -> None:
    """Compare experiments or revisions: the params and metrics that differ, side by side, best marked."""
    import shutil

    from nlpdag.runs.compare import CompareError, build_table, collect, render_text, write_html
    from nlpdag.runs.dag import PipelineError

    root = _root(repo)
    try:
        table = build_table(collect(root, revs or [], all_experiments), metric or [], everything)
    except (CompareError, PipelineError) as exc:
        _fail(str(exc))
    typer.echo(render_text(table, shutil.get_terminal_size((120, 24)).columns))
    path = write_html(root, table, html)
    typer.echo(f"nlpdag: {len(table.versions)} versions, {len(table.columns)} columns -> {path}", err=True)


@commands.command()
def serve(
    cron: Optional[str] = typer.Option(None, help='A cron schedule, e.g. "*/30 * * * *" (every 30 minutes).'),
    interval: Optional[float] = typer.Option(None, min=1, help="Or: run every so many seconds."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
    name: str = typer.Option("nlpdag-scheduled", help="The Prefect deployment name."),
    prefix: str = typer.Option("scheduled", help="Experiment names: <prefix>-<UTC time>."),
    port: Optional[int] = typer.Option(None, help="Port of the local Prefect server (default 4200, else a free one)."),
) -> None:
    """Retrain on a schedule: each run is a DVC experiment (`dvc exp show`), served by Prefect."""
    root = _root(repo)
    if (cron is None) == (interval is None):
        _fail("give exactly one of --cron or --interval")
    if prefix != prefix.strip() or not prefix or any(c in prefix for c in " ~^:?*[\\/"):
        _fail(f"--prefix {prefix!r}: not usable in a git ref name")
    _quiet_prefect(root)
    from nlpdag.runs.server import ServerError, plan, start

    server = plan(root, port)
    os.environ["PREFECT_API_URL"] = server.api_url  # before Prefect's first import: it reads settings once
    if cron is not None:
        from pydantic import ValidationError
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=cron)
        except ValidationError:
            _fail(f"--cron {cron!r}: not a valid cron expression (e.g. \"*/30 * * * *\")")
    try:
        server = start(root, server)
    except ServerError as exc:
        _fail(str(exc), 1)
    typer.echo(f"nlpdag: {'started' if server.started else 'using'} {server.describe()}"
               + ("; stop it with `nlpdag server stop`" if server.started else ""), err=True)
    from flows.serve import serve as serve_flow

    serve_flow(root, name, cron=cron, interval=interval, prefix=prefix)


for command in (cli_sweep.sweep, cli_sweep.resubmit, cli_sweep.worker):
    commands.command()(command)

server_app = typer.Typer(no_args_is_help=True, help="The local Prefect server that scheduled runs need.")
commands.add_typer(server_app, name="server")


@server_app.command("start")
def server_start(repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
                 port: Optional[int] = typer.Option(None, help="Port (default 4200, else a free one).")) -> None:
    """Start (or find) the checkout's Prefect server; prints its API URL."""
    from nlpdag.runs.server import ServerError, plan, start

    root = _root(repo)
    _quiet_prefect(root)
    try:
        server = start(root, plan(root, port))
    except ServerError as exc:
        _fail(str(exc), 1)
    typer.echo(f"nlpdag: {'started' if server.started else 'already running:'} {server.describe()}", err=True)
    typer.echo(server.api_url)


@server_app.command("status")
def server_status(repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout.")) -> None:
    """Say whether the server scheduled runs would use answers (exit 1 if not)."""
    from nlpdag.runs.server import healthy, plan

    root = _root(repo)
    _quiet_prefect(root)
    server = plan(root)
    if not healthy(server.api_url):
        typer.echo(f"nlpdag: no Prefect server answers at {server.api_url}", err=True)
        raise typer.Exit(1)
    typer.echo(f"nlpdag: {server.describe()} answers")


@server_app.command("stop")
def server_stop(repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout.")) -> None:
    """Stop the Prefect server this checkout started."""
    from nlpdag.runs.server import stop

    root = _root(repo)
    _quiet_prefect(root)
    server = stop(root)
    typer.echo(f"nlpdag: stopped {server.describe()}" if server else "nlpdag: no server was started here",
               err=True)


def read_text_file(path: Path) -> str:
    """A UTF-8 text file (a BOM is dropped); other bytes name the file, the byte and its line."""
    from nlpdag.errors import StageError

    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise StageError(f"{path}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}, line {line}: "
                         f"{exc.reason}); convert it first, e.g. iconv -f latin1 -t utf-8") from None


def app() -> None:
    """The `nlpdag` entry point: an unexpected error from any command is one line and exit 2
    (nlpdag.errors.report), its traceback only with NLPDAG_DEBUG=1."""
    from nlpdag.errors import report

    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "")
    report(f"nlpdag {command}".strip(), lambda: commands(prog_name="nlpdag"))


if __name__ == "__main__":  # pragma: no cover
    app()
