"""Progress of every training loop, and DVCLive.

`Progress` is a Trainer callback (nlpdag/training/trainer.py); `EpochProgress` serves the loops that
are not the Trainer's (GloVe's AdaGrad, gensim's epochs); both print through `summary_line`.
`DVCLiveLogger` writes a model's epochs into the stage's DVCLive logger (`live`).
Nothing here imports torch: the gensim stages use it too.
"""
from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path
from typing import Iterator

LIVE_DIR = Path("reports/live")   # DVCLive, one folder per training stage: metrics.json, plots/custom/


def _is_main() -> bool:
    """Rank 0 under torch.distributed, or a single process (no torch imported: no process group)."""
    if "torch" not in sys.modules:
        return True
    from nlpdag.training import distributed as dd

    return dd.is_main()


def _numbers(row: dict, finite: bool = True) -> dict:
    return {k: v for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))
            and (math.isfinite(v) or not finite)}


def summary_line(name: str, epoch: int, epochs: int, row: dict) -> str:
    """One epoch's line; a NaN loss shows as nan (divergence stays visible in a log)."""
    parts = [f"{k} {v:,.0f}" if k == "tokens_per_second" and math.isfinite(v) else f"{k} {v:.1f}" if k == "seconds"
             else f"{k} {v:.4g}" for k, v in _numbers(row, finite=False).items()]
    return f"{name}: epoch {epoch}/{epochs}  " + "  ".join(parts)


class Progress:
    """A tqdm bar per epoch (batches, rate, ETA, running loss) when stderr is a terminal; one line per
    epoch either way, so a log file or CI shows where training stands."""

    def __init__(self, name: str | None = None, every: int = 20, lines: bool = True):
        self.name, self.every, self.lines, self.bar = name, every, lines, None

    def on_epoch_start(self, trainer) -> None:
        from tqdm.auto import tqdm

        if sys.stderr.isatty() and _is_main():
            self.bar = tqdm(total=trainer.n_batches, unit="batch", leave=False, dynamic_ncols=True,
                            desc=f"{self.name or trainer.config.name} {trainer.epoch}/{trainer.config.epochs}")

    def on_batch_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n % self.every == 0:
                stats = trainer.batch_stats
                self.bar.set_postfix(loss=f"{float(stats['loss']) / max(float(stats['n']), 1):.4f}", refresh=False)

    def on_epoch_end(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.lines and _is_main():
            self.epoch_end(self.name or trainer.config.name, trainer.epoch, trainer.config.epochs, trainer.history_[-1])

    @staticmethod
    def epoch_end(name: str, epoch: int, epochs: int, row: dict) -> None:
        from tqdm.auto import tqdm

        tqdm.write(summary_line(name, epoch, epochs, row))  # above any bar on the terminal
        sys.stdout.flush()


class EpochProgress:
    """Progress of a loop that is not the Trainer's (GloVe's AdaGrad, gensim's epochs): a bar over the
    epochs (rate, ETA) on a terminal, a line per epoch, and the epoch's numbers into the stage's DVCLive
    logger when it has one. Call it with each epoch's row ({"epoch": e, "loss": ..., "seconds": ...})."""

    def __init__(self, name: str, epochs: int, logger=None):
        from tqdm.auto import tqdm

        self.name, self.epochs = name, epochs
        self.live = DVCLiveLogger(logger, name) if logger is not None else None
        self.bar = (tqdm(total=epochs, unit="epoch", desc=name, leave=False, dynamic_ncols=True)
                    if sys.stderr.isatty() and _is_main() else None)

    def __call__(self, row: dict) -> None:
        if not _is_main():
            return
        if self.bar is not None:
            self.bar.update(1)
        Progress.epoch_end(self.name, row["epoch"], self.epochs, row)
        if self.live is not None:
            self.live.epoch_end(row)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def live(stage: str) -> Iterator[object]:
    """One DVCLive logger for a stage, writing under reports/live/<stage>/ (declared in dvc.yaml, so DVC
    and its VS Code extension read it; DVCLive makes no experiment or dvc.yaml of its own)."""
    from dvclive import Live

    class StageLive(Live):
        def _init_dvc(self):
            # The stage's files are declared in dvc.yaml and DVC runs the stage: DVCLive needs no DVC
            # repo or git of its own (its lookups fail in a repository without a commit yet).
            self._dvc_file = "dvc.yaml"

    if not _is_main():
        yield None
        return
    logger = StageLive(dir=str(LIVE_DIR / stage), save_dvc_exp=False, dvcyaml=False, report=None)
    (LIVE_DIR / stage / "plots" / "custom").mkdir(parents=True, exist_ok=True)  # a declared output, even with no model
    logger.curves = {}  # metric -> rows of every model: one chart per metric, a colour per model
    try:
        yield logger
    finally:
        logger.end()


class DVCLiveLogger:
    """Every epoch of one model into a stage's DVCLive logger: the latest values under the model's name
    in metrics.json (`dvc exp show` columns, updated while it trains) and one row per epoch in
    plots/custom/<metric>.json, drawn with .dvc/plots/curves.json (colour = model, dash = revision)."""

    def __init__(self, logger, name: str):
        self.logger, self.name = logger, name

    def on_epoch_end(self, trainer) -> None:
        self.epoch_end(trainer.history_[-1])

    def epoch_end(self, row: dict) -> None:
        if self.logger is None:
            return
        for key, value in _numbers(row).items():
            self.logger.log_metric(f"{self.name}/{key}", value, plot=False)
            if key.startswith(("train_", "val_", "loss")):
                rows = self.logger.curves.setdefault(key, [])
                rows.append({"model": self.name, "epoch": row["epoch"], key: value})
                self.logger.log_plot(key, rows, x="epoch", y=key, template="curves", title=key)
        self.logger.make_summary()
