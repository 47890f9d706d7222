"""Multi-process training (nlpdag/training/distributed.py): two gloo processes on the CPU train the classifier
as one process does on the same global batch, only rank 0 writes, and a `neural@<key>` stage runs under
torchrun."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import yaml

import stages.classify as classify_stage
from conftest import run_classifier_stages
from nlpdag.catalog.classify import (ATTENTION, CHECKPOINTS, CLASSIFY_SCORES, CLASSIFY_PREDICTIONS, CLASSIFY_STATES,
                                     CURVES_DIR, SUMMARY, model_dir, neural_dir)
from nlpdag.config.params import load_params as load_all_params
from nlpdag.training import distributed as dd
from nlpdag.io.tables import read_frame
from nlpdag.models.rnn import RNNClassifier, RNNConfig
from nlpdag.models.pretraining import pretrain_encoder
from nlpdag.models.sequences import fit_classifier
from nlpdag.training.trainer import Trainer, TrainerConfig
from test_classify import make_workspace

ROOT = Path(__file__).resolve().parents[1]
V = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toy(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Three classes; a document of class c holds the word 2 + c once among noise words 5..29."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        s = rng.integers(5, V, size=int(rng.integers(3, 20)))
        s[rng.integers(0, len(s))] = 2 + i % 3
        seqs.append(s.astype(np.int64))
        labels.append(i % 3)
    return seqs, np.array(labels)


class Interrupted(Exception):
    pass


class StopAfter:
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer):
        if trainer.epoch == self.epoch:
            raise Interrupted


def train(checkpoint: str | None, callbacks=()) -> Trainer:
    """36 training documents in batches of 7: full batches split 4 + 3 over two ranks (unequal
    weights) and a last batch of one document (one rank idle at weight 0). Dropout 0, so that the
    runs can agree."""
    seqs, y = toy(36, seed=0)
    val, y_val = toy(9, seed=1)
    torch.manual_seed(0)
    model = RNNClassifier(RNNConfig(vocab_size=V, n_classes=3, embed_dim=8, hidden=8, bidirectional=True,
                                    pooling="attention", dropout=0.0))
    # Validation loss lowest at epoch 4: training stops after epoch 5 and keeps epoch 4's weights.
    config = TrainerConfig(epochs=6, batch_size=7, learning_rate=3e-2, clip=1.0, patience=1, device="cpu",
                           checkpoint=checkpoint)
    return fit_classifier(model, config, seqs, y, val, y_val, callbacks)


def pretrained() -> RNNClassifier:
    """Language-model pre-training, which leaves the output layer unused: every rank runs all of it alone."""
    torch.manual_seed(0)
    model = RNNClassifier(RNNConfig(vocab_size=V, n_classes=3, embed_dim=8, hidden=8, pooling="max", dropout=0.0))
    pretrain_encoder(model, toy(36, seed=2)[0], "lm", 2, TrainerConfig(batch_size=7, learning_rate=3e-2, clip=1.0))
    return model


def worker(rank: int, port: int, out: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    torch.set_num_threads(1)
    with dd.setup():
        assert dd.world_size() == 2 and dd.rank() == rank
        # A separate checkpoint path per rank, as on machines that share no disk: rank 0 alone writes,
        # and on resume sends its checkpoint to rank 1.
        checkpoint = out / f"rank{rank}" / "model.pt"
        with pytest.raises(Interrupted):
            train(str(checkpoint), [StopAfter(2)])
        trainer = train(str(checkpoint))
        torch.save({"state_dict": trainer.model.state_dict(), "history": trainer.history_,
                    "grad_norms": trainer.grad_norms_, "best_epoch": trainer.best_epoch_}, out / f"result{rank}.pt")
        torch.save(pretrained().state_dict(), out / f"pretrained{rank}.pt")


@pytest.mark.slow  # ~30 s on a busy 2-core machine, mostly the two processes importing torch
@pytest.mark.usefixtures("one_thread")
def test_two_processes_train_as_one(tmp_path):
    mp.spawn(worker, args=(free_port(), tmp_path), nprocs=2, join=True)
    single = train(None)
    assert (tmp_path / "rank0" / "model.pt").is_file() and not (tmp_path / "rank1").exists()
    assert not list((tmp_path / "rank0").glob(".*.tmp"))
    results = [torch.load(tmp_path / f"result{r}.pt", weights_only=False) for r in (0, 1)]
    assert (single.best_epoch_, len(single.history_)) == (4, 5)
    for result in results:
        assert result["best_epoch"] == single.best_epoch_
        assert [h["epoch"] for h in result["history"]] == [h["epoch"] for h in single.history_]
        for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            np.testing.assert_allclose([h[key] for h in result["history"]], [h[key] for h in single.history_],
                                       rtol=1e-5, err_msg=key)
        np.testing.assert_allclose(result["grad_norms"], single.grad_norms_, rtol=1e-4)
        for name, value in single.model.state_dict().items():
            np.testing.assert_allclose(result["state_dict"][name].numpy(), value.numpy(), rtol=1e-4, atol=1e-5,
                                       err_msg=name)
    alone = pretrained().state_dict()
    for r in (0, 1):
        got = torch.load(tmp_path / f"pretrained{r}.pt", weights_only=True)
        assert all(torch.equal(got[k], alone[k]) for k in alone), f"rank {r} pre-training differs from one process"
    # Both ranks end with the very same weights (DDP's gradients are identical on every rank).
    for name, value in results[0]["state_dict"].items():
        assert torch.equal(value, results[1]["state_dict"][name]), name


def test_single_process_helpers():
    index = np.arange(5)
    assert not dd.is_distributed() and dd.rank() == 0 and dd.world_size() == 1 and dd.is_main()
    part, weight = dd.shard(index)
    assert part is index and weight == 1.0
    assert dd.broadcast({"a": 1}) == {"a": 1}
    dd.barrier()
    with dd.setup():  # no WORLD_SIZE: nothing to join
        assert not dd.is_distributed()


@pytest.mark.slow
def test_neural_stage_under_torchrun(tmp_path, monkeypatch, one_thread):
    """`torchrun --standalone --nproc_per_node 2 -m stages.neural <key>`, as the README says, then the
    `classify` join, against the single-process stages on the same workspace (dropout 0: the neural
    models agree)."""
    key, spec = "bigru_attention", "gru-bi-attention@word2vec_skipgram"
    for root in (tmp_path / "ddp", tmp_path / "single"):
        make_workspace(root, 2, {key: spec}, ["nb_logreg"])
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["classify"].update(dropout=0.0, embed_dropout=0.0, epochs=4)
        (root / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "stages.neural", key]
    proc = subprocess.run(cmd, cwd=tmp_path / "ddp", env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # One voice in the log: rank 0's.
    assert proc.stdout.count(f"neural@{key}: {spec}: trained in") == 1, proc.stdout
    monkeypatch.chdir(tmp_path / "ddp")
    classify_stage.run(load_all_params(), log=lambda *_: None)
    monkeypatch.chdir(tmp_path / "single")
    run_classifier_stages(tmp_path / "single")

    ddp, single = tmp_path / "ddp", tmp_path / "single"
    metrics = json.loads((ddp / CLASSIFY_SCORES).read_text())["models"]
    assert set(metrics) == {"nb_logreg", spec}
    assert metrics[spec]["kind"] == "neural" and metrics[spec]["n"] == 20
    for path in (SUMMARY, ATTENTION, CLASSIFY_PREDICTIONS, CLASSIFY_STATES, model_dir(key) / "model.pt",
                 neural_dir(key) / "info.json", CURVES_DIR / f"{spec}.csv"):
        assert (ddp / path).exists(), path
    assert not list(ddp.rglob(".*.tmp")) and not list((ddp / CHECKPOINTS).glob("*.pt"))
    ours, theirs = read_frame(ddp / CLASSIFY_PREDICTIONS), read_frame(single / CLASSIFY_PREDICTIONS)
    assert len(ours) == len(theirs) == 2 * 20
    assert (ours["predicted"] == theirs["predicted"]).all()
    np.testing.assert_allclose(ours["confidence"], theirs["confidence"], atol=1e-4)


@pytest.mark.slow  # ~20 s: two processes importing torch
def test_glove_stage_under_torchrun(tmp_path, monkeypatch, one_thread):
    """`torchrun --standalone --nproc_per_node 2 -m stages.glove`: each process steps its slice of every
    batch (33 pairs: slices of 16 and 17; the last batch is shorter) and the steps are all-gathered, so
    the vectors are the single-process ones bit for bit, and only process 0 writes."""
    from nlpdag.embeddings import glove
    from nlpdag.io.vectors import read_vectors
    from test_glove import tiny_counts, write_inputs

    i, j, x = tiny_counts(vocab_size=40, seed=5)
    tokens = [f"w{k}" for k in range(40)]
    write_inputs(tmp_path, i, j, x, tokens, size=6)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["glove"].update(batch_size=33, epochs=3)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert len(x) % 33 and (len(x) // 33) > 10
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "stages.glove"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("glove: epoch 3/3") == 1 and "on cpu x 2" in proc.stdout, proc.stdout

    single = glove.Glove(size=6, epochs=3, batch_size=33, device="cpu", seed=0, threads=1).fit(i, j, x, vocab_size=40)
    words, vectors = read_vectors(tmp_path / "data/embeddings/glove.parquet")
    assert words == tokens
    np.testing.assert_array_equal(vectors, single.vectors_)
    info = json.loads((tmp_path / "reports/train/glove.json").read_text())
    assert info["processes"] == 2
    np.testing.assert_allclose(info["loss"], single.loss_, rtol=1e-6)
    assert not list(tmp_path.rglob(".*.tmp"))
