"""A local Prefect server for scheduled runs: found, started or stopped, without importing Prefect.

Prefect reads its settings once, at import, so the API URL must be in the environment before the
first `import prefect`; this module only starts processes and speaks HTTP. The temporary server
that `nlpdag run` uses does not schedule, so `nlpdag serve` needs this one.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 4200
RECORD = "nlpdag-server.json"  # under PREFECT_HOME: the server this checkout started


class ServerError(RuntimeError):
    """No Prefect server could be found or started; the message says where to look."""


def prefect_home(root: Path) -> Path:
    """The user's PREFECT_HOME if set, else the checkout's own `.prefect/` (never ~/.prefect)."""
    return Path(os.environ.get("PREFECT_HOME") or root / ".prefect")


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api"


@dataclass
class Server:
    api_url: str
    pid: int | None = None      # set when this checkout started it
    log: Path | None = None
    started: bool = False       # started by this call
    external: bool = False      # named by PREFECT_API_URL: found, never started here

    def describe(self) -> str:
        who = f" (PID {self.pid}, log {self.log})" if self.pid else ""
        return f"Prefect server {self.api_url}{who}"


def recorded(home: Path) -> Server | None:
    """The server this checkout started earlier, if it still answers."""
    try:
        info = json.loads((home / RECORD).read_text())
    except (OSError, ValueError):
        return None
    server = Server(info["api_url"], info.get("pid"), Path(info["log"]) if info.get("log") else None)
    return server if healthy(server.api_url) else None


def plan(root: Path, port: int | None = None) -> Server:
    """The server `nlpdag serve` will use, without starting anything: PREFECT_API_URL if set, else
    the one this checkout started earlier, else a new one on `port` (4200 if free, else any)."""
    if url := os.environ.get("PREFECT_API_URL"):
        return Server(url, external=True)
    home = prefect_home(root)
    if port is None and (found := recorded(home)):
        return found
    if port is None:
        port = DEFAULT_PORT if port_free(DEFAULT_PORT) else free_port()
    return Server(api_url(port))


def server_env(home: Path) -> dict[str, str]:
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1")
    env.pop("PREFECT_API_URL", None)  # the server must not try to reach itself as a client
    return env


def start(root: Path, server: Server, wait: float = 120) -> Server:
    """Start `prefect server start` for `server`'s port unless it already answers; wait for health."""
    if healthy(server.api_url):
        return server
    if server.external:
        raise ServerError(f"PREFECT_API_URL={server.api_url} does not answer (is its server running?)")
    home = prefect_home(root)
    home.mkdir(parents=True, exist_ok=True)
    port = int(server.api_url.rsplit(":", 1)[1].split("/")[0])
    if not port_free(port):
        raise ServerError(f"127.0.0.1:{port} is taken by something that is not a Prefect server; "
                          "pass --port or set PREFECT_API_URL")
    log = home / "server.log"
    exe = Path(sys.executable).with_name("prefect")
    with open(log, "ab") as out:
        # Its own session: it outlives `nlpdag serve`, and stop() ends its whole process group.
        proc = subprocess.Popen([str(exe) if exe.exists() else "prefect", "server", "start",
                                 "--host", "127.0.0.1", "--port", str(port)],
                                env=server_env(home), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(server.api_url, proc.pid, log, started=True)
    deadline = time.monotonic() + wait
    while not healthy(server.api_url):
        if proc.poll() is not None:
            raise ServerError(f"Prefect server exited with code {proc.returncode} before answering; "
                              f"see {log}: {last_line(log)}")
        if time.monotonic() > deadline:
            stop_pid(proc.pid)
            raise ServerError(f"Prefect server did not answer {server.api_url}/health within {wait:.0f} s; "
                              f"see {log}: {last_line(log)}")
        time.sleep(0.5)
    (home / RECORD).write_text(json.dumps({"api_url": server.api_url, "pid": proc.pid, "log": str(log)}))
    return server


def last_line(path: Path) -> str:
    try:
        lines = [l for l in path.read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def stop_pid(pid: int, wait: float = 15) -> bool:
    """End the process group `pid` leads (the server and its uvicorn worker); False if it was gone."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def is_prefect(pid: int) -> bool:
    try:
        return b"prefect" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop(root: Path) -> Server | None:
    """Stop the server this checkout started (recorded under PREFECT_HOME); None if there was none."""
    home = prefect_home(root)
    try:
        info = json.loads((home / RECORD).read_text())
    except (OSError, ValueError):
        return None
    server = Server(info["api_url"], info.get("pid"), Path(info["log"]) if info.get("log") else None)
    if server.pid and is_prefect(server.pid):  # a recycled PID after a reboot is someone else's
        stop_pid(server.pid)
    (home / RECORD).unlink(missing_ok=True)
    return server
