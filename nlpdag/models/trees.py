"""Binary trees over a document's tokens without a parser, and their level-by-level batching.

No constituency parser can run here (each downloads its model at run time). Shi et al. (2018) found
trivial trees competitive with syntactic ones, and Socher et al. (2011) built trees greedily with a
recursive auto-encoder (nlpdag/models/recursive.py `RAE`). The shapes: `balanced` (split in halves),
`left` ((((a b) c) d)), `right` (a (b (c d))) and `rae`.

Long documents: tokens carry no sentence boundaries (tokenise drops punctuation), so a document
(already truncated like the RNNs' input, `classify.max_len`) is cut into near-equal consecutive
segments of at most `classify.tree_segment` tokens, one tree each; the classifier pools the
segments' root vectors (mean and max). A Rotten Tomatoes sentence (~20 tokens) is one tree.

A tree over n leaves is `children`, an (n - 1, 2) int array: leaves are nodes 0..n-1, internal node k
is node n + k, and its children come before it (so row order is a valid bottom-up order).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

TREES = ("balanced", "left", "right", "rae")


def balanced_tree(n: int) -> np.ndarray:
    """Split in halves (the left half takes the extra leaf), recursively."""
    children: list[tuple[int, int]] = []

    def build(lo: int, hi: int) -> int:
        if hi - lo == 1:
            return lo
        mid = (lo + hi + 1) // 2
        left, right = build(lo, mid), build(mid, hi)
        children.append((left, right))
        return n + len(children) - 1

    if n < 1:
        raise ValueError(f"a tree needs at least one leaf, got {n}")
    build(0, n)
    return np.asarray(children, dtype=np.int64).reshape(-1, 2)


def left_tree(n: int) -> np.ndarray:
    """((((0 1) 2) 3) ...): every merge adds the next leaf on the right."""
    if n < 1:
        raise ValueError(f"a tree needs at least one leaf, got {n}")
    rows = [(0, 1)] + [(n + k - 1, k + 1) for k in range(1, n - 1)] if n > 1 else []
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def right_tree(n: int) -> np.ndarray:
    """(0 (1 (2 (3 ...)))): every merge adds the previous leaf on the left."""
    if n < 1:
        raise ValueError(f"a tree needs at least one leaf, got {n}")
    rows = [(n - 2, n - 1)] + [(n - 2 - k, n + k - 1) for k in range(1, n - 1)] if n > 1 else []
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


SHAPES = {"balanced": balanced_tree, "left": left_tree, "right": right_tree}


def node_levels(children: np.ndarray, n: int) -> np.ndarray:
    """(2n - 1,) height of every node: leaves 0, an internal node 1 + its taller child."""
    levels = np.zeros(n + len(children), dtype=np.int64)
    for k, (a, b) in enumerate(children):
        levels[n + k] = 1 + max(levels[a], levels[b])
    return levels


def segment_bounds(length: int, segment: int) -> list[tuple[int, int]]:
    """Near-equal consecutive (start, end) pieces of at most `segment` tokens covering `length`."""
    if segment < 1:
        raise ValueError(f"classify.tree_segment must be >= 1, got {segment}")
    k = max(1, -(-length // segment))
    edges = np.linspace(0, length, k + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


@dataclass
class TreeDoc:
    """One document as trees: its token ids and, per segment, the segment's first token and its tree."""
    ids: np.ndarray                      # (n_tokens,) int64
    starts: list[int]
    trees: list[np.ndarray]              # (len_s - 1, 2) each, local node numbering

    def __len__(self) -> int:           # tokens, so Batches' length bucketing applies as to sequences
        return len(self.ids)


def shaped_docs(seqs: Sequence[np.ndarray], shape: str, segment: int) -> list[TreeDoc]:
    """Each id sequence as segments with a fixed-shape tree (balanced, left or right)."""
    if shape not in SHAPES:
        raise ValueError(f"tree={shape!r}: a fixed shape is one of {sorted(SHAPES)} (rae needs its auto-encoder)")
    out = []
    for ids in seqs:
        bounds = segment_bounds(len(ids), segment)
        out.append(TreeDoc(np.asarray(ids, dtype=np.int64), [a for a, _ in bounds], [SHAPES[shape](b - a) for a, b in bounds]))
    return out


