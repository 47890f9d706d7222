"""DVC stage `report`: wiring only; the logic is nlpdag.report.build."""
from __future__ import annotations

from nlpdag.catalog.report import FIGURES, INDEX
from nlpdag.config.base import load_params
from nlpdag.config.evaluate import EvaluateParams
from nlpdag.config.report import ReportParams
from nlpdag.errors import cli_main
from nlpdag.report.build import run


@cli_main
def main() -> None:
    params = load_params(report=ReportParams, evaluate=EvaluateParams)
    pngs = run(params)
    print(f"report: {INDEX} ({INDEX.stat().st_size / 1e6:.1f} MB), {len(pngs)} PNGs in {FIGURES}/")


if __name__ == "__main__":
    main()
