"""The progress table of a long run trained in chunks (``python -m train.faces68 --minutes M``).

One Markdown row per chunk, appended atomically when the chunk ends: the updates it covered, its
hours and the run's total (wall-clock hours on the machine named in the row; ``state['seconds']`` of the
checkpoint, which sums the chunks), faces seen, and the hold-out NME of the chunk's last weights. The
table and the run's small checkpoint are committed together, so the next working period, on any
machine, resumes from exactly where the row says.
"""
from __future__ import annotations

import datetime
from pathlib import Path

from realtime.core.atomic import write_text_atomic

HEADER = ("| chunk | date | updates | hours (chunk / total) | faces seen | hold-out NME, outer eyes (eye centres) "
          "| hold-out > 10% | machine |\n|---|---|---|---|---|---|---|---|\n")


def append_row(path: Path, title: str, start_step: int, step: int, total_steps: int, chunk_seconds: float,
               total_seconds: float, batch_size: int, holdout: dict, machine: str) -> str:
    """Append one chunk's row to the table at ``path`` (created with ``title`` and the header if
    missing); returns the row. ``holdout`` is ``set_nme``'s result (``outer_eye`` and
    ``eye_centres`` entries)."""
    text = path.read_text() if path.is_file() else f"# {title}\n\n{HEADER}"
    chunk = sum(1 for line in text.splitlines() if line.startswith("| ") and line[2:3].isdigit()) + 1
    outer, centres = holdout["outer_eye"], holdout["eye_centres"]
    row = (f"| {chunk} | {datetime.date.today().isoformat()} | {start_step:,} -> {step:,} of {total_steps:,} | "
           f"{chunk_seconds / 3600:.2f} / {total_seconds / 3600:.2f} | {step * batch_size:,} | "
           f"{outer['mean_pct']:.2f} ({centres['mean_pct']:.2f}) | {outer['failure@0.10_pct']:.1f}% | {machine} |\n")
    write_text_atomic(path, text + row)
    return row
