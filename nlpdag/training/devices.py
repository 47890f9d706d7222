"""Where a model trains: the device a params.yaml `device` key asks for, and mixed precision there."""
from __future__ import annotations

import contextlib

import torch

from nlpdag.errors import StageError


def resolve_device(device: str, param: str) -> torch.device:
    """auto: CUDA when available; cuda without CUDA is a StageError naming `param`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise StageError(f"{param}=cuda but CUDA is not available on this machine (set {param} to auto or cpu)")
    return torch.device(device)


def autocast(device: torch.device, enabled: bool):
    """float16 autocast on CUDA when enabled; nothing on the CPU (whose numbers stay float32)."""
    on = enabled and device.type == "cuda"
    return torch.autocast("cuda", dtype=torch.float16) if on else contextlib.nullcontext()
