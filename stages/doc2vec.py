"""DVC stage `doc2vec`: wiring only; the logic is nlpdag.embeddings.doc2vec."""
from __future__ import annotations

from nlpdag.config.base import foreach_item, load_params
from nlpdag.config.doc2vec import Doc2VecParams
from nlpdag.embeddings.doc2vec import MODES, run
from nlpdag.errors import cli_main


@cli_main
def main() -> None:
    run(load_params(doc2vec=Doc2VecParams), foreach_item("doc2vec", MODES))


if __name__ == "__main__":
    main()
