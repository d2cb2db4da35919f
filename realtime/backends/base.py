"""What every backend shares: the ``Backend`` object, the network-plus-decoder module that is
run or exported, batch buckets, the cache folder (``realtime.core.assets.backend_cache_dir``) and the keys that name things in it.

Shapes: crops ``x`` (B, C, S, S) float32 in [0, 1]; ``points`` (B, K, 2) float32 crop pixels
(x, y, pixel centres at integers); ``scores`` (B, K) float32 in (0, 1].
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from realtime.core.assets import backend_cache_dir as cache_dir  # noqa: F401 (re-exported: the backends' cache folder)
from realtime.models.decode import decode

Run = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
NumpyRun = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
MAX_BUCKET = 64  # larger batches run in chunks of this many
PARITY_TOLERANCE_PX = 0.1  # the most a backend's landmark may move from fp32 eager's, in crop pixels


def inference_precision(device: torch.device) -> None:
    """The precision policy of inference on CUDA: fp32 means IEEE fp32. TF32 (cuDNN convolutions
    and matmuls with a 10-bit mantissa, on by default for cuDNN) moved the scores of the fp32
    backends by up to 0.023 against eager on an H100 (parity limit 1e-3), so it is turned off for
    the process once a landmark backend is built on CUDA; the fast reduced-precision paths are
    the explicit ``fp16``/``bf16`` backends, gated by their own tolerance. cuDNN's autotuner is
    turned on (each batch bucket is a fixed shape), and the pipeline pays its cost before the
    first frame (``FrameProcessor.warmup``). Training sets its own policy (``train.engine.fit``: TF32 on).
    Nothing changes on a CPU."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True


def pipeline_threads() -> int:
    """Intra-op threads for the landmark runtime inside a pipeline: torch's count, less one core
    for the pipeline's other threads (decoding ahead, encoding, the window), at least one.

    On the 2-core host of docs/bench/speed.md one thread beat two wherever decoding ran beside
    the model (docs/bench/speed.md has the rounds): ONNX Runtime's second thread gained little
    (batch 1: 2.1 -> 1.4-2.9 ms, batch 5: 12.0 -> 12.6 ms, by the run) and took the core the
    capture and writer threads decode and encode on."""
    return max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) - 1))


@contextlib.contextmanager
def build_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` while a backend is built (None: left as
    is). ONNX Runtime and OpenVINO take their thread count from it when they are built, and
    ``auto`` times its candidates and keys its decision at it; the torch backends run later with
    torch's own count (``torch.set_num_threads``)."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Backend:
    """``backend(x (B, C, S, S) float32 on backend.device) -> (points (B, K, 2), scores (B, K))``.

    Decoding runs inside the backend (on the device, or inside the exported graph), so only
    coordinates and scores come out, never heat maps. Outputs are float32 torch tensors, on
    ``device`` for the torch backends and on the host for onnxruntime and OpenVINO; callers
    that want numpy take ``.cpu()``. ``note`` says how it was built (a precision, a fallback).
    """

    def __init__(self, name: str, device: torch.device, run: Run, note: str = "",
                 run_numpy: NumpyRun | None = None) -> None:
        self.name, self.device, self._run, self.note = name, device, run, note
        # the same computation for host arrays, without torch around it (the runtimes outside
        # torch): (B, C, S, S) float32 numpy -> float32 numpy points and scores; None for the others
        self.run_numpy = run_numpy

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            return self._run(x)

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, {str(self.device)!r}{', ' + self.note if self.note else ''})"


class Decoded(nn.Module):
    """The landmark network followed by its decoder: (B, C, S, S) -> (points, scores).

    ``autocast`` (bfloat16/float16) runs the network in that precision; the decoder always
    runs in float32 on float32 maps.
    """

    def __init__(self, model: nn.Module, decoder: str = "softargmax", beta: float = 1.0,
                 autocast: torch.dtype | None = None) -> None:
        super().__init__()
        self.model, self.decoder, self.beta, self.autocast = model, decoder, float(beta), autocast

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.autocast is None:
            logits = self.model(x)
        else:
            with torch.autocast(x.device.type, dtype=self.autocast):
                logits = self.model(x)
        return decode(logits.float(), self.decoder, self.beta)


def bucket(n: int) -> int:
    """The batch size a batch of ``n`` is padded to: the next power of two, at most MAX_BUCKET."""
    return min(MAX_BUCKET, 1 << max(0, int(n) - 1).bit_length())


def padded(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` (B, ...) grown to (size, ...) by repeating its last crop (a real image, so no
    normalisation sees a constant one)."""
    extra = size - x.shape[0]
    return x if extra <= 0 else torch.cat([x, x[-1:].expand(extra, *x.shape[1:])])


def chunked(run: Run, x: torch.Tensor, limit: int = MAX_BUCKET) -> tuple[torch.Tensor, torch.Tensor]:
    """``run`` over chunks of at most ``limit`` crops, results concatenated."""
    if x.shape[0] <= limit:
        return run(x)
    parts = [run(x[i:i + limit]) for i in range(0, x.shape[0], limit)]
    return torch.cat([p for p, _ in parts]), torch.cat([s for _, s in parts])


def model_digest(model: nn.Module, decoder: str, beta: float) -> str:
    """A short hash of what the backend computes: the configuration, every tensor's bytes, the
    decoder and beta. Two models with equal weights share exported files and decisions."""
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    h.update((config.to_json() if config is not None else type(model).__name__).encode())
    h.update(f"|{decoder}|{float(beta)!r}|".encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def package_version(name: str) -> str | None:
    """The installed version of a distribution, without importing it; None when absent."""

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    return frozenset(line.partition(":")[2].split())


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (for keys of timing decisions)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16() -> str | None:
    """The CPU's bf16 matrix instructions ("AMX" or "AVX512-BF16"), None without any."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "AMX"
    return "AVX512-BF16" if "avx512_bf16" in flags else None


def key_of(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:20]


def bucketed(run: Run, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``run`` on ``x`` padded to its bucket (chunks of MAX_BUCKET above that), so a compiled
    backend sees at most log2(MAX_BUCKET) + 1 batch shapes; the padding is cut off again."""
    def one(chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = chunk.shape[0]
        points, scores = run(padded(chunk, bucket(n)))
        return points[:n], scores[:n]
    return chunked(one, x)


def example_batch(model: nn.Module, batch: int, device: torch.device | str = "cpu", seed: int = 0) -> torch.Tensor:
    """A fixed, seeded (batch, C, S, S) crop batch in [0, 1] with image-like structure: smooth
    random shapes (6x6 noise upsampled) plus fine noise. For warm-ups, timing and ``auto``'s
    parity check."""
    config = model.config
    g = torch.Generator().manual_seed(seed)
    c, s = int(config.in_channels), int(config.input_size)
    coarse = torch.rand(batch, c, 6, 6, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(s, s), mode="bicubic", align_corners=False)
    x = x + 0.05 * torch.randn(batch, c, s, s, generator=g)
    return x.clamp_(0, 1).to(device)
