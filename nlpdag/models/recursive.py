"""Recursive (tree-structured) classifiers over the trees of nlpdag/models/trees.py, and Socher et al.'s
(2011) recursive auto-encoder that builds the `rae` trees.

- `recnn`: one composition layer, h = tanh(W [h_left; h_right] + b) (Socher et al. 2011/2013); a leaf is
  tanh(W_leaf x + b) of its word vector.
- `treelstm`: the binary (N-ary, N = 2) Tree-LSTM of Tai et al. (2015): input, output and update gates and
  one forget gate per child, c = i * u + f_l * c_l + f_r * c_r, h = o * tanh(c); a leaf has no children.
Every level of a batch's trees is one matrix product (`trees.root_states` in training, `trees.level_states`
for every node's state), never a Python loop per node; `reference_states` is the node-by-node recursion
the tests hold both to. A document's vector is the
mean and the max of its segments' root states (B, 2H); a node's own prediction (the report's tree panel)
is the output layer on [h; h], exactly what a one-segment document whose root is that node gets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nlpdag.models.rnn import make_embedding
from nlpdag.models.sequences import TreeBatches
from nlpdag.models.trees import SHAPES, TREES, Forest, TreeDoc, level_states, make_forest, root_states, segment_bounds, shaped_docs

CELLS = ("recnn", "treelstm")


@dataclass
class TreeConfig:
    vocab_size: int
    n_classes: int
    embed_dim: int = 100
    cell: str = "treelstm"      # recnn | treelstm
    tree: str = "balanced"      # balanced | left | right | rae
    hidden: int = 128
    segment: int = 30           # tokens per tree at most (a document is cut into segments)
    dropout: float = 0.3        # on the pooled vector
    embed_dropout: float | None = None
    freeze_embeddings: bool = False

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell={self.cell!r}: expected one of {list(CELLS)}")
        if self.tree not in TREES:
            raise ValueError(f"tree={self.tree!r}: expected one of {list(TREES)}")
        for name in ("vocab_size", "n_classes", "embed_dim", "hidden", "segment"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def out_dim(self) -> int:
        return 2 * self.hidden

    @property
    def state_dim(self) -> int:  # a Tree-LSTM node carries [h; c]
        return 2 * self.hidden if self.cell == "treelstm" else self.hidden


class RAE(nn.Module):
    """Recursive auto-encoder (Socher et al. 2011): p = tanh(W_e [c1; c2] + b) scaled to unit length, and
    [c1'; c2'] = W_d p + b_d; a pair's error is ||c1 - c1'||^2 n1 / (n1 + n2) + ||c2 - c2'||^2 n2 / (n1 + n2)
    with n the leaves under each child. It reads its own copy of the unit-length word vectors it was
    trained on (`leaves`), so a saved classifier builds the same trees for new texts."""

    def __init__(self, vectors: torch.Tensor):
        super().__init__()
        D = vectors.shape[1]
        self.register_buffer("leaves", F.normalize(vectors.float(), dim=1))  # (V, D); PAD's row is 0
        self.encoder = nn.Linear(2 * D, D)
        self.decoder = nn.Linear(D, 2 * D)

    def encode(self, c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        return F.normalize(torch.tanh(self.encoder(torch.cat([c1, c2], dim=-1))), dim=-1)  # (..., D)

    def error(self, c1, c2, n1, n2, p=None) -> torch.Tensor:
        """(...,) weighted reconstruction error of merging c1 and c2 (..., D) with n1, n2 leaves (...,)."""
        p = self.encode(c1, c2) if p is None else p
        r1, r2 = self.decoder(p).chunk(2, dim=-1)
        w1 = n1 / (n1 + n2)
        return w1 * (c1 - r1).pow(2).sum(-1) + (1 - w1) * (c2 - r2).pow(2).sum(-1)

    @torch.no_grad()
    def greedy_trees(self, seqs: Sequence[np.ndarray], chunk: int = 2048) -> list[np.ndarray]:
        """The tree of each id sequence: repeatedly merge the adjacent pair with the lowest error. Batched
        over sequences; after a merge only the two pairs beside it are scored again."""
        out: list[np.ndarray] = []
        for lo in range(0, len(seqs), chunk):
            out.extend(self._greedy_chunk(seqs[lo:lo + chunk]))
        return out

    def _greedy_chunk(self, seqs: Sequence[np.ndarray]) -> list[np.ndarray]:
        S, T = len(seqs), max(len(s) for s in seqs)
        lengths = torch.as_tensor([len(s) for s in seqs])
        ids = torch.zeros(S, T, dtype=torch.int64)
        for k, s in enumerate(seqs):
            ids[k, :len(s)] = torch.as_tensor(s)
        x = self.leaves[ids]                                     # (S, T, D) current nodes, left to right
        count = torch.ones(S, T)                                 # (S, T) leaves under each node
        node = torch.arange(T).expand(S, T).clone()              # (S, T) local node id of each position
        err = self.error(x[:, :-1], x[:, 1:], count[:, :-1], count[:, 1:]) if T > 1 else torch.zeros(S, 0)
        alive = lengths.clone()                                  # (S,) nodes left
        merges = torch.zeros(S, max(T - 1, 0), 2, dtype=torch.int64)
        rows, pos = torch.arange(S), torch.arange(T)
        for step in range(T - 1):
            active = alive > 1
            valid = pos[None, :T - 1] < (alive - 1)[:, None]
            j = err.masked_fill(~valid, float("inf")).argmin(dim=1)          # (S,) the pair to merge
            j = torch.where(active, j, torch.zeros_like(j))
            merges[:, step, 0], merges[:, step, 1] = node[rows, j], node[rows, j + 1]
            p = self.encode(x[rows, j], x[rows, j + 1])                     # (S, D)
            n = count[rows, j] + count[rows, j + 1]
            src = torch.where(pos[None, :] > j[:, None], pos[None, :] + 1, pos[None, :]).clamp(max=T - 1)  # shift left
            src = torch.where(active[:, None], src, pos[None, :].expand(S, T))
            x = x.gather(1, src[:, :, None].expand(-1, -1, x.shape[2])).clone()
            count, node = count.gather(1, src).clone(), node.gather(1, src).clone()
            x[rows[active], j[active]] = p[active]
            count[rows[active], j[active]] = n[active]
            node[rows[active], j[active]] = (lengths + step)[active]
            alive = alive - active.long()
            if T > 2:
                esrc = src[:, :T - 1].clamp(max=T - 2)
                err = err.gather(1, esrc).clone()
                for k in (j - 1, j):                                         # the two pairs beside the merge
                    ok = active & (k >= 0) & (k + 1 < alive)
                    kk = k.clamp(0, T - 2)
                    e = self.error(x[rows, kk], x[rows, kk + 1], count[rows, kk], count[rows, kk + 1])
                    err[rows[ok], kk[ok]] = e[ok]
        return [merges[k, :len(s) - 1].numpy().copy() for k, s in enumerate(seqs)]

    def forest_loss(self, forest: Forest) -> torch.Tensor:
        """Mean reconstruction error over every merge of a batch's trees (leaves are fixed unit vectors)."""
        leaves = self.leaves[forest.leaf_ids]
        ones = torch.ones(len(leaves), 1, device=leaves.device)
        errors = []

        def compose(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            (ca, na), (cb, nb) = (a[:, :-1], a[:, -1]), (b[:, :-1], b[:, -1])
            p = self.encode(ca, cb)
            errors.append(self.error(ca, cb, na, nb, p))
            return torch.cat([p, (na + nb)[:, None]], dim=1)

        level_states(forest, torch.cat([leaves, ones], dim=1), compose)
        return torch.cat(errors).mean() if errors else leaves.sum() * 0


def train_rae(vectors: np.ndarray, seqs: Sequence[np.ndarray], segment: int, epochs: int = 2, sample: int = 20000,
              batch_size: int = 256, learning_rate: float = 1e-3, seed: int = 0, log=print) -> RAE:
    """Socher et al.'s training, alternating: build every sampled segment's greedy tree with the current
    auto-encoder, then one pass of Adam on the reconstruction error along those trees. `seqs`: the
    training split's id sequences only (never a test text)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    rae = RAE(torch.from_numpy(np.asarray(vectors, dtype=np.float32)))
    pieces = [s[a:b] for s in seqs for a, b in segment_bounds(len(s), segment) if b - a > 1]
    if not pieces:
        return rae.eval()
    pieces = [pieces[k] for k in rng.permutation(len(pieces))[:sample]]
    optimizer = torch.optim.Adam([p for p in rae.parameters() if p.requires_grad], lr=learning_rate)
    for epoch in range(epochs):
        trees = rae.eval().greedy_trees(pieces)
        docs = [TreeDoc(np.asarray(s), [0], [t]) for s, t in zip(pieces, trees)]
        rae.train()
        total = 0.0
        order = rng.permutation(len(docs))
        for lo in range(0, len(docs), batch_size):
            loss = rae.forest_loss(make_forest([docs[k] for k in order[lo:lo + batch_size]]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(order[lo:lo + batch_size])
        log(f"classify: recursive auto-encoder epoch {epoch + 1}/{epochs}: reconstruction error {total / len(docs):.4f}")
    return rae.eval()


class TreeClassifier(nn.Module):
    attends = False

    def __init__(self, config: TreeConfig, embeddings: torch.Tensor | None = None, rae: RAE | None = None):
        super().__init__()
        self.config = c = config
        if (c.tree == "rae") != (rae is not None):
            raise ValueError("tree=rae needs its recursive auto-encoder, and only it does")
        self.embedding = make_embedding(c, embeddings)
        H = c.hidden
        if c.cell == "treelstm":
            self.leaf = nn.Linear(c.embed_dim, 3 * H)      # i, o, u
            self.compose_layer = nn.Linear(2 * H, 5 * H)   # i, f_left, f_right, o, u
        else:
            self.leaf = nn.Linear(c.embed_dim, H)
            self.compose_layer = nn.Linear(2 * H, H)
        self.rae = rae
        if rae is not None:
            rae.requires_grad_(False)                      # fixed: it only chose the trees
        self.embed_drop = nn.Dropout(c.dropout if c.embed_dropout is None else c.embed_dropout)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.out_dim, c.n_classes)

    # ---- trees ----
    def prepare(self, seqs: Sequence[np.ndarray]) -> list[TreeDoc]:
        """Id sequences -> documents of segment trees (the model's input)."""
        c = self.config
        if c.tree in SHAPES:
            return shaped_docs(seqs, c.tree, c.segment)
        bounds = [segment_bounds(len(s), c.segment) for s in seqs]
        pieces = [np.asarray(s[a:b]) for s, bs in zip(seqs, bounds) for a, b in bs]
        trees = iter(self.rae.greedy_trees(pieces))
        return [TreeDoc(np.asarray(s, dtype=np.int64), [a for a, _ in bs], [next(trees) for _ in bs])
                for s, bs in zip(seqs, bounds)]

    def batches(self, docs, labels=None, batch_size: int = 64, **kw) -> TreeBatches:
        return TreeBatches(docs, labels, batch_size, **kw)

    # ---- composition ----
    def leaf_states(self, x: torch.Tensor) -> torch.Tensor:
        """(N, E) word vectors -> (N, state_dim)."""
        if self.config.cell == "recnn":
            return torch.tanh(self.leaf(x))
        i, o, u = self.leaf(x).chunk(3, dim=1)
        cell = torch.sigmoid(i) * torch.tanh(u)
        return torch.cat([torch.sigmoid(o) * torch.tanh(cell), cell], dim=1)  # [h; c]

    def compose(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """(N, state_dim) children -> (N, state_dim) parents."""
        H = self.config.hidden
        if self.config.cell == "recnn":
            return torch.tanh(self.compose_layer(torch.cat([left, right], dim=1)))
        gates = self.compose_layer(torch.cat([left[:, :H], right[:, :H]], dim=1))  # (N, 5H)
        i, f_l, f_r, o, u = gates.chunk(5, dim=1)
        cell = (torch.sigmoid(i) * torch.tanh(u) + torch.sigmoid(f_l) * left[:, H:]
                + torch.sigmoid(f_r) * right[:, H:])
        return torch.cat([torch.sigmoid(o) * torch.tanh(cell), cell], dim=1)

    def node_states(self, forest: Forest) -> torch.Tensor:
        """(N_nodes, H): every node's h, in the forest's level order (the tree panel's view)."""
        x = self.embed_drop(self.embedding(forest.leaf_ids))  # (N_leaves, E)
        return level_states(forest, self.leaf_states(x), self.compose)[:, :self.config.hidden]

    def roots(self, forest: Forest) -> torch.Tensor:
        """(S, H): each segment's root h, along the forest's schedule (what training runs)."""
        x = self.embed_drop(self.embedding(forest.leaf_ids[forest.leaf_order]))  # (N_leaves, E)
        return root_states(forest, self.leaf_states(x), self.compose)[:, :self.config.hidden]

    def reference_states(self, ids: np.ndarray, tree: np.ndarray) -> torch.Tensor:
        """(2n - 1, H) one tree's node states by plain recursion, node by node (the tests' reference)."""
        n = len(ids)
        x = self.embed_drop(self.embedding(torch.as_tensor(ids, dtype=torch.int64)))
        memo: dict[int, torch.Tensor] = {}

        def state(k: int) -> torch.Tensor:
            if k not in memo:
                if k < n:
                    memo[k] = self.leaf_states(x[k:k + 1])[0]
                else:
                    a, b = tree[k - n]
                    memo[k] = self.compose(state(int(a))[None], state(int(b))[None])[0]
            return memo[k]

        return torch.stack([state(k) for k in range(2 * n - 1)])[:, :self.config.hidden]

    def pool(self, roots: torch.Tensor, forest: Forest) -> torch.Tensor:
        """(S, H) segment roots -> (B, 2H): mean and max over each document's segments."""
        B, H = forest.n_docs, roots.shape[1]
        doc = forest.segment_doc
        roots = roots.float()  # under AMP the roots are float16: sum and compare them in float32
        counts = torch.zeros(B, device=roots.device).index_add_(0, doc, torch.ones_like(doc, dtype=roots.dtype))
        mean = torch.zeros(B, H, device=roots.device, dtype=roots.dtype).index_add_(0, doc, roots) / counts[:, None]
        top = torch.full((B, H), float("-inf"), device=roots.device, dtype=roots.dtype)
        top = top.scatter_reduce(0, doc[:, None].expand(-1, H), roots, reduce="amax")
        return torch.cat([mean, top], dim=1)

    def encode_batch(self, batch) -> tuple[torch.Tensor, None]:
        forest = batch[0]
        return self.pool(self.roots(forest), forest), None  # (B, 2H)

    def node_logits(self, h: torch.Tensor) -> torch.Tensor:
        """(N, H) node states -> (N, C): each node judged as a one-segment document."""
        return self.out(torch.cat([h, h], dim=1))

    def batch_loss(self, batch) -> tuple[torch.Tensor, dict]:
        forest, y, _ = batch
        logits = self.out(self.drop(self.encode_batch(batch)[0])).float()
        loss = F.cross_entropy(logits, y)
        return loss, {"loss": loss.detach() * len(y), "accuracy": (logits.detach().argmax(1) == y).sum(),
                      "n": len(y), "tokens": forest.n_leaves}
