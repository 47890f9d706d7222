"""Trees without a parser, their level-by-level batching, the recursive classifiers and the RAE."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nlpdag.models.recursive import RAE, TreeClassifier, TreeConfig, train_rae
from nlpdag.models.checkpoints import load_checkpoint, save_checkpoint
from nlpdag.models.sequences import fit_classifier, predict
from nlpdag.models.trees import (TreeDoc, balanced_tree, left_tree, make_forest, node_levels, right_tree,
                                 segment_bounds, shaped_docs)
from nlpdag.training.trainer import TrainerConfig


def spans(children: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Each internal node's (first leaf, last leaf)."""
    span = {k: (k, k) for k in range(n)}
    for k, (a, b) in enumerate(children):
        assert span[a][1] + 1 == span[b][0], "children must be adjacent, left before right"
        span[n + k] = (span[a][0], span[b][1])
    return [span[n + k] for k in range(len(children))]


def test_tree_shapes():
    assert left_tree(4).tolist() == [[0, 1], [4, 2], [5, 3]]          # ((0 1) 2) 3
    assert right_tree(4).tolist() == [[2, 3], [1, 4], [0, 5]]         # 0 (1 (2 3))
    assert balanced_tree(4).tolist() == [[0, 1], [2, 3], [4, 5]]      # (0 1) (2 3)
    assert balanced_tree(5).tolist() == [[0, 1], [5, 2], [3, 4], [6, 7]]  # ((0 1) 2) (3 4)
    for n in (1, 2, 3, 7, 30):
        for build in (left_tree, right_tree, balanced_tree):
            tree = build(n)
            assert tree.shape == (n - 1, 2)
            if n > 1:
                assert spans(tree, n)[-1] == (0, n - 1)  # the root covers every leaf
                assert sorted(tree.ravel().tolist()) == list(range(2 * n - 2))  # every node but the root is a child once
    assert node_levels(left_tree(8), 8).max() == 7 and node_levels(balanced_tree(8), 8).max() == 3
    with pytest.raises(ValueError, match="at least one leaf"):
        balanced_tree(0)


def test_segments_cover_the_document_in_near_equal_pieces():
    assert segment_bounds(70, 30) == [(0, 23), (23, 47), (47, 70)]
    assert segment_bounds(5, 30) == [(0, 5)]
    docs = shaped_docs([np.arange(2, 72)], "left", 30)
    assert docs[0].starts == [0, 23, 47] and [len(t) for t in docs[0].trees] == [22, 23, 22]


def model_for(cell: str, tree: str = "balanced", V: int = 20, seed: int = 0, **kw) -> TreeClassifier:
    torch.manual_seed(seed)
    rae = RAE(torch.randn(V, 8)) if tree == "rae" else None
    return TreeClassifier(TreeConfig(V, 3, embed_dim=8, cell=cell, tree=tree, hidden=6, dropout=0.0, **kw), rae=rae).eval()


@pytest.mark.parametrize("cell", ["recnn", "treelstm"])
def test_level_batched_states_equal_node_by_node_recursion(cell):
    model = model_for(cell)
    rng = np.random.default_rng(0)
    docs = [TreeDoc(rng.integers(2, 20, 7), [0, 3], [right_tree(3), balanced_tree(4)]),
            TreeDoc(rng.integers(2, 20, 5), [0], [left_tree(5)]),
            TreeDoc(rng.integers(2, 20, 1), [0], [left_tree(1)])]
    forest = make_forest(docs, keep_nodes=True)
    with torch.no_grad():
        batched = model.node_states(forest)[forest.nodes]  # listing order: doc, segment, leaves then internal
        reference = torch.cat([model.reference_states(doc.ids[s:s + len(t) + 1], t)
                               for doc in docs for s, t in zip(doc.starts, doc.trees)])
    torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the training schedule's roots: the same as the roots of every-node evaluation
        roots = model.roots(forest)
    torch.testing.assert_close(roots, model.node_states(forest)[forest.roots], rtol=1e-5, atol=1e-6)
    ends = [s + len(t) for doc in docs for s, t in zip(doc.starts, doc.trees)]
    sizes = [len(t) + 1 for doc in docs for t in doc.trees]
    offsets = np.cumsum([0] + [2 * n - 1 for n in sizes])[:-1]
    torch.testing.assert_close(roots, reference[[o + 2 * n - 2 for o, n in zip(offsets, sizes)]], rtol=1e-5, atol=1e-6)
    assert len(ends) == 4
    # the roots: doc 0 has two segments, so its vector pools two roots; the one-leaf doc's root is its leaf
    assert forest.segment_doc.tolist() == [0, 0, 1, 2]
    with torch.no_grad():
        pooled, _ = model.encode_batch((forest, None, None))
        alone, _ = model.encode_batch((make_forest(docs[1:2]), None, None))
    assert pooled.shape == (3, 12)
    torch.testing.assert_close(pooled[1], alone[0], rtol=1e-5, atol=1e-6)  # batching does not change a document


@pytest.mark.parametrize("cell", ["recnn", "treelstm"])
def test_gradients_reach_every_leaf(cell):
    model = model_for(cell).train()
    ids = np.arange(2, 12)
    forest = make_forest(shaped_docs([ids], "left", 30))
    loss, _ = model.batch_loss((forest, torch.tensor([1]), torch.tensor([0])))
    loss.backward()
    grad = model.embedding.weight.grad
    assert (grad[ids].abs().sum(dim=1) > 0).all()  # the deepest leaf of a left-branching tree too
    assert grad[0].abs().sum() == 0 and grad[12:].abs().sum() == 0  # PAD and unseen words untouched


