"""DVC stage `check`: all of params.yaml validated before any other stage runs.

DVC deletes a stage's outputs before running its command, so a typo found by the stage itself costs
those outputs (a trained model). Every root stage depends on this stage's stamp, so DVC runs it first
and stops here; the stamp's content never changes, so a passing check reruns nothing downstream.
"""
from __future__ import annotations

from nlpdag.catalog.check import CHECKED
from nlpdag.config.params import load_params
from nlpdag.errors import cli_main
from nlpdag.io.tables import atomic_path

STAMP = "params.yaml passed nlpdag's checks\n"


@cli_main
def main() -> None:
    load_params()
    with atomic_path(CHECKED) as tmp:
        tmp.write_text(STAMP, encoding="utf-8")


if __name__ == "__main__":
    main()
