"""One pipeline run at a time per workspace: a file lock that waits, saying what it waits for.

DVC refuses a second `dvc repro` in the same workspace at once ("... is busy, it is being blocked
by (PID ...)"), and `--wait-for-lock` covers only its repo lock, not the per-output lock held while
stages run. So `nlpdag run` (and scheduled runs, among themselves) serialise here first.
"""
from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

LOCK_DIR = ".nlpdag"


class LockTimeout(RuntimeError):
    """The lock stayed held for the whole wait; the message names the holder."""


def holder_text(info: dict | None) -> str:
    """Who holds the lock, from the holder file; '' when unknown."""
    if not info:
        return ""
    since = info.get("since", "")
    return f"PID {info.get('pid', '?')}: {info.get('cmd', '?')}" + (f", since {since}" if since else "")


class RunLock:
    """`with RunLock(root):` holds `<root>/.nlpdag/<name>.lock` for the block.

    The holder's PID and command go to `<name>.lock.json` beside it, so a waiter can say whom it
    waits for. The lock itself is an OS lock (flock): it dies with its process, never goes stale."""

    def __init__(self, root: Path, name: str = "run", timeout: float = 3600, poll: float = 30,
                 say: Callable[[str], None] | None = None):
        self.dir = Path(root) / LOCK_DIR
        self.path = self.dir / f"{name}.lock"
        self.info_path = self.dir / f"{name}.lock.json"
        self.timeout, self.poll = timeout, poll
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self._lock = FileLock(str(self.path))

    def holder(self) -> dict | None:
        try:
            return json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            self._wait()
        info = {"pid": os.getpid(), "cmd": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                "since": datetime.now().strftime("%Y-%m-%d %H:%M:%S")}
        tmp = self.info_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, self.info_path)

    def _wait(self) -> None:
        start = time.monotonic()
        last = None
        while True:
            holder = holder_text(self.holder()) or "another run"
            if holder != last:  # say it once per holder, not once per poll
                self.say(f"nlpdag: waiting for {self.path} (held by {holder}; giving up after "
                         f"{self.timeout:.0f} s)")
                last = holder
            left = self.timeout - (time.monotonic() - start)
            if left <= 0:
                raise LockTimeout(f"{self.path}: still held by {holder} after {self.timeout:.0f} s")
            try:
                self._lock.acquire(timeout=min(self.poll, left))
                self.say(f"nlpdag: got {self.path} after {time.monotonic() - start:.0f} s")
                return
            except Timeout:
                continue

    def release(self) -> None:
        self.info_path.unlink(missing_ok=True)
        self._lock.release()

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
