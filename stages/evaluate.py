"""DVC stage `evaluate`: wiring only; the logic is nlpdag.embeddings.evaluate."""
from __future__ import annotations

from nlpdag.config.base import load_params
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.embeddings.evaluate import run
from nlpdag.errors import cli_main


@cli_main
def main() -> None:
    run(load_params(evaluate=EvaluateParams).evaluate)


if __name__ == "__main__":
    main()
