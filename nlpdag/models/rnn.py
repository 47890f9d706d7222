"""Recurrent sequence classifiers (Elman RNN, LSTM, GRU; uni- or bidirectional; four poolings) for the
`classify` stage, and the pieces their pre-training (nlpdag/models/pretraining.py `pretrain_encoder`) reuses.

Input: ids (B, T) int64, padded with PAD = 0 after each document's `lengths[b]` real tokens (UNK = 1,
words from 2, most frequent first). Output of `encode`: one vector per document (B, D), D = hidden x
directions. Padding never changes a document's output:
- every direction of every layer is its own unidirectional module, so the reverse direction can read
  each sequence reversed *within its own length* (a per-sequence index gather, `flip`): real tokens come
  first for both directions and the states at real positions never see a pad. PyTorch's padded
  bidirectional RNN would start the reverse pass on the pads instead;
- poolings mask the pads (max: -inf, mean: divide by the length, attention: -inf scores, so weights are
  exactly 0 there), and `last` gathers the forward state at each document's own last token.
Packed sequences (pack_padded_sequence) give the same outputs and skip the pads' compute; which is faster
depends on the device (`packed: None` picks, see `PACKED_DEFAULT`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, UNK = 0, 1
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("last", "max", "mean", "attention")

# packed=None: padded on CPU, packed on CUDA. On CPU (bench/classify.py: BiLSTM, hidden 128, embed 100,
# max_len 400, batch 64, length-bucketed batches, forward + backward, same batches alternated) padded ran
# 3,180 tokens/s and packed 259 (0.08x) with 2 threads, 11,396 and 701 (0.06x) with 1, on the shared, loaded
# build machine: a padded batch goes through oneDNN's fused RNN layer (mkldnn_rnn_layer), a packed one
# through ATen's step-by-step loop, and bucketing leaves too few pads for packing to win anything back.
# On CUDA (not measured: no GPU here) cuDNN runs packed batches natively and skips the pads.
PACKED_DEFAULT = {"cpu": False, "cuda": True}


@dataclass
class RNNConfig:
    vocab_size: int            # ids: 0 = PAD, 1 = UNK, 2.. = words
    n_classes: int
    embed_dim: int = 100
    cell: str = "lstm"         # rnn (Elman, tanh) | lstm | gru
    bidirectional: bool = True
    layers: int = 1
    hidden: int = 128          # per direction
    pooling: str = "attention" # last | max | mean | attention (additive, Bahdanau-style, masked)
    dropout: float = 0.3       # between layers and on the pooled vector
    embed_dropout: float | None = None  # on the embedded tokens; None: `dropout`
    freeze_embeddings: bool = False
    packed: bool | None = None # None: PACKED_DEFAULT for the input's device

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell={self.cell!r}: expected one of {sorted(CELLS)}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r}: expected one of {list(POOLINGS)}")
        for name in ("dropout", "embed_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        for name in ("vocab_size", "n_classes", "embed_dim", "layers", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size must count PAD and UNK (>= 2), got {self.vocab_size}")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def out_dim(self) -> int:
        return self.hidden * self.directions


def token_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on real tokens."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def flip_index(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T) positions that reverse each sequence within its own length and leave its pads in place
    (an involution: applying it twice is the identity)."""
    ar = torch.arange(T, device=lengths.device)[None, :]
    return torch.where(ar < lengths[:, None], lengths[:, None] - 1 - ar, ar)


def flip(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, T, E) rows reordered by a (B, T) `flip_index`."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[2]))


def make_embedding(c, embeddings: torch.Tensor | None = None) -> nn.Embedding:
    """The token embedding of a classifier config (vocab_size, embed_dim, freeze_embeddings), started
    from `embeddings` (vocab_size, embed_dim) when given; PAD's row is 0 and never trained."""
    embedding = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=PAD)
    if embeddings is not None:
        if tuple(embeddings.shape) != (c.vocab_size, c.embed_dim):
            raise ValueError(f"embeddings have shape {tuple(embeddings.shape)}, "
                             f"expected (vocab_size, embed_dim) = ({c.vocab_size}, {c.embed_dim})")
        with torch.no_grad():
            embedding.weight.copy_(embeddings)
            embedding.weight[PAD].zero_()
    embedding.weight.requires_grad_(not c.freeze_embeddings)
    return embedding


