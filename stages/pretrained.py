"""DVC stage `pretrained`: wiring only; the logic is nlpdag.embeddings.pretrained."""
from __future__ import annotations

from nlpdag.config.base import load_params
from nlpdag.config.pretrained import PretrainedParams
from nlpdag.embeddings.pretrained import run
from nlpdag.errors import cli_main


@cli_main
def main() -> None:
    run(load_params(pretrained=PretrainedParams).pretrained)


if __name__ == "__main__":
    main()
