"""How the training loop uses the machine, and where its time goes.

``LoopSettings`` are properties of a session, not of a run (like the device): they change how fast the
updates are computed, not which updates, so a run may resume under other settings. Measured on a 2-core
AMD EPYC (``docs/training_speed.md``, ``python -m train bench``): ``channels_last`` is what pays on the
CPU (oneDNN's convolutions run in NHWC without reorders), and a data-preparation process takes the crops
and jitter off the critical path.

``StepTimer`` splits each update into waiting for data, forward (the loss), backward and the optimiser
step, in wall-clock seconds and in this process's CPU seconds (the latter stays meaningful when other
work shares the machine).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch

PHASES = ("data", "forward", "backward", "optimiser")


@dataclass(frozen=True)
class LoopSettings:
    """``channels_last``: model and batches in NHWC memory order (4-D models only). ``workers``: data-
    preparation processes (0: in series on the main thread; items are seeded by (seed, epoch, index), so
    the batches are the same either way). ``threads``: torch's intra-op threads (None: leave torch's
    choice, one per core)."""

    channels_last: bool = True
    workers: int = 1
    threads: int | None = None

    @staticmethod
    def today() -> "LoopSettings":
        """The loop as it was before these settings existed (the bench's baseline)."""
        return LoopSettings(channels_last=False, workers=0)


@dataclass
class StepTimer:
    """Per-phase wall and CPU seconds over the updates after the first ``skip`` (warm-up)."""

    skip: int = 0
    wall: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    updates: int = 0
    seen: int = 0

    @contextlib.contextmanager
    def phase(self, name: str):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            if self.seen >= self.skip:
                self.wall[name] += time.perf_counter() - wall
                self.cpu[name] += time.process_time() - cpu

    def update_done(self) -> None:
        if self.seen >= self.skip:
            self.updates += 1
        self.seen += 1

    def summary(self, batch_size: int) -> dict:
        """faces/s (wall), faces per CPU-second, and ms per update for each phase."""
        wall, cpu = sum(self.wall.values()), sum(self.cpu.values())
        n = max(self.updates, 1)
        return {"updates": self.updates, "faces_per_s": batch_size * self.updates / wall if wall else float("nan"),
                "faces_per_cpu_s": batch_size * self.updates / cpu if cpu else float("nan"),
                "ms": {k: 1e3 * v / n for k, v in self.wall.items()},
                "cpu_ms": {k: 1e3 * v / n for k, v in self.cpu.items()}}


def apply_threads(settings: LoopSettings) -> None:
    """Set torch's intra-op thread count when the settings name one."""
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
