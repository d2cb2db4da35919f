"""``auto``: the fastest backend whose landmarks match fp32 eager's, decided once per machine.

For each candidate available on the device: build it (a failure skips it, with the reason),
check parity against eager fp32 on a fixed seeded batch (``base.example_batch``: skipped when
any landmark moves more than ``tolerance_px`` crop pixels), then time every candidate left on a batch of the
caller's bucket, in interleaved rounds (``interleaved_ms``). The first candidate in
``AUTO_CANDIDATES``' order wins unless a later one is more than 10% faster (``winner``). The
decision is written to ``cache_dir()/auto/<key>.json``, the key covering the model's content,
decoder, device, CPU model, thread count, batch bucket and the runtimes' versions, so later
starts build only the winner. ``compile`` and ``tensorrt`` are left out by default: each start
would pay their build (16-21 s for torch.compile here); name them explicitly to use them.
"""
from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from realtime.core.atomic import write_text_atomic
from realtime.backends.base import (
    PARITY_TOLERANCE_PX, Backend, bucket, cache_dir, cpu_model, example_batch, key_of, model_digest,
    native_bf16, package_version,
)
from realtime.backends.registry import BUILDERS, available_backends
from realtime.core.errors import UserError

log = logging.getLogger(__name__)
AUTO_CANDIDATES = ("eager", "channels_last", "bf16", "fp16", "cudagraphs", "onnxruntime", "openvino", "openvino_bf16")
PARITY_BATCH = 16
TIMING_ROUNDS = 5
SWITCH_MARGIN = 0.10  # a later candidate must be this much faster to be picked (``winner``)
SCHEMA = 2  # 2: the exported runtimes run inference_form's graph, so decide again


def decision_path(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int,
                  candidates: Sequence[str], tolerance_px: float) -> Path:
    """Where the decision for this model, machine and batch bucket is kept."""
    fields = {
        "schema": SCHEMA, "model": model_digest(model, decoder, beta), "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu_model(), "bf16": native_bf16(), "threads": torch.get_num_threads(), "bucket": bucket(batch_size),
        "python": sys.version.split()[0], "candidates": list(candidates), "tolerance_px": tolerance_px,
        "versions": {p: package_version(p) for p in ("torch", "onnxruntime", "onnxruntime-gpu", "openvino",
                                                      "torch-tensorrt", "onnx", "onnxscript")},
    }
    return cache_dir() / "auto" / f"{key_of(fields)}.json"


def max_deviation_px(points: torch.Tensor, reference: torch.Tensor) -> float:
    """The largest Euclidean distance between corresponding landmarks (B, K, 2), in pixels."""
    return float((points.float().cpu() - reference.float().cpu()).norm(dim=-1).max())


def time_ms(backend: Backend, x: torch.Tensor, warm: int = 3, runs: int = 7) -> float:
    """Median milliseconds per call on ``x`` after ``warm`` untimed calls."""
    times = []
    for i in range(warm + runs):
        if backend.device.type == "cuda":
            torch.cuda.synchronize(backend.device)
        start = time.perf_counter()
        points, _ = backend(x)
        points.cpu()  # the result on the host, as every caller wants it
        if i >= warm:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def interleaved_ms(backends: dict[str, Backend], x: torch.Tensor, rounds: int = TIMING_ROUNDS) -> dict[str, float]:
    """Median milliseconds per call of each backend, timed in ``rounds`` rounds that take every
    backend in turn (the order rotated per round): a machine whose speed drifts while one
    candidate is timed (this project's 2-core hosts moved by up to 2x between runs) favours no one."""
    names = list(backends)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)] if names else []:
            times[name].append(time_ms(backends[name], x, warm=1, runs=5))
    return {name: statistics.median(values) for name, values in times.items()}