class RNNClassifier(nn.Module):
    def __init__(self, config: RNNConfig, embeddings: torch.Tensor | None = None):
        super().__init__()
        self.config = c = config
        self.embedding = make_embedding(c, embeddings)
        cell = CELLS[c.cell]
        # rnns[layer][direction]: direction 0 reads left to right, 1 reads each sequence reversed.
        self.rnns = nn.ModuleList(
            nn.ModuleList(cell(c.embed_dim if k == 0 else c.out_dim, c.hidden, batch_first=True)
                          for _ in range(c.directions))
            for k in range(c.layers))
        self.drop = nn.Dropout(c.dropout)
        self.embed_drop = nn.Dropout(c.dropout if c.embed_dropout is None else c.embed_dropout)
        if c.pooling == "attention":
            self.att_proj = nn.Linear(c.out_dim, c.hidden)
            self.att_v = nn.Linear(c.hidden, 1, bias=False)
        self.out = nn.Linear(c.out_dim, c.n_classes)

    @property
    def attends(self) -> bool:
        return self.config.pooling == "attention"

    def use_packed(self, device: torch.device) -> bool:
        packed = self.config.packed
        return PACKED_DEFAULT.get(device.type, False) if packed is None else packed

    def run_direction(self, module: nn.Module, x: torch.Tensor, lengths_cpu: torch.Tensor | None) -> torch.Tensor:
        """One unidirectional pass over (B, T, E) -> (B, T, H); packed when `lengths_cpu` is given
        (then the pads' outputs are 0, else whatever the cell made of them; either way masked later)."""
        if lengths_cpu is None:
            return module(x)[0]
        packed = pack_padded_sequence(x, lengths_cpu, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(module(packed)[0], batch_first=True, total_length=x.shape[1])[0]

    def states(self, ids: torch.Tensor, lengths: torch.Tensor, layers: int | None = None,
               directions: int | None = None) -> torch.Tensor:
        """The top layer's states (B, T, H x directions), forward direction first; `layers` and
        `directions` limit the stack (pre-training runs a forward-only language model through it)."""
        T = ids.shape[1]
        lengths = lengths.to(ids.device)
        lengths_cpu = lengths.cpu() if self.use_packed(ids.device) else None
        reverse = flip_index(lengths, T) if self.config.directions > 1 else None
        x = self.embed_drop(self.embedding(ids))  # (B, T, E)
        stack = list(self.rnns)[:layers]
        for k, layer in enumerate(stack):
            outs = []
            for d, module in enumerate(list(layer)[:directions]):
                if d == 0:
                    outs.append(self.run_direction(module, x, lengths_cpu))  # (B, T, H)
                else:
                    outs.append(flip(self.run_direction(module, flip(x, reverse), lengths_cpu), reverse))
            x = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]  # (B, T, H x directions)
            if k < len(stack) - 1:
                x = self.drop(x)
        return x

    def pool(self, h: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, D) states -> (B, D) and attention weights (B, T) or None."""
        mask = token_mask(lengths, h.shape[1])  # (B, T)
        pooling = self.config.pooling
        if pooling == "max":
            return h.masked_fill(~mask[:, :, None], float("-inf")).amax(dim=1), None
        if pooling == "mean":
            return (h * mask[:, :, None]).sum(dim=1) / lengths[:, None].to(h.dtype), None
        if pooling == "last":
            H = self.config.hidden
            last = (lengths - 1)[:, None, None].expand(-1, 1, H)  # (B, 1, H)
            forward = h[:, :, :H].gather(1, last)[:, 0]  # (B, H): state after the last real token
            if self.config.directions == 1:
                return forward, None
            return torch.cat([forward, h[:, 0, H:]], dim=1), None  # the reverse pass ends at position 0
        scores = self.att_v(torch.tanh(self.att_proj(h)))[:, :, 0].float()  # (B, T)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)  # exactly 0 on pads
        return (weights[:, :, None].to(h.dtype) * h).sum(dim=1), weights

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        lengths = lengths.to(ids.device)
        return self.pool(self.states(ids, lengths), lengths)  # (B, D), (B, T) | None

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.encode(ids, lengths)[0]))  # (B, n_classes)

    def batch_loss(self, batch) -> tuple[torch.Tensor, dict]:
        """Cross-entropy on a batch (ids (B, T), lengths (B,), labels (B,), index), and the sums the
        Trainer adds up over an epoch."""
        ids, lengths, y, _ = batch
        logits = self(ids, lengths).float()  # (B, C)
        loss = F.cross_entropy(logits, y)
        return loss, {"loss": loss.detach() * len(y), "accuracy": (logits.detach().argmax(1) == y).sum(),
                      "n": len(y), "tokens": lengths.sum()}


class TokenOutput(nn.Module):
    """Next-token (or reconstruction) log-loss over the vocabulary for pre-training. Large vocabularies
    use an adaptive softmax (Grave et al. 2017: frequent words in a small head, rarer ones in cheaper
    tail clusters), which needs ids sorted by frequency - the vocabulary's order; small ones a plain
    softmax. PAD (0) is never a target."""

    ADAPTIVE_FROM = 4000  # below this a full softmax costs about as much as the clusters' bookkeeping

    def __init__(self, in_dim: int, vocab_size: int):
        super().__init__()
        if vocab_size >= self.ADAPTIVE_FROM:
            cutoffs = [c for c in (2000, 10000) if c < vocab_size - 1]
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(in_dim, vocab_size, cutoffs, div_value=4.0)
            self.linear = None
        else:
            self.adaptive, self.linear = None, nn.Linear(in_dim, vocab_size)

    def forward(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) states, (N,) target ids -> mean negative log-likelihood (scalar)."""
        if self.linear is not None:
            return F.cross_entropy(self.linear(h).float(), targets)
        return self.adaptive(h.float(), targets).loss


