"""DVC stage `reduce`: wiring only; the logic is nlpdag.embeddings.reduce."""
from __future__ import annotations

from nlpdag.config.base import load_params
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.config.reduce import ReduceParams
from nlpdag.embeddings.reduce import run
from nlpdag.errors import cli_main


@cli_main
def main() -> None:
    run(load_params(reduce=ReduceParams, evaluate=EvaluateParams))


if __name__ == "__main__":
    main()
