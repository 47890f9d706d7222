"""How a stage or an `nlpdag` command fails: one line and exit code 2, never a traceback.

- `StageError`: bad input or parameters; its message names the file, column or parameter.
- Anything else (a library's own error, e.g. scikit-learn rejecting a solver, pandas a file) is
  reported as `error: <stage>: <input or parameter>: <library> <version> <type>: <its message>`.
  The input or parameter is the innermost `involving(...)` block the error passed through (reading
  a file through nlpdag.io.tables names the file). `NLPDAG_DEBUG=1` prints the traceback too, for bug reports.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import sys
import traceback
from typing import Callable, Iterator

EXIT_BAD_INPUT = 2
DEBUG_ENV = "NLPDAG_DEBUG"
_INVOLVING = "_nlpdag_involving"
_OWN_PACKAGES = {"nlpdag", "stages", "flows", "__main__", "tests"}


class StageError(Exception):
    """Bad input or parameters: the message names the file, column or parameter at fault."""


@contextlib.contextmanager
def involving(what: str) -> Iterator[None]:
    """Name the input or parameter a block works on, for an unexpected error raised inside it
    (the innermost block wins)."""
    try:
        yield
    except StageError:
        raise
    except Exception as exc:
        if not hasattr(exc, _INVOLVING):
            try:
                setattr(exc, _INVOLVING, what)
            except AttributeError:  # an exception type with __slots__
                pass
        raise


def _library(exc: BaseException) -> str:
    """`<distribution> <version>` of the library our code called when the exception arose: the
    outermost third-party frame below the innermost frame of our own; '' when there is none."""
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    owners = importlib.metadata.packages_distributions()
    called = ""
    for frame in reversed(frames):
        top = str(frame.f_globals.get("__name__", "")).partition(".")[0]
        if top in _OWN_PACKAGES:
            break
        if top in owners:
            called = owners[top][0]
    if not called:
        return ""
    try:
        return f"{called} {importlib.metadata.version(called)}"
    except importlib.metadata.PackageNotFoundError:
        return called


def describe(exc: BaseException) -> str:
    """One line for an unexpected exception: what it involved, which library raised it, its message."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    message = lines[0].strip() if lines else ""
    what = getattr(exc, _INVOLVING, "")
    origin = " ".join(part for part in (_library(exc), type(exc).__name__) if part)
    return ": ".join(part for part in (what, origin, message) if part)


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def report(name: str, func: Callable[[], object]) -> object:
    """Run `func`; a StageError or an unexpected exception becomes `error: ...` on stderr and exit 2."""
    try:
        return func()
    except StageError as exc:
        if debugging():
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - the point: no traceback reaches a user
        if debugging():
            traceback.print_exc()
            hint = ""
        else:
            hint = f" (set {DEBUG_ENV}=1 for the traceback)"
        print(f"error: {name}: {describe(exc)}{hint}", file=sys.stderr)
    restore_note()
    sys.exit(EXIT_BAD_INPUT)


def restore_note() -> None:
    """Under `dvc repro`, say how to get back the outputs DVC deleted before the failed stage ran
    (`nlpdag run` restores them itself and sets NLPDAG_RESTORES)."""
    stage = os.environ.get("DVC_STAGE", "")
    if stage and stage.rpartition(":")[2] != "check" and not os.environ.get("NLPDAG_RESTORES"):
        stage = stage.rpartition(":")[2]
        print(f"note: DVC removed {stage}'s outputs before running it; `dvc checkout --force {stage}` brings the last "
              f"ones back from its cache, without retraining (`dvc status` still shows {stage} stale)", file=sys.stderr)


def cli_main(func: Callable[[], None]) -> Callable[[], None]:
    """Wrap a stage's `main` with `report`, naming the stage after its module (stages.bow -> bow)."""
    @functools.wraps(func)
    def wrapper() -> None:
        # run as `python -m stages.bow`, the module is __main__ and its spec holds the real name
        spec = func.__globals__.get("__spec__")
        report((spec.name if spec else func.__module__).rpartition(".")[2], func)

    return wrapper
