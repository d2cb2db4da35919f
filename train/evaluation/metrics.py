"""Landmark error metrics: normalised mean error (NME), failure rate, AUC and the CED curve.

numpy only; matplotlib is imported inside ``plot_ced`` (Agg canvas, no pyplot state).

Per image, NME is the mean over visible points of the Euclidean error divided by a normalising
distance (as both papers score). Kinds of normalising distance:

- ``outer_eye``: distance between the layout's two outer eye corners (its eye centres where a
  layout has no corners, e.g. MTFL's 5 points: the "inter-ocular" distance of the 2016 paper).
- ``eye_centres``: distance between the eye centres, each the mean of its group; for ibug68 the
  mean of the corners (36, 39) and (42, 45), as the 2016 code's 300W metric.
- ``pupils``: distance between the pupils, each the mean of the 6 points of an eye for ibug68.
- ``box``: sqrt(width * height) of the bounding box of the image's visible ground-truth points.
  This is our AFLW-Full convention ("normalised by face size"): it needs no detector box, so it
  is the same for every reader of the data.

For the eye kinds, an image whose normalising points are not all visible gets NaN (and so a NaN
NME, which the summaries exclude and count).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from realtime.core.atomic import atomic_path
from realtime.core.errors import UserError
from realtime.geometry.layouts import Layout

log = logging.getLogger(__name__)

NORM_KINDS = ("outer_eye", "eye_centres", "pupils", "box")


def _eye_groups(layout: Layout, kind: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if kind == "outer_eye":
        return (layout.outer_eye[0],), (layout.outer_eye[1],)
    return layout.eye_centres if kind == "eye_centres" else layout.pupils


def _check_kind(layout: Layout, kind: str, num_points: int) -> None:
    if kind not in NORM_KINDS:
        raise UserError(f"unknown normalising distance {kind!r}; known: {', '.join(NORM_KINDS)}")
    if num_points != layout.num_points:
        raise UserError(f"layout {layout.name!r} has {layout.num_points} points, the data {num_points}")
    if kind != "box":
        groups = _eye_groups(layout, kind)
        if any(len(g) == 0 or min(g) < 0 or max(g) >= num_points for g in groups):
            raise UserError(f"layout {layout.name!r} does not define the points for {kind!r}")


def normalising_distance(gt: np.ndarray, visible: np.ndarray, layout: Layout, kind: str) -> np.ndarray:
    """(N, K, 2) ground truth, (N, K) visibility -> (N,) float64 normalising distances."""
    gt = np.asarray(gt, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    _check_kind(layout, kind, gt.shape[1])
    if kind == "box":
        return _box_size(gt, visible)
    left, right = (list(g) for g in _eye_groups(layout, kind))
    distance = np.linalg.norm(gt[:, left].mean(1) - gt[:, right].mean(1), axis=-1)
    usable = visible[:, left + right].all(1)
    if not usable.all():
        log.warning("%d of %d images lack a visible point for the %s distance; their NME is NaN",
                    int((~usable).sum()), len(usable), kind)
    return np.where(usable, distance, np.nan)


def _box_size(gt: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """sqrt(w * h) of each image's visible points' bounding box; NaN with no visible point."""
    lo = np.where(visible[..., None], gt, np.inf).min(1)
    hi = np.where(visible[..., None], gt, -np.inf).max(1)
    with np.errstate(invalid="ignore"):
        size = hi - lo
        return np.where(visible.any(1), np.sqrt(size[:, 0] * size[:, 1]), np.nan)


def nme(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Per-image NME (N,): mean over visible points of ||pred - gt|| / norm.

    ``pred``, ``gt`` (N, K, 2); ``visible`` (N, K) bool; ``norm`` (N,). NaN for an image with no
    visible point or a NaN norm.
    """
    error = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)
    visible = np.asarray(visible, dtype=bool)
    count = visible.sum(1)
    total = np.where(visible, error, 0.0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan) / np.asarray(norm, np.float64)


def _finite(errors: np.ndarray) -> np.ndarray:
    errors = np.asarray(errors, dtype=np.float64).ravel()
    return errors[np.isfinite(errors)]


def auc(errors: np.ndarray, threshold: float) -> float:
    """Area under the CED curve on [0, threshold], divided by threshold; exact.

    With CED(e) = fraction of images with error <= e, the integral is mean(max(0, t - e_i)).
    """
    errors = _finite(errors)
    return float(np.clip(threshold - errors, 0.0, None).mean() / threshold) if errors.size else np.nan


def summarise(errors: np.ndarray, thresholds: tuple[float, ...] = (0.08, 0.10)) -> dict[str, float]:
    """Mean, median, and per threshold t the failure rate (fraction with NME > t) and AUC@t.

    NaN errors are excluded and counted in ``"excluded"``; ``"count"`` is the images used.
    Keys: count, excluded, mean, median, ``failure@<t>``, ``auc@<t>`` (t as ``f"{t:g}"``).
    """
    all_errors = np.asarray(errors, dtype=np.float64).ravel()
    finite = _finite(all_errors)
    empty = finite.size == 0
    out = {
        "count": int(finite.size),
        "excluded": int(all_errors.size - finite.size),
        "mean": np.nan if empty else float(finite.mean()),
        "median": np.nan if empty else float(np.median(finite)),
    }
    for t in thresholds:
        out[f"failure@{t:g}"] = np.nan if empty else float((finite > t).mean())
        out[f"auc@{t:g}"] = auc(finite, t)
    return out


def ced_curve(errors: np.ndarray, max_error: float) -> np.ndarray:
    """(M, 2) vertices (error, fraction of images with NME <= error) of the exact CED step curve.

    Runs from error 0 to ``max_error``; integrating it with the trapezoid rule is exact.
    """
    errors = np.sort(_finite(errors))
    n = max(errors.size, 1)
    inside = errors[errors <= max_error]
    m = inside.size
    x = np.concatenate([[0.0], np.repeat(inside, 2), [max_error]])
    steps = np.stack([np.arange(m), np.arange(1, m + 1)], axis=1).ravel() / n
    y = np.concatenate([[0.0], steps, [m / n]])
    return np.stack([x, y], axis=1)


def plot_ced(curves: dict[str, np.ndarray], path: str | Path, max_error: float = 0.10,
             title: str = "Cumulative error distribution") -> None:
    """Plot named ``ced_curve`` outputs into a PNG at ``path`` (written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, curve in curves.items():
        ax.plot(curve[:, 0], curve[:, 1], label=name)
    ax.set(xlim=(0, max_error), ylim=(0, 1), xlabel="NME", ylabel="fraction of images", title=title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
