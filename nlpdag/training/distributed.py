"""Multi-process training with torch.distributed, for stages launched by `torchrun`.

Every function answers for a single process too (rank 0 of 1), so the stages call them unconditionally
and a plain `python -m stages.X` run takes none of the distributed paths.

- `setup()`: under torchrun (WORLD_SIZE > 1 in the environment) joins the process group (NCCL when CUDA
  is available, else gloo) and pins the process to GPU LOCAL_RANK; leaves it at the end.
- `shard(index)`: this rank's part of a global batch. Every rank builds the same global batches (same
  seed, same epoch) and takes a contiguous slice of each, so the global batch is the one a single
  process would train on. Slices may differ in size by one; `loss_weight` scales each rank's mean loss
  by world_size * n_rank / n_batch so that DDP's average of the ranks' gradients is exactly the
  gradient of the batch's mean loss (nothing padded, nothing dropped).
- `sum_over_ranks`, `sharded_mean` (validation split over the ranks), `broadcast`: the few
  collectives the trainer and the stages need.
"""
from __future__ import annotations

import contextlib
import gc
import os
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def launched() -> bool:
    """True when torchrun (or anything setting its variables) started more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextlib.contextmanager
def setup() -> Iterator[None]:
    """Join the process group when launched as one of several processes; a no-op otherwise, or when
    the caller already joined one."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    ok = False
    try:
        yield
        ok = True
    finally:
        # A DistributedDataParallel wrapper left in a reference cycle holds the group; were it freed
        # during interpreter shutdown, gloo's worker threads would be destroyed unjoined and abort the
        # process ("terminate called without an active exception"). So: free it now, wait until every
        # rank is past its last collective, and only then leave the group.
        gc.collect()
        if ok:
            dist.barrier()
        dist.destroy_process_group()
        gc.collect()


def local_device(device: torch.device) -> torch.device:
    """This rank's GPU for a CUDA device (setup() made it the current one)."""
    if device.type == "cuda" and is_distributed():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def shard_bounds(n: int, world: int) -> np.ndarray:
    """(world + 1,) slice bounds: rank r's part of n items is [bounds[r], bounds[r + 1]); sizes differ by
    at most one."""
    return np.linspace(0, n, world + 1).round().astype(int)


def shard(index: np.ndarray) -> tuple[np.ndarray, float]:
    """(this rank's documents of the global batch `index`, its loss weight). A rank left without
    documents (a batch smaller than the world) gets the batch's first one at weight 0: it still has
    to join DDP's gradient all-reduce."""
    if not is_distributed():
        return index, 1.0
    world, r = world_size(), rank()
    bounds = shard_bounds(len(index), world)
    part = index[bounds[r]:bounds[r + 1]]
    if len(part) == 0:
        return index[:1], 0.0
    return part, world * len(part) / len(index)


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model in DistributedDataParallel (which copies rank 0's weights to every rank), or itself."""
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_sum(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over the ranks (in place), the tensor itself in a single process."""
    if is_distributed():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def sum_over_ranks(values: list, device: torch.device) -> list[float]:
    """Numbers (or 0-d tensors) summed over the ranks, in float64 (token counts pass 2^24)."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    return all_sum(t).tolist()


def sharded_mean(evaluate, model: torch.nn.Module, seqs: list, labels, device: torch.device) -> tuple[float, float]:
    """`evaluate(model, seqs, labels, device=)` -> (mean loss, accuracy) over all ranks, each scoring
    every world_size-th document; the all-reduced result is the same on every rank, so all of them
    take the same early-stopping decision."""
    if not is_distributed():
        return evaluate(model, seqs, labels, device=device)
    r, w = rank(), world_size()
    part = seqs[r::w]
    loss, accuracy = evaluate(model, part, np.asarray(labels)[r::w], device=device)
    total_loss, total_correct = sum_over_ranks([loss * len(part), accuracy * len(part)], device)
    return total_loss / len(seqs), total_correct / len(seqs)


def broadcast(obj: object, src: int = 0) -> object:
    """Rank `src`'s (picklable) object on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def rank_seed(seed: int, epoch: int) -> int:
    """A seed for the global torch generator (dropout) of this rank in this epoch: the ranks draw
    different masks, and a resumed run draws the same ones without saving every rank's RNG state."""
    return int(np.random.SeedSequence([seed, epoch, rank()]).generate_state(1)[0])
