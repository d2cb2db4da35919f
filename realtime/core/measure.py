"""What the benchmarks share: the machine in words, the mean time of a call, and a path as the
committed tables show it (relative to the repository when inside it)."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]  # realtime/core/measure.py -> the checkout


def machine() -> str:
    """CPU model, core count, torch version and threads, and the GPU when there is one."""

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when inside it (the tables are committed), else as given."""
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)





def seconds_per_call(backend, x, device: str, seconds: float) -> float:
    """Mean wall time of ``backend(x)`` over at least 3 calls and ``seconds``, after 3 warm-up calls."""
    for _ in range(3):
        backend(x)
    _sync(device)
    count, start = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - start < seconds:
        backend(x)
        count += 1
    _sync(device)
    return (time.perf_counter() - start) / count


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
