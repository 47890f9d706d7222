"""The `nlpdag` command (pyproject's entry point `nlpdag.cli:app`)."""
from nlpdag.cli.commands import app

__all__ = ["app"]
