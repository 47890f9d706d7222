"""A Transformer encoder classifier trained from scratch (Vaswani et al. 2017; BERT-style class token).

Input as the RNNs': ids (B, T) padded with PAD = 0 after each document's `lengths[b]` tokens. A class
token is put first; token embeddings (from a method's word vectors or random, projected to d_model when
their size differs) plus sinusoidal positions go through `layers` pre-norm blocks of masked multi-head
self-attention and a feed-forward layer. The padding mask keeps every pad out of every real position's
attention, so a document's output is the same whatever it is batched with. Pooling: the class token's
final state (`cls`) or the masked mean of the tokens' (`mean`).

The attention shown in the report (`attends`): the last layer's weights from the class token to each
token, averaged over heads (with `mean` pooling, from every token, averaged), next to the RNN's
additive attention for the same documents.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nlpdag.models.rnn import make_embedding, token_mask


@dataclass
class TransformerConfig:
    vocab_size: int
    n_classes: int
    embed_dim: int = 100
    layers: int = 2
    d_model: int = 128
    heads: int = 4
    ff: int = 256               # feed-forward width
    pooling: str = "cls"        # cls | mean
    dropout: float = 0.1
    embed_dropout: float | None = None
    freeze_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_classes", "embed_dim", "layers", "d_model", "heads", "ff"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling={self.pooling!r}: expected cls or mean")

    @property
    def out_dim(self) -> int:
        return self.d_model


def sinusoid(T: int, d: int, device=None) -> torch.Tensor:
    """(T, d) the fixed positional encodings of Vaswani et al."""
    pos = torch.arange(T, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    out = torch.zeros(T, d, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq)[:, :d // 2]
    return out


class SelfAttention(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.heads = c.heads
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.dropout = c.dropout

    def forward(self, x: torch.Tensor, keep: torch.Tensor, with_weights: bool = False):
        """x (B, T, d), keep (B, T) True on real positions -> (B, T, d) and, when asked, (B, heads, T, T)."""
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, T, d_h) each
        mask = keep[:, None, None, :]  # (B, 1, 1, T): no query looks at a pad
        if with_weights:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (B, h, T, T)
            weights = torch.softmax(scores.float().masked_fill(~mask, float("-inf")), dim=-1).to(q.dtype)
            y = weights @ v
        else:
            weights = None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, d)), weights


class Block(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.attention = SelfAttention(c)
        self.mlp = nn.Sequential(nn.Linear(c.d_model, c.ff), nn.GELU(), nn.Linear(c.ff, c.d_model))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, keep, with_weights=False):
        a, weights = self.attention(self.norm1(x), keep, with_weights)
        x = x + self.drop(a)
        return x + self.drop(self.mlp(self.norm2(x))), weights


class TransformerClassifier(nn.Module):
    attends = True

    def __init__(self, config: TransformerConfig, embeddings: torch.Tensor | None = None):
        super().__init__()
        self.config = c = config
        self.embedding = make_embedding(c, embeddings)
        self.project = nn.Linear(c.embed_dim, c.d_model) if c.embed_dim != c.d_model else nn.Identity()
        self.cls = nn.Parameter(torch.zeros(c.d_model))
        self.embed_drop = nn.Dropout(c.dropout if c.embed_dropout is None else c.embed_dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.d_model, c.n_classes)

    def states(self, ids: torch.Tensor, lengths: torch.Tensor, with_weights: bool = False):
        """(B, T + 1, d) final states, class token first, the (B, T + 1) mask, and the last layer's
        attention (B, heads, T + 1, T + 1) when asked."""
        B, T = ids.shape
        lengths = lengths.to(ids.device)
        x = self.project(self.embed_drop(self.embedding(ids)))  # (B, T, d)
        x = torch.cat([self.cls.expand(B, 1, -1).to(x.dtype), x], dim=1)  # (B, T + 1, d)
        x = x + sinusoid(T + 1, self.config.d_model, ids.device).to(x.dtype)
        keep = token_mask(lengths + 1, T + 1)  # (B, T + 1)
        weights = None
        for k, block in enumerate(self.blocks):
            x, weights = block(x, keep, with_weights and k == len(self.blocks) - 1)
        return self.norm(x), keep, weights

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor, with_weights: bool = True):
        """(B, d) document vectors and (B, T) attention on the tokens (last layer, head-averaged)."""
        h, keep, weights = self.states(ids, lengths, with_weights and not self.training)
        if self.config.pooling == "cls":
            pooled = h[:, 0]
            shown = None if weights is None else weights.mean(1)[:, 0, 1:]  # (B, T): from the class token
        else:
            tokens = keep[:, 1:, None].to(h.dtype)
            pooled = (h[:, 1:] * tokens).sum(1) / lengths.to(ids.device)[:, None].to(h.dtype)
            shown = None if weights is None else (weights.mean(1)[:, 1:, 1:] * tokens).sum(1) / lengths.to(ids.device)[:, None]
        return pooled, shown

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.encode(ids, lengths, with_weights=False)[0]))  # (B, n_classes)

    def batch_loss(self, batch) -> tuple[torch.Tensor, dict]:
        ids, lengths, y, _ = batch
        logits = self(ids, lengths).float()
        loss = F.cross_entropy(logits, y)
        return loss, {"loss": loss.detach() * len(y), "accuracy": (logits.detach().argmax(1) == y).sum(),
                      "n": len(y), "tokens": lengths.sum()}
