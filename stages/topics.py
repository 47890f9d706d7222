"""DVC stage `topics`: wiring only; the logic is nlpdag.models.topics."""
from __future__ import annotations

from nlpdag.config.base import load_params
from nlpdag.config.topics import TopicsParams
from nlpdag.errors import cli_main
from nlpdag.models.topics import run


@cli_main
def main() -> None:
    run(load_params(topics=TopicsParams))


if __name__ == "__main__":
    main()