def test_rae_merges_the_adjacent_pair_it_reconstructs_best():
    """A hand-made auto-encoder whose error is exactly 0 for merging the vectors of words 3 and 4 and
    large for any other pair: the greedy tree must merge (3 4) first, in every position."""
    D = 2
    vectors = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [-1.0, 0.0]])
    rae = RAE(vectors)
    with torch.no_grad():
        rae.encoder.weight.zero_(); rae.encoder.bias.copy_(torch.tensor([1.0, 0.0]))  # p = (tanh 1, 0) / |.| = (1, 0)
        rae.decoder.weight.zero_(); rae.decoder.bias.copy_(torch.tensor([0.0, 1.0, 0.0, -1.0]))  # rebuilds (0,1), (0,-1)
    errors = {(a, b): float(rae.error(rae.leaves[a], rae.leaves[b], torch.tensor(1.0), torch.tensor(1.0)).detach())
              for a in range(2, 6) for b in range(2, 6)}
    assert errors[3, 4] == pytest.approx(0.0, abs=1e-6) and min(v for k, v in errors.items() if k != (3, 4)) > 0.9
    trees = rae.greedy_trees([np.array([3, 4, 2, 5]), np.array([2, 5, 3, 4]), np.array([5, 3, 4]), np.array([3, 4])])
    assert trees[0][0].tolist() == [0, 1]
    assert trees[1][0].tolist() == [2, 3]
    assert trees[2][0].tolist() == [1, 2]
    assert trees[3].tolist() == [[0, 1]]
    for tree, n in zip(trees, (4, 4, 3, 2)):
        assert spans(tree, n)[-1] == (0, n - 1)
    assert trees[1][1:].tolist() in ([[0, 1], [5, 4]], [[1, 4], [0, 5]])  # then the rest, over the merged node


def test_rae_greedy_batched_equals_one_at_a_time():
    torch.manual_seed(0)
    rae = RAE(torch.randn(30, 5))
    rng = np.random.default_rng(1)
    seqs = [rng.integers(2, 30, n) for n in (1, 2, 5, 9, 13)]
    together = rae.greedy_trees(seqs)
    for s, tree in zip(seqs, together):
        assert rae.greedy_trees([s])[0].tolist() == tree.tolist()


def test_rae_training_lowers_reconstruction_error():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 6)).astype(np.float32)
    seqs = [rng.integers(2, 40, rng.integers(3, 15)) for _ in range(200)]
    logged = []
    train_rae(vectors, seqs, segment=10, epochs=3, sample=300, log=logged.append)
    errors = [float(line.rsplit(" ", 1)[1]) for line in logged]
    assert len(errors) == 3 and errors[-1] < errors[0]


def test_tree_model_learns_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    seqs = [np.concatenate([rng.integers(4, 20, rng.integers(2, 12)), [2 + (k % 2)]]) for k in range(160)]
    y = np.array([k % 2 for k in range(160)])  # the label is the last word: it needs every segment's root
    torch.manual_seed(0)
    rae = train_rae(rng.normal(size=(20, 8)).astype(np.float32), seqs, 6, epochs=1, sample=100, log=lambda *_: None)
    model = TreeClassifier(TreeConfig(20, 2, embed_dim=8, cell="treelstm", tree="rae", hidden=8, segment=6, dropout=0.0), rae=rae)
    docs = model.prepare(seqs)
    assert all(len(d.trees) == len(segment_bounds(len(s), 6)) for d, s in zip(docs, seqs))
    fit_classifier(model, TrainerConfig(epochs=25, batch_size=32, learning_rate=2e-2, seed=0), docs[:120], y[:120])
    proba = predict(model, docs[120:], with_states=True)
    assert (proba["proba"].argmax(1) == y[120:]).mean() >= 0.9
    assert proba["states"].shape == (40, 16)
    save_checkpoint(tmp_path / "m.pt", model, None, {"spec": "treelstm-rae@random"})
    loaded, extra = load_checkpoint(tmp_path / "m.pt")
    assert extra["spec"] == "treelstm-rae@random"
    again = loaded.prepare(seqs[120:])
    assert [t.tolist() for d in again for t in d.trees] == [t.tolist() for d in docs[120:] for t in d.trees]
    np.testing.assert_allclose(predict(loaded, again)["proba"], proba["proba"], rtol=1e-5, atol=1e-6)


def random_tree(n: int, rng) -> np.ndarray:
    """Merges of random adjacent pairs: any binary tree shape."""
    nodes, rows = list(range(n)), []
    while len(nodes) > 1:
        j = int(rng.integers(len(nodes) - 1))
        rows.append((nodes[j], nodes[j + 1]))
        nodes[j:j + 2] = [n + len(rows) - 1]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def test_schedule_roots_equal_the_reference_on_random_forests():
    model = model_for("treelstm", V=40)
    rng = np.random.default_rng(3)
    docs = []
    for _ in range(12):
        sizes = rng.integers(1, 16, rng.integers(1, 4))
        docs.append(TreeDoc(rng.integers(2, 40, sizes.sum()), list(np.cumsum([0, *sizes[:-1]])),
                            [random_tree(int(n), rng) for n in sizes]))
    forest = make_forest(docs)
    with torch.no_grad():
        roots = model.roots(forest)
        want = torch.stack([model.reference_states(doc.ids[s:s + len(t) + 1], t)[-1]
                            for doc in docs for s, t in zip(doc.starts, doc.trees)])
    torch.testing.assert_close(roots, want, rtol=1e-5, atol=1e-6)
