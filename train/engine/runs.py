"""Training runs as the recipes drive them: run or resume to completion, the equivalent
``python -m train fit`` command of a config (for the reports), and the hardware in words.

Library code of the recipes (``train.reproduce``, ``train.faces68``, ``train.faces68_ablate``), kept
out of their command-line modules so that no module imports a command line.
"""
from __future__ import annotations

from pathlib import Path

from realtime.core.measure import machine
from train.engine.checkpoint import load_checkpoint
from train.engine.fit_config import FitConfig
from train.engine.fit import fit
from train.engine.speed import LoopSettings


def hardware() -> str:
    """The machine in words, as every report names it (``realtime.core.measure.machine``)."""
    return machine()


def command_line(cfg: FitConfig) -> str:
    """The ``python -m train fit`` command equivalent to ``cfg``."""
    default = FitConfig(preset=cfg.preset, data=cfg.data, out=cfg.out)
    parts = ["python -m train fit"]
    for key, value in cfg.to_dict().items():
        if value == getattr(default, key) and key not in ("preset", "data", "out"):
            continue
        flag = "--" + key.replace("_", "-")
        if key == "occluder":
            parts.append("--no-occluder")
        elif isinstance(value, bool):
            parts.append(flag)
        elif key in ("branch_mask", "level_widths"):
            parts.append(f"{flag} {','.join(map(str, value))}")
        else:
            parts.append(f"{flag} '{value}'" if "?" in str(value) else f"{flag} {value}")
    return " ".join(parts)


def saved_progress(run_dir: str | Path) -> tuple[int, float]:
    """(update, training seconds) of the run's last checkpoint (``last.pt``); (0, 0.0) before its first."""
    last = Path(run_dir) / "last.pt"
    if not last.is_file():
        return 0, 0.0
    ckpt = load_checkpoint(last)
    return ckpt["step"], float(ckpt["state"].get("seconds", 0.0))


def run_or_resume(cfg: FitConfig, device: str = "cpu", minutes: float | None = None,
                  loop: LoopSettings = LoopSettings(), start: tuple[int, float] | None = None) -> dict:
    """Train ``cfg`` on ``device``, resuming a partial run: to completion, or (``minutes``) for one
    chunk of at most that long; returns the run's summary with ``start_step``, where this call began.
    ``start``, the (update, training seconds) of the run's last checkpoint, spares a caller that has
    read it already a second read here (``fit`` still loads it to resume)."""
    last = Path(cfg.out) / "last.pt"
    if not last.is_file():
        return {**fit(cfg, device=device, minutes=minutes, loop=loop), "start_step": 0}
    if start is None:
        start = saved_progress(cfg.out)
    if start[0] >= cfg.steps:
        return {"step": start[0], "start_step": start[0], "seconds": start[1], "skipped": True}
    return {**fit(cfg, resume=True, device=device, minutes=minutes, loop=loop), "start_step": start[0]}