@dataclass
class Step:
    """One level of `root_states`' schedule. Its source is [this level's leaf children; the pending states
    (computed, not yet consumed)]: `left` / `right` index the source, `keep` the pending states that stay
    pending; of the level's new states, `cont` go on pending and `done` are segment roots."""
    left: torch.Tensor
    right: torch.Tensor
    keep: torch.Tensor
    cont: torch.Tensor
    done: torch.Tensor

    def to(self, device) -> "Step":
        return Step(*(t.to(device, non_blocking=True) for t in (self.left, self.right, self.keep, self.cont, self.done)))


@dataclass
class Forest:
    """A batch of trees laid out level by level: node ids are positions in the concatenation of every
    level's states, leaves (level 0) first, then level 1's internal nodes, and so on, so a level reads
    only earlier levels. `left[l]` / `right[l]`: the children of level l + 1's nodes.

    Training runs `steps` instead (`root_states`): every node is read once, by its parent, so a level
    needs only its own leaf children and the states still pending, never a buffer of every node. With
    deep trees (RAE trees of 30 tokens are ~25 levels deep) that keeps each level's copies and gradient
    buffers to its own size (a Tree-LSTM step over RAE trees of the real corpus: 0.23 s per batch of 64 against
    0.34 s reading every level from one growing buffer, measured side by side)."""
    leaf_ids: torch.Tensor               # (N_leaves,) token ids
    left: list[torch.Tensor]             # per level >= 1: (N_l,) node ids
    right: list[torch.Tensor]
    roots: torch.Tensor                  # (S,) node id of each segment's root
    segment_doc: torch.Tensor            # (S,) the document (row of the batch) of each segment
    n_docs: int
    nodes: torch.Tensor | None = None    # (N_nodes,) node id of each node in listing order: set when kept
    leaf_order: torch.Tensor | None = None  # (N_leaves,) leaves by the level that reads them, single-leaf roots last
    chunks: list[int] | None = None      # how many leaves each level reads, then the single-leaf roots
    steps: list[Step] | None = None
    root_order: torch.Tensor | None = None  # (S,) each segment's root in [roots by level; single-leaf roots]

    def to(self, device) -> "Forest":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Forest(move(self.leaf_ids), [move(t) for t in self.left], [move(t) for t in self.right],
                      move(self.roots), move(self.segment_doc), self.n_docs, move(self.nodes), move(self.leaf_order),
                      self.chunks, None if self.steps is None else [st.to(device) for st in self.steps],
                      move(self.root_order))

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_ids)


def make_forest(docs: Sequence[TreeDoc], keep_nodes: bool = False) -> Forest:
    """Lay out `docs`' trees by level. keep_nodes: `nodes` maps every (doc, segment, local node) in
    listing order (doc by doc, segment by segment, leaves then internal nodes) to its node id."""
    leaf_ids, levels_all, local_rows, owners, seg_doc, seg_sizes = [], [], [], [], [], []
    for d, doc in enumerate(docs):
        for start, tree in zip(doc.starts, doc.trees):
            n = len(tree) + 1
            leaf_ids.append(doc.ids[start:start + n])
            levels_all.append(node_levels(tree, n))
            local_rows.append(tree)
            seg_doc.append(d)
            seg_sizes.append(n)
    levels = np.concatenate(levels_all)                     # (N_nodes,) listing order
    order = np.argsort(levels, kind="stable")               # listing position -> sorted by level
    node_id = np.empty_like(order)
    node_id[order] = np.arange(len(order))                  # listing position -> node id
    bounds = np.searchsorted(levels[order], np.arange(levels.max() + 2))  # where each level starts
    left = np.empty(len(order), dtype=np.int64)
    right = np.empty(len(order), dtype=np.int64)
    roots, offset = [], 0
    for tree, n in zip(local_rows, seg_sizes):
        if len(tree):
            ids = node_id[offset + n:offset + 2 * n - 1]
            left[ids], right[ids] = node_id[offset + tree[:, 0]], node_id[offset + tree[:, 1]]
        roots.append(node_id[offset + 2 * n - 2])
        offset += 2 * n - 1
    lefts = [left[bounds[lv]:bounds[lv + 1]].copy() for lv in range(1, len(bounds) - 1)]
    rights = [right[bounds[lv]:bounds[lv + 1]].copy() for lv in range(1, len(bounds) - 1)]
    roots = np.asarray(roots, dtype=np.int64)
    leaf_order, chunks, steps, root_order = schedule(lefts, rights, roots, int(bounds[1]), bounds)
    t = torch.from_numpy
    return Forest(t(np.concatenate(leaf_ids)), [t(a) for a in lefts], [t(a) for a in rights], t(roots),
                  torch.as_tensor(seg_doc, dtype=torch.int64), len(docs), t(node_id) if keep_nodes else None,
                  t(leaf_order), chunks, steps, t(root_order))


