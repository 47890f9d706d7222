"""Helpers the `nlpdag` command modules share: one-line errors, the checkout, Prefect's offline settings."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer


def quiet_prefect(root: Path) -> None:
    """Offline defaults, set before Prefect is imported; a user's own settings win."""
    os.environ.setdefault("PREFECT_HOME", str(root / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY", "false")
    os.environ.setdefault("PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # A fresh SQLite database takes ~10-20 s to migrate on 2 cores; Prefect's default waits 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def find_checkout(repo: Optional[Path]) -> Path:
    from nlpdag.runs.dag import PipelineError, find_root

    try:
        return find_root(repo)
    except PipelineError as exc:
        fail(str(exc))
