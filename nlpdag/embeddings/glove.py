"""Stage `glove`: GloVe word vectors (Pennington et al., 2014) trained with PyTorch on the `cooccur` counts.

The objective is the paper's weighted least squares over the non-zeros of X,

    J = sum_ij f(x_ij) (w_i . w~_j + b_i + b~_j - log x_ij)^2,   f(x) = min(1, (x / x_max)^alpha),

minimised with AdaGrad over shuffled mini-batches of non-zeros; the vectors written are W + W~.

The update is Stanford's C `glove` (glove.c, `glove_thread`) made batched, so that the same settings
give the same vectors quality:
- parameters start uniform in [-0.5, 0.5) / size (biases too) and AdaGrad's accumulators at 1.0;
- the accumulator of a word-vector component sums (eta * g)^2, the square of the *scaled*
  gradient, so eta sets the first steps and the later ones tend to g / sqrt(sum g^2) (GloVe issue
  #134); bias steps are not scaled by eta at all (GloVe PR #209, which found scaling them hurt);
- each component of a pair's vector gradient is clipped to [-100, 100] (the C tool's
  grad_clip_value) before scaling;
- a step uses the accumulator as it was before the step's own gradient was added.
What batching changes: the C tool updates after every pair, we after every batch. A word met k times
in a batch gets the sum of k per-pair steps, each divided by the accumulator from before the batch,
and k squared gradients added to it (not the square of their sum, which would shrink later steps
far below the C tool's). With small batches (most words at most once per batch) this is the C
tool's sequential AdaGrad up to the staleness inside one batch.

All parameters and accumulators live in one (2V, 2W) matrix, W = size + 2 rounded up to a multiple
of 8, so that one gather and one scatter (the bulk of the time, as both are bound by memory
latency) serve a whole batch: the parameters of row i < V are [w_i, b_i, 1, 0...], of row V + j
[w~_j, 1, b~_j, 0...] (so their dot product is w_i . w~_j + b_i + b~_j; the constant and padding
columns get a zero step), followed by their W accumulators.

Under `torchrun --nproc_per_node N -m stages.glove` the processes split every batch (`_epoch_sharded`)
and process 0 writes. Output: data/embeddings/glove.parquet and .txt, reports/train/glove.json,
reports/plots/glove_loss.csv.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import torch

from nlpdag.training import distributed as dd
from nlpdag.training.devices import resolve_device
from nlpdag.errors import StageError
from nlpdag.io.tables import atomic_path, read_table

from nlpdag.catalog.cooccur import COOCCUR

from nlpdag.catalog.embeddings import GLOVE_LOSS

from nlpdag.catalog.tokenise import VOCAB
METHOD = "glove"

GRAD_CLIP = 100.0  # glove.c's grad_clip_value

Callback = Callable[[int, float, "Glove"], bool | None]


def weighting(x: torch.Tensor, x_max: float, alpha: float) -> torch.Tensor:
    """f(x) = min(1, (x / x_max)^alpha)."""
    return (x / x_max).pow(alpha).clamp(max=1.0)


def row_width(size: int) -> int:
    """Parameters per state row: size + 2, padded with zeros to a multiple of 8 floats (a 32-byte
    AVX vector); that alone makes the elementwise ops of a step ~25% faster than at size + 2."""
    return -(-(size + 2) // 8) * 8


def initial_state(vocab_size: int, size: int, seed: int) -> torch.Tensor:
    """(2V, 2W) float32 on the CPU: parameters then AdaGrad accumulators, as glove.c starts them."""
    width = row_width(size)
    generator = torch.Generator().manual_seed(seed)
    state = torch.ones(2 * vocab_size, 2 * width)
    state[:, :width] = 0.0
    state[:, :size + 2] = (torch.rand(2 * vocab_size, size + 2, generator=generator) - 0.5) / size
    state[:vocab_size, size + 1] = 1.0  # word rows: [w, b, 1, 0...]
    state[vocab_size:, size] = 1.0  # context rows: [w~, 1, b~, 0...]
    return state


def residuals(word: torch.Tensor, context: torch.Tensor, log_x: torch.Tensor,
              f_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of 0.5 f diff^2, -f diff) of B pairs from their parameter rows word, context (B, W)."""
    diff = torch.linalg.vecdot(word, context).sub_(log_x)  # (B,)
    f_diff = diff * f_x
    return torch.dot(f_diff, diff) * 0.5, f_diff.neg_()