def schedule(lefts: list[np.ndarray], rights: list[np.ndarray], roots: np.ndarray, n_leaves: int,
             bounds: np.ndarray) -> tuple[np.ndarray, list[int], list[Step], np.ndarray]:
    """The `Forest.steps` of the trees given by their children per level (node ids)."""
    n_nodes = int(bounds[-1])
    is_root = np.zeros(n_nodes, dtype=bool)
    is_root[roots] = True
    where = np.full(n_nodes, -1, dtype=np.int64)   # position of an internal node among the pending states
    pending = np.zeros(0, dtype=np.int64)
    leaf_order, chunks, steps, finished = [], [], [], []
    for lv, (lc, rc) in enumerate(zip(lefts, rights), start=1):
        ids = np.arange(bounds[lv], bounds[lv + 1])
        children = np.concatenate([lc, rc])
        leaves = children[children < n_leaves]
        chunk = np.full(n_nodes, -1, dtype=np.int64)
        chunk[leaves] = np.arange(len(leaves))
        pos = np.where(children < n_leaves, chunk[children], len(leaves) + where[children])  # into [chunk; pending]
        consumed = np.zeros(len(pending), dtype=bool)
        consumed[where[children[children >= n_leaves]]] = True
        keep = np.flatnonzero(~consumed)
        cont, done = np.flatnonzero(~is_root[ids]), np.flatnonzero(is_root[ids])
        steps.append(Step(*(torch.from_numpy(a) for a in (pos[:len(lc)], pos[len(lc):], len(leaves) + keep, cont, done))))
        leaf_order.append(leaves)
        chunks.append(len(leaves))
        finished.append(ids[done])
        pending = np.concatenate([pending[keep], ids[cont]])
        where[pending] = np.arange(len(pending))
    single = roots[roots < n_leaves]
    leaf_order.append(single)
    chunks.append(len(single))
    order = np.concatenate(finished + [single])    # node ids in the order root_states produces them
    place = np.empty(n_nodes, dtype=np.int64)
    place[order] = np.arange(len(order))
    return np.concatenate(leaf_order), chunks, steps, place[roots]


def root_states(forest: Forest, leaves: torch.Tensor, compose) -> torch.Tensor:
    """(S, D) each segment's root state, from `leaves` (N_leaves, D) in `forest.leaf_order`, level by level
    (`compose` once per level) along `forest.steps`."""
    chunks = leaves.split(forest.chunks)
    pending = leaves.new_zeros((0, leaves.shape[1]))
    finished = []
    for chunk, step in zip(chunks, forest.steps):
        source = torch.cat([chunk, pending])
        new = compose(source[step.left], source[step.right])
        pending = torch.cat([source[step.keep], new[step.cont]])
        finished.append(new[step.done])
    return torch.cat(finished + [chunks[-1]])[forest.root_order]


def level_states(forest: Forest, leaves: torch.Tensor, compose) -> torch.Tensor:
    """(N_nodes, D) every node's state: `leaves` (N_leaves, D), then level by level
    `compose(left (N_l, D), right (N_l, D)) -> (N_l, D)`, one call per level, not per node."""
    states = leaves
    for left, right in zip(forest.left, forest.right):
        states = torch.cat([states, compose(states[left], states[right])])
    return states
