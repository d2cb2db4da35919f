"""``python -m train bench``: faces/s of the real training loop under several ``LoopSettings``, and where
each update's time goes.

``fast_1thread`` is the loop on one core: on 2 cores this small network scales poorly across two
threads, and a second process on the machine stalls every two-thread op (each waits for the thread
that was preempted), so one thread per job and two jobs side by side use the machine better.

Each variant runs ``train.engine.fit.fit`` itself (the real data, model, loss and optimiser of the
recipe, from its ``--init``) for ``warmup + updates`` updates in a fresh scratch folder, with
validation and checkpoints pushed past the end (they cost the same in every variant). The
variants are interleaved round by round, so a slow spell of the machine hits all of them; the
report gives each round's faces/s, the median, the ratio to the first variant per round, and
the split: waiting for data, forward (the loss), backward, optimiser. faces per CPU-second
(this process's CPU time, workers excluded) is printed beside wall-clock faces/s.
"""
from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from train.engine.fit_config import FitConfig
from train.engine.fit import fit
from train.engine.speed import PHASES, LoopSettings, StepTimer


@dataclass(frozen=True)
class Variant:
    """One way to run the loop: its ``LoopSettings`` (how the updates use the machine) and whether
    the passes run under bf16 autocast (``--bf16``, a setting of the run: fp32 weights and optimiser)."""

    loop: LoopSettings
    bf16: bool = False


VARIANTS = {
    "today": Variant(LoopSettings.today()),
    "channels_last": Variant(LoopSettings(channels_last=True, workers=0)),
    "workers": Variant(LoopSettings(channels_last=False, workers=1)),
    "fast": Variant(LoopSettings()),
    "fast_1thread": Variant(LoopSettings(threads=1)),
    "fast_bf16": Variant(LoopSettings(), bf16=True),
    "fast_bf16_1thread": Variant(LoopSettings(threads=1), bf16=True),
}


def timed_updates(cfg: FitConfig, loop: LoopSettings, updates: int, warmup: int = 3, device: str = "cpu") -> dict:
    """``StepTimer.summary`` of ``updates`` of ``cfg``'s real training loop after ``warmup``, in a
    scratch folder (nothing kept); torch's thread count is restored after."""
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="rcn-bench-") as tmp:
        run = replace(cfg, out=str(Path(tmp) / "run"), steps=10**9, eval_every=10**9)
        timer = StepTimer(skip=warmup)
        fit(run, stop_after=warmup + updates, progress=False, device=device, loop=loop, timer=timer,
            save_at_stop=False)
    torch.set_num_threads(threads)  # a run's thread count must not leak into the next
    return timer.summary(cfg.batch_size)


def bench_loop(cfg: FitConfig, variants: list[str], rounds: int = 3, updates: int = 20, warmup: int = 3) -> dict:
    """{variant: [summary per round]} (``StepTimer.summary``)."""
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(rounds):
        for name in variants:
            variant = VARIANTS[name]
            run = replace(cfg, lr_schedule="constant", bf16=variant.bf16)
            results[name].append(timed_updates(run, variant.loop, updates, warmup))
    return results


def render(results: dict, title: str) -> str:
    """The report as Markdown: per-round faces/s and ratios, then the median split per variant."""
    names = list(results)
    base = results[names[0]]
    rounds = len(base)
    lines = [f"# {title}", "", "faces/s per round (wall clock), and the ratio to `" + names[0] + "` in the same round", "",
             "| variant | " + " | ".join(f"round {i + 1}" for i in range(rounds)) + " | median | ratio per round |",
             "|---|" + "---|" * (rounds + 2)]
    for name in names:
        fps = [r["faces_per_s"] for r in results[name]]
        ratios = [r["faces_per_s"] / b["faces_per_s"] for r, b in zip(results[name], base)]
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in fps) + f" | {statistics.median(fps):.1f} | "
                     + ", ".join(f"{v:.2f}x" for v in ratios) + " |")
    lines += ["", "median ms per update by phase (wall clock; CPU ms of the main process in brackets), faces per CPU-second", "",
              "| variant | " + " | ".join(PHASES) + " | faces per CPU-s |", "|---|" + "---|" * (len(PHASES) + 1)]
    for name in names:
        rows = results[name]
        cells = [f"{statistics.median(r['ms'][p] for r in rows):.0f} ({statistics.median(r['cpu_ms'][p] for r in rows):.0f})"
                 for p in PHASES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {statistics.median(r['faces_per_cpu_s'] for r in rows):.1f} |")
    return "\n".join(lines) + "\n"
