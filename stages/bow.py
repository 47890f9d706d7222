"""DVC stage `bow`: wiring only; the logic is nlpdag.text.bow."""
from __future__ import annotations

from nlpdag.config.base import load_params
from nlpdag.config.bow import BowParams
from nlpdag.errors import cli_main
from nlpdag.text.bow import run


@cli_main
def main() -> None:
    run(load_params(bow=BowParams))


if __name__ == "__main__":
    main()
