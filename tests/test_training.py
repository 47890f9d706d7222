"""The shared training engine: the Trainer's loop and its progress, DVCLive, early-stopping callbacks."""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from nlpdag.training.progress import LIVE_DIR
from nlpdag.models.autoencoders import AutoEncoder, ModelConfig, train
from nlpdag.training.callbacks import EarlyStopping
from nlpdag.training.progress import DVCLiveLogger, EpochProgress, Progress, live, summary_line
from nlpdag.training.trainer import Trainer, TrainerConfig

pytestmark = pytest.mark.usefixtures("one_thread")


class Line(nn.Module):
    """y = w x, mean squared error: a model whose batch loss the Trainer can optimise in a few steps."""

    def __init__(self, diverge: bool = False):
        super().__init__()
        self.w, self.diverge = nn.Parameter(torch.zeros(1)), diverge

    def batch_loss(self, batch):
        x, y = batch
        loss = ((self.w * x - y) ** 2).mean() * (math.nan if self.diverge else 1.0)
        return loss, {"loss": loss.detach() * len(x), "n": len(x)}


class Pairs:
    def __init__(self, n: int = 64, batch: int = 16):
        self.x = torch.linspace(-1, 1, n)
        self.y, self.batch = 3 * self.x, batch

    def __len__(self):
        return math.ceil(len(self.x) / self.batch)

    def epoch_batches(self, epoch, device, shard=True):
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(epoch))
        for lo in range(0, len(order), self.batch):
            idx = order[lo:lo + self.batch]
            yield (self.x[idx], self.y[idx]), 1.0


def test_the_trainer_optimises_a_batch_loss_and_records_each_epoch():
    seen = []

    class Count:
        def on_batch_end(self, trainer):
            seen.append(trainer.epoch)

    trainer = Trainer(Line(), TrainerConfig(epochs=5, learning_rate=0.1, optimizer="adam"), [Count()])
    trainer.fit(Pairs())
    losses = [h["train_loss"] for h in trainer.history_]
    assert seen == [e for e in range(1, 6) for _ in range(4)]
    assert losses[-1] < losses[0] / 4 and abs(trainer.model.w.item() - 3) < abs(0 - 3)
    assert [h["epoch"] for h in trainer.history_] == [1, 2, 3, 4, 5] and "val_loss" not in trainer.history_[0]
    assert trainer.best_epoch_ == 5 and not trainer.model.training


def test_early_stopping_counts_a_diverged_epoch_as_no_improvement():
    """A NaN validation loss never becomes the best; training stops after `patience` of them."""
    model = Line(diverge=True)
    trainer = Trainer(model, TrainerConfig(epochs=10, learning_rate=0.1, optimizer="adam"), [EarlyStopping(2)])
    trainer.fit(Pairs(), lambda m: {"val_loss": math.nan})
    assert len(trainer.history_) == 2 and trainer.stop


def test_progress_prints_one_line_per_epoch_and_shows_a_nan(capsys):
    Trainer(Line(), TrainerConfig(name="line", epochs=2, learning_rate=0.1), [Progress()]).fit(Pairs())
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["line: epoch 1/2", "line: epoch 2/2"]
    assert "train_loss" in lines[0] and "seconds" in lines[0]
    assert "loss nan" in summary_line("x", 1, 1, {"epoch": 1, "loss": math.nan})
    EpochProgress("glove", 3)({"epoch": 1, "loss": 0.5, "seconds": 1.0})
    assert capsys.readouterr().out == "glove: epoch 1/3  loss 0.5  seconds 1.0\n"


def test_dvclive_gets_every_model_into_one_chart_per_curve(tmp_path, monkeypatch):
    """reports/live/<stage>/: metrics.json holds each model's last epoch (what dvc exp show lists);
    plots/custom/<curve>.json one row per model and epoch, coloured by model in the DVC template.
    In a fresh git repository without a commit too (DVCLive's own git lookups would fail there)."""
    import subprocess

    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(80, 6)).astype(np.float32))
    with live("reduce") as logger:
        for name in ("toy__ae", "toy__dae"):
            torch.manual_seed(0)
            model = AutoEncoder(ModelConfig(6, 2, noise="masking" if name.endswith("dae") else None, noise_level=0.2))
            train(model, x[:60], x[60:], TrainerConfig(name=name, epochs=3, batch_size=16, optimizer="adam"),
                  [DVCLiveLogger(logger, name)])
    folder = tmp_path / LIVE_DIR / "reduce"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert set(metrics) == {"toy__ae", "toy__dae"} and set(metrics["toy__ae"]) >= {"train_loss", "val_loss", "seconds"}
    rows = json.loads((folder / "plots/custom/val_loss.json").read_text())
    assert [(r["model"], r["epoch"]) for r in rows] == [(m, e) for m in ("toy__ae", "toy__dae") for e in (1, 2, 3)]
    assert rows[-1]["val_loss"] == metrics["toy__dae"]["val_loss"]
    with live("neural/bilstm_max"):  # a neural@<key> stage's folder, declared in dvc.yaml before its first epoch
        pass
    assert (tmp_path / LIVE_DIR / "neural/bilstm_max/plots/custom").is_dir()
    assert (tmp_path / LIVE_DIR / "neural/bilstm_max/metrics.json").is_file()


def test_the_dvc_template_colours_curves_by_model():
    from conftest import ROOT

    template = json.loads((ROOT / ".dvc/plots/curves.json").read_text())
    assert template["encoding"]["color"]["field"] == "model" and template["encoding"]["strokeDash"]["field"] == "rev"