def side_step(got: torch.Tensor, other: torch.Tensor, neg_f_diff: torch.Tensor, learning_rate: float,
              bias_col: int, const_col: int, clip: float = GRAD_CLIP, out: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 2W) [step, grad^2] of one side of B pairs (their word rows or their context rows), to be
    added to those rows of the state.

    got: (B, 2W) the rows' [params, gradsq] gathered before the batch (its gradsq half is
    overwritten); other: (B, W) the params of each pair's other row; out: a (B, 2W) buffer.
    """
    width = got.shape[1] // 2
    update = torch.empty_like(got) if out is None else out  # [step, grad^2] per row, like `got`
    grad = update[:, width:]  # (B, W)
    # d/d(row) = f diff * (other row), negated and scaled by eta once per pair rather than per
    # component (index_add_ with alpha=1 is twice as fast as with -1).
    torch.mul(other, (neg_f_diff * learning_rate).unsqueeze(1), out=grad)
    grad.clamp_(-learning_rate * clip, learning_rate * clip)
    # The bias column takes the gradient unscaled and unclipped (as glove.c); the constant one none.
    grad[:, bias_col], grad[:, const_col] = neg_f_diff, 0.0
    # Each occurrence steps by -grad / sqrt(its row's accumulator before this batch).
    torch.mul(got[:, width:].rsqrt_(), grad, out=update[:, :width])
    grad.square_()
    return update


def side_update(state: torch.Tensor, index: torch.Tensor, got: torch.Tensor, other: torch.Tensor,
                neg_f_diff: torch.Tensor, learning_rate: float, bias_col: int, const_col: int,
                clip: float = GRAD_CLIP, out: torch.Tensor | None = None) -> None:
    """AdaGrad step, in place, of one side of B pairs at rows `index` (B,): `side_step`, then the scatter."""
    state.index_add_(0, index, side_step(got, other, neg_f_diff, learning_rate, bias_col, const_col, clip, out))


def adagrad_step(state: torch.Tensor, size: int, rows_i: torch.Tensor, rows_j: torch.Tensor,
                 log_x: torch.Tensor, f_x: torch.Tensor, learning_rate: float,
                 clip: float = GRAD_CLIP) -> torch.Tensor:
    """One batched AdaGrad step on B pairs, in place; returns the sum of 0.5 f diff^2 before the step.

    state: (2V, 2W) from `initial_state`; rows_i, rows_j: (B,) int64, rows i and V + j of each pair;
    log_x, f_x: (B,).
    """
    width = state.shape[1] // 2
    word, context = state.index_select(0, rows_i), state.index_select(0, rows_j)  # (B, 2W) each
    loss, neg_f_diff = residuals(word[:, :width], context[:, :width], log_x, f_x)
    side_update(state, rows_i, word, context[:, :width], neg_f_diff, learning_rate, size, size + 1, clip)
    side_update(state, rows_j, context, word[:, :width], neg_f_diff, learning_rate, size + 1, size, clip)
    return loss


def pack_pairs(rows_i: torch.Tensor, rows_j: torch.Tensor, log_x: torch.Tensor, f_x: torch.Tensor) -> torch.Tensor:
    """(N, 4) int32: parameter rows i and V + j, then log x and f(x) as float32 bits.

    One 16-byte record per pair, so a whole epoch is shuffled by a single gather.
    """
    if len(rows_j) and int(rows_j.max()) > torch.iinfo(torch.int32).max:
        raise ValueError("vocabulary too large for int32 row ids")
    packed = torch.empty(len(rows_i), 4, dtype=torch.int32)
    packed[:, 0], packed[:, 1] = rows_i, rows_j
    packed[:, 2:].view(torch.float32)[:, 0], packed[:, 2:].view(torch.float32)[:, 1] = log_x, f_x
    return packed


def unpack_pairs(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """rows_i, rows_j (B,) int64, log_x, f_x (B,) from (B, 4) packed records."""
    values = packed[:, 2:].view(torch.float32)
    return packed[:, 0].long(), packed[:, 1].long(), values[:, 0], values[:, 1]


def _tensor(values: np.ndarray | torch.Tensor, dtype: type) -> torch.Tensor:
    # A copy: Parquet columns arrive as read-only arrays, which torch will not wrap.
    if isinstance(values, torch.Tensor):
        return values.to(torch.from_numpy(np.empty(0, dtype)).dtype)
    return torch.from_numpy(np.array(values, dtype=dtype))


class Glove:
    """GloVe trained by batched AdaGrad. `fit(i, j, x)` takes the non-zeros of the co-occurrence matrix.

    Learned: `state_` (2V, 2 (size + 2)), parameters and AdaGrad accumulators as described in the
    module docstring; `loss_` (mean 0.5 f diff^2 per epoch); `device_`. As NumPy arrays: `W_`,
    `W_tilde_` (V, size), `bias_`, `bias_tilde_` (V,) and `vectors_` = W + W~.
    """

    def __init__(self, size: int = 100, x_max: float = 100.0, alpha: float = 0.75, learning_rate: float = 0.05,
                 epochs: int = 15, batch_size: int = 4096, device: str = "auto", seed: int = 0,
                 threads: int | None = None, callbacks: Sequence[Callback] | None = None):
        self.size = size
        self.x_max = x_max
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.device = device
        self.seed = seed
        self.threads = threads
        self.callbacks = callbacks

    def fit(self, i: np.ndarray | torch.Tensor, j: np.ndarray | torch.Tensor, x: np.ndarray | torch.Tensor,
            vocab_size: int | None = None) -> "Glove":
        device = dd.local_device(resolve_device(self.device, "glove.device"))
        i, j, x = _tensor(i, np.int64), _tensor(j, np.int64), _tensor(x, np.float32)
        if len(x) == 0:
            raise ValueError("no co-occurrences to train on")
        if vocab_size is None:
            vocab_size = int(max(i.max(), j.max())) + 1
        pairs = pack_pairs(i, j + vocab_size, x.log(), weighting(x, self.x_max, self.alpha)).to(device)
        del i, j, x

        self.state_ = initial_state(vocab_size, self.size, self.seed).to(device)
        self.device_ = str(device)
        self.loss_: list[float] = []
        self.seconds_: list[float] = []
        on_cpu = device.type == "cpu"
        generator = torch.Generator(device=device).manual_seed(self.seed)

        def shuffled() -> torch.Tensor:
            if on_cpu:
                torch.set_num_threads(1)
            return pairs.index_select(0, torch.randperm(len(pairs), generator=generator, device=device))

        saved_threads = torch.get_num_threads()
        # The next epoch's shuffle runs beside this epoch's steps (on the CPU it is ~10% of an epoch's
        # work); the order stays a function of the seed alone, as only that job draws from the generator.
        with ThreadPoolExecutor(2) as pool:
            upcoming = pool.submit(shuffled)
            try:
                if on_cpu:
                    # One intra-op thread: a step is ~10 small ops, and OpenMP's barrier after each one
                    # stalls for a scheduler slice whenever another process holds a core (measured: 20x
                    # slower). Our own two threads below sync once per batch instead.
                    torch.set_num_threads(1)
                for epoch in range(1, self.epochs + 1):
                    start = time.perf_counter()
                    epoch_pairs = upcoming.result()  # (N, 4), one contiguous slice per batch below
                    if epoch < self.epochs:
                        upcoming = pool.submit(shuffled)
                    if dd.is_distributed():
                        total = self._epoch_sharded(epoch_pairs)
                    elif on_cpu and self._threads() > 1:
                        total = self._epoch_two_threads(epoch_pairs, pool)
                    else:
                        total = self._epoch(epoch_pairs)
                    del epoch_pairs
                    loss = total / len(pairs)
                    self.loss_.append(loss)
                    self.seconds_.append(time.perf_counter() - start)
                    if any(callback(epoch, loss, self) for callback in self.callbacks or ()):
                        break
            finally:
                upcoming.cancel()
                torch.set_num_threads(saved_threads)
        return self

    def _threads(self) -> int:
        return min(2, self.threads or os.cpu_count() or 1)

    def _epoch(self, epoch_pairs: torch.Tensor) -> float:
        """One pass over the shuffled (N, 4) pairs in one thread; returns the summed loss."""
        total = torch.zeros((), dtype=torch.float64, device=epoch_pairs.device)
        for lo in range(0, len(epoch_pairs), self.batch_size):
            total += adagrad_step(self.state_, self.size, *unpack_pairs(epoch_pairs[lo:lo + self.batch_size]),
                                  self.learning_rate)
        return float(total)

    def _epoch_sharded(self, epoch_pairs: torch.Tensor) -> float:
        """`_epoch` over the processes of torch.distributed (torchrun): all of them draw the same
        shuffle, so the global batch is the single-process one, and each computes the steps of its
        contiguous slice of the batch. The steps are all-gathered (B x 2W floats a side, not the
        (2V, 2W) matrix: the update is sparse) and every process adds all of them, in the batch's
        order, to its own copy of the state, which on the CPU therefore stays the single-process state
        bit for bit. What is split is the gather of rows and the arithmetic; the scatter is not."""
        import torch.distributed as dist

        world, me = dd.world_size(), dd.rank()
        n, batch, width = len(epoch_pairs), self.batch_size, self.state_.shape[1] // 2
        mine = self.state_.new_zeros(2, -(-min(batch, n) // world), 2 * width)  # [side] steps of my slice
        gathered = [torch.empty_like(mine) for _ in range(world)]
        total = torch.zeros((), dtype=torch.float64, device=self.state_.device)
        for lo in range(0, n, batch):
            chunk = epoch_pairs[lo:lo + batch]
            bounds = dd.shard_bounds(len(chunk), world)
            rows_i, rows_j, log_x, f_x = unpack_pairs(chunk[bounds[me]:bounds[me + 1]])
            m = len(rows_i)
            word, context = self.state_.index_select(0, rows_i), self.state_.index_select(0, rows_j)  # (m, 2W)
            loss, neg_f_diff = residuals(word[:, :width], context[:, :width], log_x, f_x)
            side_step(word, context[:, :width], neg_f_diff, self.learning_rate, self.size, self.size + 1,
                      out=mine[0, :m])
            side_step(context, word[:, :width], neg_f_diff, self.learning_rate, self.size + 1, self.size,
                      out=mine[1, :m])
            total += loss
            dist.all_gather(gathered, mine)
            for s in (0, 1):
                steps = torch.cat([part[s, :hi - lo_] for part, lo_, hi in zip(gathered, bounds, bounds[1:])])
                self.state_.index_add_(0, chunk[:, s].long(), steps)  # (B, 2W) in the batch's order
        return dd.sum_over_ranks([total], self.state_.device)[0]

    def _epoch_two_threads(self, epoch_pairs: torch.Tensor, pool: ThreadPoolExecutor) -> float:
        """`_epoch` split over two threads by rows, not pairs, so that no row is written by both and
        the result is bit for bit the one-thread result. Per batch, each thread gathers its side's
        rows (word rows i < V; context rows V + j), both meet, then each computes the residuals
        (twice, to spare a second meeting) and steps its own side. The gathers are double-buffered,
        as one thread may gather batch k + 1 while the other still reads batch k."""
        n, batch, width = len(epoch_pairs), self.batch_size, self.state_.shape[1] // 2
        got = self.state_.new_empty(2, 2, min(batch, n), 2 * width)  # [side][batch parity] (B, 2W)
        out = self.state_.new_empty(2, min(batch, n), 2 * width)  # [side] (B, 2W)
        meet = threading.Barrier(2)

        def side(s: int) -> float:
            torch.set_num_threads(1)
            bias_col, const_col = (self.size, self.size + 1) if s == 0 else (self.size + 1, self.size)
            total = torch.zeros((), dtype=torch.float64)
            try:
                for k, lo in enumerate(range(0, n, batch)):
                    chunk = epoch_pairs[lo:lo + batch]
                    m, buf = len(chunk), k % 2
                    index = chunk[:, s].long()
                    mine = torch.index_select(self.state_, 0, index, out=got[s, buf, :m])
                    meet.wait()
                    word, context = got[0, buf, :m, :width], got[1, buf, :m, :width]
                    values = chunk[:, 2:].view(torch.float32)
                    loss, neg_f_diff = residuals(word, context, values[:, 0], values[:, 1])
                    side_update(self.state_, index, mine, context if s == 0 else word, neg_f_diff,
                                self.learning_rate, bias_col, const_col, out=out[s, :m])
                    total += loss
            except BaseException:
                meet.abort()  # the other thread stops at its next meeting instead of waiting forever
                raise
            return float(total)

        context_side = pool.submit(side, 1)
        try:
            total = side(0)
        except BaseException:
            cause = context_side.exception()  # waits for it to stop
            if cause is not None and not isinstance(cause, threading.BrokenBarrierError):
                raise cause from None
            raise
        context_side.result()
        return total

    def _part(self, rows: slice, cols: slice | int) -> np.ndarray:
        return self.state_[rows, cols].cpu().numpy()

    @property
    def vocab_size_(self) -> int:
        return self.state_.shape[0] // 2

    @property
    def W_(self) -> np.ndarray:
        return self._part(slice(0, self.vocab_size_), slice(0, self.size))

    @property
    def W_tilde_(self) -> np.ndarray:
        return self._part(slice(self.vocab_size_, None), slice(0, self.size))

    @property
    def bias_(self) -> np.ndarray:
        return self._part(slice(0, self.vocab_size_), self.size)

    @property
    def bias_tilde_(self) -> np.ndarray:
        return self._part(slice(self.vocab_size_, None), self.size + 1)

    @property
    def vectors_(self) -> np.ndarray:
        return self.W_ + self.W_tilde_


def read_inputs(cooccur: str = COOCCUR, vocab: str = VOCAB) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, i, j, x) from the `cooccur` and vocabulary tables."""
    table = read_table(cooccur, columns=["i", "j", "x"])
    tokens = read_table(vocab, columns=["token"]).column("token").to_pylist()
    i, j, x = (table.column(c).to_numpy() for c in ("i", "j", "x"))
    return tokens, i, j, x


def check_inputs(tokens: Sequence[str], i: np.ndarray, j: np.ndarray, size: int) -> None:
    if len(i) == 0:
        raise StageError(f"{COOCCUR}: the co-occurrence matrix has no entries (nothing to train GloVe on)")
    if len(tokens) < size:
        raise StageError(f"{VOCAB}: the vocabulary has {len(tokens)} words, fewer than glove.size={size} "
                         f"(lower glove.size or use a larger corpus)")
    top = int(max(i.max(), j.max()))
    if top >= len(tokens) or min(int(i.min()), int(j.min())) < 0:
        raise StageError(f"{COOCCUR}: word id {top} is outside the vocabulary of {len(tokens)} words "
                         f"(rerun the cooccur stage)")


def write_loss_csv(loss: Sequence[float], path: str = GLOVE_LOSS) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("epoch,loss\n")
        for epoch, value in enumerate(loss, start=1):
            f.write(f"{epoch},{value:.8g}\n")
