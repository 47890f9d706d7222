"""Pre-training of a classifier's embedding and recurrent layers before `classify` fine-tunes them
(Dai & Le 2015, "Semi-supervised sequence learning"): a language model (predict the next word) or a
sequence auto-encoder (rebuild the document from the pooled state), `stages.rnn.PretrainHead`, trained
on the training documents only, with the fine-tuning's optimizer settings."""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch
from torch import nn

from nlpdag.models.autoencoders import resolve_device
from nlpdag.models.rnn import PretrainHead, RNNClassifier
from nlpdag.training.sequences import DEVICE_PARAM, Batches, TrainConfig, autocast, make_optimizer


def pretrain_encoder(model: RNNClassifier, seqs: Sequence[np.ndarray], kind: str, epochs: int,
                     config: TrainConfig, max_len: int = 100) -> list[dict]:
    """Pre-train the model's embedding and recurrent layers (and, for the auto-encoder, its pooling) in
    place, on the first `max_len` tokens of each sequence (documents of one token teach nothing and are
    left out), with `config`'s optimizer, learning rate, batch size, clipping, device, AMP and seed.
    kind: lm | autoencoder (`stages.rnn.PretrainHead`). Returns the history: epoch, loss (mean token
    log-loss over the epoch's batches), seconds, tokens_per_second. Frozen embeddings stay frozen."""
    if kind not in ("lm", "autoencoder"):
        raise ValueError(f"pretrain={kind!r}: expected lm or autoencoder")
    if max_len < 2:
        raise ValueError(f"pretrain max_len must be >= 2, got {max_len}")
    if epochs < 1:
        raise ValueError(f"pretrain epochs must be >= 1, got {epochs}")
    device = resolve_device(config.device, DEVICE_PARAM)
    use_amp = config.amp and device.type == "cuda"
    torch.manual_seed(config.seed)
    head = PretrainHead(model.config, kind)
    model.to(device).train()
    head.to(device).train()
    capped = [s[:max_len] for s in seqs if len(s) >= 2]
    if not capped:
        raise ValueError("pre-training needs documents of at least two tokens")
    both = nn.ModuleList([model, head])
    optimizer = make_optimizer(both, config)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    params = [p for p in both.parameters() if p.requires_grad]
    batches = Batches(capped, None, config.batch_size, shuffle=True, seed=config.seed)
    history = []
    for epoch in range(1, epochs + 1):
        start, losses, tokens = time.perf_counter(), [], 0
        batches.set_epoch(epoch)
        for ids, lengths, _, _ in batches:
            tokens += int(lengths.sum())
            ids, lengths = ids.to(device, non_blocking=True), lengths.to(device)
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, use_amp):
                loss = head.loss(model, ids, lengths)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            if config.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.clip)
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.detach().float())
        seconds = time.perf_counter() - start
        history.append({"epoch": epoch, "loss": float(torch.stack(losses).mean()), "seconds": seconds,
                        "tokens_per_second": tokens / seconds})
        if config.verbose:
            h = history[-1]
            print(f"{config.name} pretrain {kind}: epoch {epoch}/{epochs}  loss {h['loss']:.4f}  "
                  f"{seconds:.1f} s  {h['tokens_per_second']:,.0f} tokens/s", flush=True)
    model.eval()
    return history
