"""Building a backend by name, ``auto`` included: the one entry point above the registry and ``auto``
(``auto`` measures the registry's backends, so neither of them may import this)."""
from __future__ import annotations

import torch
from torch import nn

from realtime.backends.auto import pick_backend
from realtime.backends.base import Backend, build_threads, inference_precision
from realtime.backends.registry import BACKENDS, BUILDERS, available_backends
from realtime.core.errors import UserError
from realtime.models.weights import torch_device


def make_backend(name: str, model: nn.Module, device: str | torch.device = "cpu", *, decoder: str = "softargmax",
                 beta: float = 1.0, batch_size: int = 1, threads: int | None = None) -> Backend:
    """Build backend ``name`` ("auto": see ``auto.pick_backend``) for the fp32 ``model`` (on
    ``device``, in eval mode). ``batch_size`` is the batch the caller expects: compiled backends
    build for its bucket, and ``auto`` times it. ``threads`` the intra-op threads of ONNX
    Runtime and OpenVINO (None: torch's count; ``base.build_threads``). UserError, in one line,
    for an unknown or unavailable name."""
    device = torch_device(device, need_available=False)
    inference_precision(device)
    with build_threads(threads):
        return _build(name, model, device, decoder, beta, batch_size)


def _build(name: str, model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
    if name == "auto":
        return pick_backend(model, device, decoder=decoder, beta=beta, batch_size=batch_size)
    if name not in BUILDERS:
        raise UserError(f"unknown backend {name!r}; choose auto or one of {', '.join(BACKENDS)}")
    reason = available_backends(device)[name]
    if reason is not None:
        raise UserError(f"backend {name!r} cannot run on {device} here: {reason}")
    return BUILDERS[name](model, device, decoder, float(beta), max(1, int(batch_size)))
