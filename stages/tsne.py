"""DVC stage `tsne`: wiring only; the logic is nlpdag.report.tsne."""
from __future__ import annotations

from nlpdag.catalog.tsne import TSNE_DIR
from nlpdag.config.base import load_params
from nlpdag.config.tsne import TsneParams
from nlpdag.errors import cli_main
from nlpdag.io.vectors import Timer
from nlpdag.report.tsne import run


@cli_main
def main() -> None:
    params = load_params(tsne=TsneParams)
    with Timer() as timer:
        _, _, maps = run(params.tsne, params.seed)
    print(f"tsne: {sum(m['points'] > 0 for m in maps)} maps in {timer.seconds:.1f} s -> {TSNE_DIR}/")


if __name__ == "__main__":
    main()
