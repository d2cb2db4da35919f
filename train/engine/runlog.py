"""A run's CSV log and its PNG training curves."""
from __future__ import annotations

import csv
from pathlib import Path

from realtime.core.atomic import atomic_path

# the last four: the semi-supervised terms, unweighted (empty for a plain run; distil_loss: the
# teacher's maps on FitConfig.distil_data's faces)
COLUMNS = ["step", "epoch", "train_loss", "val_nme", "seconds", "landmark_loss", "attribute_loss", "elt_loss",
           "distil_loss"]


class RunLog:
    """Rows of ``COLUMNS`` in ``log.csv``; on resume, rows after the resumed step are dropped so
    the log matches an uninterrupted run."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.path = run_dir / "log.csv"
        self.rows: list[dict] = []
        if resume_step is not None and self.path.is_file():
            with self.path.open() as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._rewrite()

    def _rewrite(self) -> None:
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)

    def add(self, **row) -> None:
        self.rows.append({k: row.get(k, "") for k in COLUMNS})
        self._rewrite()

    def plot(self, path: Path, title: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
        tr = [(int(r["step"]), float(r["train_loss"])) for r in self.rows if r["train_loss"] != ""]
        va = [(int(r["step"]), 100 * float(r["val_nme"])) for r in self.rows if r["val_nme"] != ""]
        if tr:
            ax1.plot(*zip(*tr), lw=1)
        ax1.set(xlabel="update", ylabel="training loss", title="training loss")
        if va:
            ax2.plot(*zip(*va), marker="o", ms=3)
        ax2.set(xlabel="update", ylabel="NME (%)", title="validation NME")
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
        fig.suptitle(title)
        save_figure(fig, path, dpi=90)


def save_figure(fig, path: Path, dpi: int = 100) -> None:
    """Lay out a pyplot figure, write it to ``path`` as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