def winner(ms: dict[str, float], margin: float = SWITCH_MARGIN) -> str:
    """The candidate to run: the first in ``ms``'s order (AUTO_CANDIDATES') unless a later one is
    faster by more than ``margin``, and so on down the list. Timed alone, a runtime that hands
    each call to a worker thread of its own can look a few per cent faster and still lose inside
    a pipeline whose other threads want the cores: OpenVINO timed 3.60 ms against ONNX Runtime's
    3.84 on the 2-core AVX2 host, yet the API's processing ran at 171 fps on it against 198 on
    ONNX Runtime (5 interleaved passes over the bundled clip's decoded frames, 2026-12-07)."""
    best = None
    for name, value in ms.items():
        if best is None or value < ms[best] * (1.0 - margin):
            best = name
    if best is None:
        raise UserError("no backend could be timed")
    return best


def pick_backend(model: nn.Module, device: torch.device, *, decoder: str = "softargmax", beta: float = 1.0,
                 batch_size: int = 1, candidates: Sequence[str] = AUTO_CANDIDATES,
                 tolerance_px: float = PARITY_TOLERANCE_PX, use_cache: bool = True) -> Backend:
    """The fastest candidate within ``tolerance_px`` of eager fp32 at ``batch_size`` (eager
    itself when nothing beats it). Logs what it picked and why."""
    path = decision_path(model, device, decoder, beta, batch_size, candidates, tolerance_px)
    if use_cache and path.is_file():
        try:
            name = json.loads(path.read_text())["backend"]
            backend = BUILDERS[name](model, device, decoder, beta, batch_size)
            log.info("backend auto: %s (decided before, %s)", name, path)
            return backend
        except Exception as exc:  # noqa: BLE001 - a stale or broken decision: decide again
            log.warning("backend auto: the cached decision %s did not work (%s); deciding again", path, exc)
    backend, record = _decide(model, device, decoder, beta, batch_size, candidates, tolerance_px)
    write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True))
    timings = ", ".join(f"{k} {v:.2f}" for k, v in sorted(record["ms_per_batch"].items(), key=lambda kv: kv[1]))
    skipped = "; ".join(f"{k}: {v}" for k, v in record["skipped"].items())  # tried and refused
    log.info("backend auto: picked %s for batch %d on %s (ms per batch: %s)%s", backend.name, record["batch"],
             device, timings, f"; skipped {skipped}" if skipped else "")
    return backend


def _decide(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int,
            candidates: Sequence[str], tolerance_px: float) -> tuple[Backend, dict]:
    available = available_backends(device)
    if available["eager"] is not None:
        raise UserError(f"no backend can run on {device}: {available['eager']}")
    parity_x = example_batch(model, PARITY_BATCH, device)
    timing_x = example_batch(model, bucket(batch_size), device, seed=1)
    reference, _ = BUILDERS["eager"](model, device, decoder, beta, batch_size)(parity_x)
    built: dict[str, Backend] = {}
    ms: dict[str, float] = {}
    deviation: dict[str, float] = {}
    skipped: dict[str, str] = {}
    unavailable = {name: available[name] for name in candidates if available.get(name) is not None}
    for name in dict.fromkeys(("eager", *candidates)):
        if name in unavailable:
            continue
        try:
            backend = BUILDERS[name](model, device, decoder, beta, batch_size)
            deviation[name] = max_deviation_px(backend(parity_x)[0], reference)
            if deviation[name] > tolerance_px:
                skipped[name] = f"landmarks {deviation[name]:.3f} px from eager fp32 (> {tolerance_px})"
                continue
            time_ms(backend, timing_x, warm=2, runs=1)  # fails here, not in the rounds below
            built[name] = backend
        except Exception as exc:  # noqa: BLE001 - any backend that fails to build or run is skipped
            skipped[name] = f"failed: {type(exc).__name__}: {str(exc).strip()[:200]}"
    ms = interleaved_ms(built, timing_x)
    best = winner(ms)
    record = {"backend": best, "batch": bucket(batch_size), "device": str(device), "ms_per_batch": ms,
              "deviation_px": deviation, "skipped": skipped, "unavailable": unavailable,
              "decided_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return built[best], record