class SequenceDecoder(nn.Module):
    """Dai & Le's sequence auto-encoder decoder: an LSTM started from the document vector (B, D) that
    reads the previous token's embedding (teacher forcing; PAD's zero vector before the first) and
    predicts the current token."""

    def __init__(self, embed_dim: int, code_dim: int, vocab_size: int):
        super().__init__()
        self.init = nn.Linear(code_dim, code_dim)
        self.lstm = nn.LSTM(embed_dim, code_dim, batch_first=True)
        self.output = TokenOutput(code_dim, vocab_size)

    def forward(self, code: torch.Tensor, embedding: nn.Embedding, ids: torch.Tensor,
                lengths: torch.Tensor) -> torch.Tensor:
        previous = F.pad(ids[:, :-1], (1, 0), value=PAD)  # (B, T): shifted right
        h0 = torch.tanh(self.init(code))[None]  # (1, B, D)
        states = self.lstm(embedding(previous), (h0, torch.zeros_like(h0)))[0]  # (B, T, D)
        mask = token_mask(lengths, ids.shape[1])  # pads come after the real tokens: they never feed them
        return self.output(states[mask], ids[mask])


class PretrainHead(nn.Module):
    """The objective of `pretrain_encoder` (Dai & Le 2015), over a classifier's embedding and recurrent layers.

    lm: a language model on the recurrent states (plus 2 x their mean square, AWD-LSTM's activation
    regularisation, so that they stay unsaturated for fine-tuning) - the forward direction predicts the next token; in a
    bidirectional model the reverse direction also predicts the previous token (as ELMo does), so both
    directions start pre-trained. A bidirectional stack pre-trains its first layer only: a second layer's
    forward direction reads the first layer's reverse states, which have seen the token to predict.
    autoencoder: the sequence auto-encoder - the classifier's own `encode` (pooling included) makes the
    document vector, from which `SequenceDecoder` must reconstruct the sequence.
    """

    ACTIVATION_PENALTY = 2.0

    def __init__(self, config: RNNConfig, kind: str):
        super().__init__()
        if kind not in ("lm", "autoencoder"):
            raise ValueError(f"classify.pretraining={kind!r}: expected none, lm or autoencoder")
        self.kind = kind
        if kind == "lm":
            self.outputs = nn.ModuleList(TokenOutput(config.hidden, config.vocab_size)
                                         for _ in range(config.directions))
        else:
            self.decoder = SequenceDecoder(config.embed_dim, config.out_dim, config.vocab_size)

    def loss(self, model: RNNClassifier, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean token log-loss of a batch whose documents have >= 2 tokens."""
        lengths = lengths.to(ids.device)
        if self.kind == "autoencoder":
            return self.decoder(model.encode(ids, lengths)[0], model.embedding, ids, lengths)
        c = model.config
        h = model.states(ids, lengths, layers=1 if c.directions > 1 else None)  # (B, T, H x directions)
        has_next = token_mask(lengths - 1, ids.shape[1])[:, :-1]  # (B, T-1): position t < len - 1
        losses = [self.outputs[0](h[:, :-1, :c.hidden][has_next], ids[:, 1:][has_next])]
        if c.directions > 1:  # the reverse state at t has read t..len-1: it predicts token t - 1
            losses.append(self.outputs[1](h[:, 1:, c.hidden:][has_next], ids[:, :-1][has_next]))
        # Activation regularisation (Merity et al. 2018, AWD-LSTM: alpha 2): without it one epoch of this
        # language model drives the states to |h| ~ 0.84 on average (tanh saturated), where the gates'
        # gradients vanish and fine-tuning cannot move them (bench/recipe.py: validation accuracy .56).
        real = token_mask(lengths, ids.shape[1])
        return sum(losses) / len(losses) + self.ACTIVATION_PENALTY * h[real].pow(2).mean()
