"""Pre-training of a classifier's embedding and recurrent layers before `classify` fine-tunes them
(Dai & Le 2015, "Semi-supervised sequence learning"): a language model (predict the next word) or a
sequence auto-encoder (rebuild the document from the pooled state), `nlpdag.models.rnn.PretrainHead`,
trained on the training documents only by the shared Trainer, with the fine-tuning's optimizer settings."""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import torch
from torch import nn

from nlpdag.models.rnn import PretrainHead, RNNClassifier
from nlpdag.training.progress import Progress
from nlpdag.models.sequences import Batches
from nlpdag.training.trainer import Trainer, TrainerConfig


class PretrainTask(nn.Module):
    """The classifier's encoder with a pre-training head: what the Trainer optimises."""

    def __init__(self, model: RNNClassifier, head: PretrainHead):
        super().__init__()
        self.model, self.head = model, head

    def batch_loss(self, batch) -> tuple[torch.Tensor, dict]:
        ids, lengths, _, _ = batch
        loss = self.head.loss(self.model, ids, lengths)  # mean token log-loss of the batch
        return loss, {"loss": loss.detach().float(), "n": 1, "tokens": lengths.sum()}


def pretrain_encoder(model: RNNClassifier, seqs: Sequence[np.ndarray], kind: str, epochs: int,
                     config: TrainerConfig, max_len: int = 100, callbacks: Sequence[object] = ()) -> list[dict]:
    """Pre-train the model's embedding and recurrent layers (and, for the auto-encoder, its pooling) in
    place, on the first `max_len` tokens of each sequence (documents of one token teach nothing and are
    left out), with `config`'s optimizer, learning rate, batch size, clipping, device, AMP and seed.
    kind: lm | autoencoder. Returns the history: epoch, loss (mean token log-loss over the epoch's
    batches), seconds, tokens_per_second. Frozen embeddings stay frozen."""
    if kind not in ("lm", "autoencoder"):
        raise ValueError(f"classify.pretraining={kind!r}: expected none, lm or autoencoder")
    if max_len < 2:
        raise ValueError(f"classify.pretraining_max_len must be >= 2, got {max_len}")
    if epochs < 1:
        raise ValueError(f"classify.pretraining_epochs must be >= 1, got {epochs}")
    capped = [s[:max_len] for s in seqs if len(s) >= 2]
    if not capped:
        raise ValueError("pre-training needs documents of at least two tokens")
    torch.manual_seed(config.seed or 0)
    task = PretrainTask(model, PretrainHead(model.config, kind))
    name = f"{config.name} pretraining {kind}"
    hooks = list(callbacks) + ([Progress()] if config.verbose else [])
    # seed None: the generator goes on from the head's initialisation, not from a second reset.
    # data_parallel False: under torchrun every rank pre-trains on all of the text by itself (the
    # heads leave the classifier's output layer unused, which DDP would refuse), as one process would.
    # groups (): every layer learns at the full rate here; the fine-tuning's own groups come after.
    trainer = Trainer(task, replace(config, name=name, epochs=epochs, seed=None, record_grad_norms=False,
                                    checkpoint=None, data_parallel=False, groups=()), hooks)
    trainer.fit(Batches(capped, None, config.batch_size, shuffle=True, seed=config.seed or 0))
    return [{"epoch": h["epoch"], "loss": h["train_loss"], "seconds": h["seconds"],
             "tokens_per_second": h["tokens_per_second"]} for h in trainer.history_]
