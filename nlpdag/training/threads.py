"""How many threads a stage computes with: its share of the cores.

`nlpdag run --jobs N` runs stages at once and hands each its share in $NLPDAG_THREADS (and the
OpenMP/MKL/OpenBLAS variables, which a stage process then pins to 1: stages/__init__.py); under plain
`dvc repro` a stage runs alone and its share is every core this process may use. A params.yaml thread setting is a whole number or `auto` (the
share). Only settings whose count cannot change the numbers are `auto` by default: gensim's workers
(several workers race by design, so their vectors differ from run to run anyway), openTSNE's n_jobs
and GloVe's two threads (bit for bit the one-thread result). PyTorch's training threads change the
order of float sums, so `classify.threads` is a tracked number.
"""
from __future__ import annotations

import os

ENV = "NLPDAG_THREADS"
# What the coordinator sets beside ENV, for the libraries that size their pools at import.
LIBRARY_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def machine_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share() -> int:
    """This stage's share of the cores: $NLPDAG_THREADS when a coordinator set it, else all of them."""
    value = os.environ.get(ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else machine_cores()


def resolve_threads(setting: int | str, most: int | None = None) -> int:
    """A params.yaml thread setting -> a count: `auto` is the share; `most` caps it (what the code can use)."""
    count = share() if setting == "auto" else int(setting)
    return max(1, min(count, most) if most else count)


def use_threads(count: int) -> int:
    """Make PyTorch and the BLAS/OpenMP pools of this process use `count` threads; returns it."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(count)
    threadpool_limits(count)
    return count


def child_env(count: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a stage process given `count` threads."""
    env = dict(os.environ if base is None else base)
    env[ENV] = str(count)
    for name in LIBRARY_ENV:
        env[name] = str(count)
    return env
