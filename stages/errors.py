"""The one error type a stage reports as a single line (and a non-zero exit) instead of a traceback."""
from __future__ import annotations

import functools
import sys
from typing import Callable


class StageError(Exception):
    """Bad input or parameters: the message names the file, column or parameter at fault."""


EXIT_BAD_INPUT = 2


def cli_main(func: Callable[[], None]) -> Callable[[], None]:
    """Wrap a stage's `main`: a StageError becomes `error: <message>` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper() -> None:
        try:
            func()
        except StageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper
