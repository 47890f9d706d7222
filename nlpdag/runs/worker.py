"""`nlpdag worker`: `prefect worker start --type process`, stopped so that its points are not lost.

Measured with Prefect 3.9: on SIGTERM a process worker keeps polling until its running flow runs
end (and took a new point right after), while a flow run killed under it stays RUNNING for good.
So this wrapper owns the stop: on SIGTERM or Ctrl-C it freezes the worker process (SIGSTOP: no
new point is taken), sends SIGTERM to each `prefect flow-run execute` it had started; with
PREFECT_FLOW_RUN_EXECUTE_SIGTERM_BEHAVIOR=reschedule (the sweep deployment sets it) that puts the
point back in the pool as SCHEDULED, and another worker runs it from the start; then it kills
the worker. A worker that dies without a signal (SIGKILL, a machine lost) cannot do this: see
README, "Sweeps on workers".
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces or parentheses: fields start after the last ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has finished; its parent just has not reaped it


def hand_back(worker_pid: int, wait: float = 90, say=print) -> int:
    """Stop the worker, let each of its flow-run executors reschedule its run; return their count."""
    executors = children(worker_pid)
    engines = {pid: children(pid) for pid in executors}  # each engine runs in its own session
    # Frozen, not killed, while the executors reschedule: a stopped worker takes no new point, and
    # its end of their output pipes stays open (measured: killing it first, an executor could die
    # on its next log line before rescheduling, leaving the point RUNNING for good).
    try:
        os.kill(worker_pid, signal.SIGSTOP)
    except ProcessLookupError:
        pass
    for pid in executors:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait
    while any(alive(pid) for pid in executors) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in [*executors, *(e for group in engines.values() for e in group)]:
        if alive(pid):
            say(f"nlpdag worker: PID {pid} did not stop within {wait:.0f} s; killing it")
            try:
                os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        os.killpg(worker_pid, signal.SIGKILL)  # the worker and anything else left in its group
    except ProcessLookupError:
        pass
    return len(executors)


def supervise(args: list[str], env: dict[str, str]) -> int:
    """Run the worker until it exits or this process gets SIGTERM/SIGINT; return the exit code."""
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    # Its own session: a terminal's Ctrl-C reaches this process only, which decides the order.
    proc = subprocess.Popen(args, env=env, start_new_session=True)
    print(f"nlpdag worker: PID {os.getpid()}, prefect worker PID {proc.pid}", file=sys.stderr, flush=True)
    while proc.poll() is None and not stop:
        time.sleep(0.2)
    if stop:
        count = hand_back(proc.pid, say=lambda line: print(line, file=sys.stderr, flush=True))
        print(f"nlpdag worker: stopped on {signal.Signals(stop[0]).name}; "
              f"{count} running point(s) handed back to the pool", file=sys.stderr, flush=True)
        proc.wait()
        return 0
    return proc.returncode
