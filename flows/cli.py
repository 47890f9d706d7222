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
    wait: float = typer.Option(3600, min=0, help="Seconds to wait for another nlpdag run in this workspace."),
) -> None:
    """Run the whole pipeline through Prefect (DVC skips what is up to date)."""
    from flows.dag import Plan, PipelineError, find_root
    from flows.lock import LockTimeout, RunLock

    start = time.perf_counter()
    try:
        root = find_root(repo)
        lock = RunLock(root, timeout=wait)
        lock.acquire()  # before DVC's queries: a run in progress would make them stale or "busy"
    except (PipelineError, LockTimeout) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    plan = Plan(root)  # DVC's queries run while Prefect imports and starts
    _quiet_prefect(root)
    from flows.server import prefect_home, recorded

    if "PREFECT_API_URL" not in os.environ and (server := recorded(prefect_home(root))):
        # The checkout's own server (`nlpdag serve`): no temporary one on the same database.
        os.environ["PREFECT_API_URL"] = server.api_url
    from flows.pipeline import pipeline

    try:
        state = pipeline(repo=str(root), retries=retries, plan=plan, return_state=True)
    finally:
        lock.release()
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


@app.command()
def predict(
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to classify."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="A file with one text per line."),
    model: Optional[str] = typer.Option(None, help="A trained classifier (default: the best neural model "
                                                   "of the last run; see data/models/classify/)."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
) -> None:
    """Label texts with a classifier the `classify` stage trained, with the probability of each label."""
    from flows.dag import PipelineError, find_root
    from stages.errors import StageError
    from stages.predict import load_classifier, predict_texts

    try:
        root = find_root(repo)
        items = list(texts or [])
        if file is not None:
            if not file.is_file():
                raise StageError(f"{file}: file not found")
            items += [line.rstrip("\n") for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not items:
            raise StageError("nothing to classify: give texts as arguments or --file")
        clf = load_classifier(model, root)
        frame = predict_texts(clf, items)
    except (PipelineError, StageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(f"# model: {clf.name}")
    probs = [c for c in frame.columns if c.startswith("p_")]
    for row in frame.to_dict("records"):
        dist = "  ".join(f"{c[2:]}={row[c]:.3f}" for c in probs)
        text = " ".join(row["text"].split())
        snippet = text if len(text) <= 60 else text[:57] + "..."
        typer.echo(f"{row['label']}\t{row['confidence']:.3f}\t{dist}\t{snippet}")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _root(repo: Optional[Path]) -> Path:
    from flows.dag import PipelineError, find_root

    try:
        return find_root(repo)
    except PipelineError as exc:
        _fail(str(exc))


@app.command()
def compare(
    revs: Optional[list[str]] = typer.Argument(None, help="Git revisions or experiment names (default: the "
                                                          "experiments `dvc exp show` lists), or `workspace`."),
    all_experiments: bool = typer.Option(False, "--all-experiments",
                                         help="Experiments of every commit, not only HEAD's."),
    metric: Optional[list[str]] = typer.Option(None, help='Extra columns: metrics matching a glob over '
                                                          '"<file stem>.<path>", e.g. "embeddings.glove.*".'),
    html: Optional[Path] = typer.Option(None, help="Where to write the HTML table (default: reports/compare.html)."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
) -> None:
    """Compare experiments or revisions: key metrics side by side, best per column marked."""
    import shutil

    from flows.compare import CompareError, build_table, collect, render_text, write_html
    from flows.dag import PipelineError

    root = _root(repo)
    try:
        table = build_table(collect(root, revs or [], all_experiments), metric or [])
    except (CompareError, PipelineError) as exc:
        _fail(str(exc))
    typer.echo(render_text(table, shutil.get_terminal_size((120, 24)).columns))
    path = write_html(root, table, html)
    typer.echo(f"nlpdag: {len(table.versions)} versions, {len(table.columns)} columns -> {path}", err=True)


@app.command()
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
    from flows.server import ServerError, plan, start

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


def _sweep_server(root: Path) -> str:
    """The API URL workers and `nlpdag sweep` share: PREFECT_API_URL, else the checkout's own server."""
    from flows.server import healthy, plan

    _quiet_prefect(root)
    server = plan(root)
    if not server.external and not server.pid:
        _fail("no Prefect server: set PREFECT_API_URL to the one your workers poll, "
              "or start one with `nlpdag server start`")
    if not healthy(server.api_url):
        _fail(f"no Prefect server answers at {server.api_url} (is it running? is PREFECT_API_URL right?)")
    os.environ["PREFECT_API_URL"] = server.api_url  # before Prefect's first import
    return server.api_url


@app.command()
def sweep(
    set_param: Optional[list[str]] = typer.Option(None, "--set-param", "-S",
                                                  help="A swept parameter: key=v1,v2 (as `dvc exp run -S`); repeat."),
    grid_file: Optional[Path] = typer.Option(None, "--grid", help="Or a YAML file: {key: [values]}."),
    target: Optional[list[str]] = typer.Option(None, "--target", "-t",
                                               help="Run each point only up to this stage (repeat; default: all)."),
    pool: str = typer.Option("nlpdag", help="The Prefect work pool the workers poll."),
    git_remote: str = typer.Option("origin", help="The git remote workers clone from and push experiments to."),
    worker_check: bool = typer.Option(True, "--worker-check/--no-worker-check",
                                      help="Refuse to submit when no worker polls the pool."),
    wait: bool = typer.Option(False, "--wait", help="Wait for every point and print their states."),
    timeout: float = typer.Option(6 * 3600, min=1, help="With --wait: give up after so many seconds."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
) -> None:
    """Submit one Prefect flow run per grid point; workers run each as a DVC experiment and push it."""
    from flows.grid import GridError, grid_points, load_grid_file, parse_set_options
    from flows.submit import SweepError, check_repo, experiment_prefix

    root = _root(repo)
    try:
        grid = parse_set_options(set_param or [])
        if grid_file is not None:
            for key, values in load_grid_file(grid_file).items():
                if key in grid:
                    raise GridError(f"{key}: in both --grid and -S")
                grid[key] = values
        if not grid:
            raise GridError("nothing to sweep: give -S key=v1,v2 or --grid FILE")
        points = grid_points(grid)
        dest = check_repo(root, git_remote, points, target or [])
    except (GridError, SweepError) as exc:
        _fail(str(exc))
    url = _sweep_server(root)
    from prefect.client.orchestration import get_client

    from flows import submit as sub

    with get_client(sync_client=True) as client:
        workers = sub.online_workers(client, pool)
        if worker_check and not workers:
            _fail(f"no worker is polling work pool {pool} at {url}: start one with `nlpdag worker --pool {pool}` "
                  "(or pass --no-worker-check to queue the points anyway)")
        sub.ensure_pool(client, pool)
        deployment_id = sub.ensure_deployment(client, pool)
        prefix = experiment_prefix()
        runs = sub.submit(client, deployment_id, dest, prefix, points, target or [])
        typer.echo(f"nlpdag: {len(runs)} points of commit {dest.rev[:10]} submitted to pool {pool} "
                   f"({len(workers)} worker(s) online); experiments {prefix}-NN", err=True)
        typer.echo(sub.table(runs))
        if not wait:
            typer.echo(f"nlpdag: then `dvc exp pull {git_remote} <names>` and `dvc exp show`", err=True)
            return
        ok = sub.wait(client, runs, timeout, say=lambda line: typer.echo(f"nlpdag: {line}", err=True))
    typer.echo(sub.table(runs))
    if not ok:
        _fail(f"{sum(r.state != 'COMPLETED' for r in runs)} of {len(runs)} points did not complete", 1)
    typer.echo(f"nlpdag: all points done: `dvc exp pull {git_remote} {' '.join(r.name for r in runs)}`", err=True)


@app.command()
def worker(
    pool: str = typer.Option("nlpdag", help="The work pool to poll."),
    limit: int = typer.Option(1, min=1, help="Points run at once by this worker."),
    name: Optional[str] = typer.Option(None, help="The worker's name (default: Prefect's)."),
    repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout (for its PREFECT_HOME and server)."),
) -> None:
    """`prefect worker start --pool nlpdag --type process`; on SIGTERM/Ctrl-C its running points go back
    to the pool for another worker."""
    root = _root(repo)
    _sweep_server(root)
    # The deployment's command is `prefect flow-run execute`: this venv's, whatever the PATH.
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    exe = Path(sys.executable).with_name("prefect")
    args = [str(exe) if exe.exists() else "prefect", "worker", "start", "--pool", pool, "--type", "process",
            "--limit", str(limit)] + (["--name", name] if name else [])
    from flows.worker import supervise

    raise typer.Exit(supervise(args, dict(os.environ)))


server_app = typer.Typer(no_args_is_help=True, help="The local Prefect server that scheduled runs need.")
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start(repo: Optional[Path] = typer.Option(None, help="The nlpdag checkout."),
                 port: Optional[int] = typer.Option(None, help="Port (default 4200, else a free one).")) -> None:
    """Start (or find) the checkout's Prefect server; prints its API URL."""
    from flows.server import ServerError, plan, start

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
    from flows.server import healthy, plan

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
    from flows.server import stop

    root = _root(repo)
    _quiet_prefect(root)
    server = stop(root)
    typer.echo(f"nlpdag: stopped {server.describe()}" if server else "nlpdag: no server was started here",
               err=True)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
