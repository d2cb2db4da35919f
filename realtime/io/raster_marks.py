"""Marks drawn into an image with OpenCV at sub-pixel positions: dots, line segments, a label.

numpy + cv2 only. Both overlays draw with these: the annotated video (``video_out.draw_overlay``)
and the live window (``realtime/gui/overlay_items.py``), which draws its marks into a copy of the
frame instead of keeping pyqtgraph items for them: with five faces of 68 points the items cost
the GUI thread about half of each frame (the scatter's per-point styles, every curve's bounds and
path each paint), and the GUI thread holding the GIL is what dropped live frames. OpenCV draws with
the GIL released; the Python left is one call per dot.

Coordinates are image pixels with pixel centres at integers (``realtime/__init__.py``), turned into
cv2's fixed point with ``SHIFT`` fractional bits, so a dot at x = 10.25 is drawn a quarter pixel
right of pixel 10's centre. Colours are RGB tuples (the frames are RGB).
"""
from __future__ import annotations

import cv2
import numpy as np

SHIFT = 4  # fractional bits of cv2's sub-pixel drawing
FONT_HEIGHT_PX = 22.0  # height of FONT_HERSHEY_SIMPLEX's digits at scale 1


def fixed(xy: np.ndarray) -> np.ndarray:
    """Image pixels (..., 2) -> cv2's fixed-point int32 coordinates with ``SHIFT`` fractional bits."""
    return np.round(np.asarray(xy, np.float64) * (1 << SHIFT)).astype(np.int32)


def fixed_point(xy: np.ndarray) -> tuple[int, int]:
    """One (x, y) as the int pair cv2's ``line``/``rectangle``/``circle`` take."""
    x, y = fixed(xy).tolist()
    return x, y


def draw_dots(out: np.ndarray, points: np.ndarray, radius_px: float, rgb: tuple[int, ...] | np.ndarray,
              outline_rgb: tuple[int, ...] | None = None) -> None:
    """Filled anti-aliased dots of ``radius_px`` at the finite rows of ``points`` (N, 2); ``rgb``
    one colour or (N, 3). ``outline_rgb`` rings each dot one pixel wider first (dark rings keep
    large dots apart from skin of their own colour)."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    ok = np.isfinite(points).all(1)
    colours = np.asarray(rgb).reshape(-1, 3)
    colours = (np.broadcast_to(colours, (len(points), 3)) if len(colours) == 1 else colours)[ok].tolist()
    centres = fixed(points[ok]).tolist()
    radius = max(1, round(radius_px * (1 << SHIFT)))
    if outline_rgb is not None:
        ring = radius + (1 << SHIFT)
        for x, y in centres:
            cv2.circle(out, (x, y), ring, outline_rgb, -1, cv2.LINE_AA, SHIFT)
    for (x, y), colour in zip(centres, colours):
        cv2.circle(out, (x, y), radius, colour, -1, cv2.LINE_AA, SHIFT)


def draw_segments(out: np.ndarray, ends: np.ndarray, rgb: tuple[int, ...], width_px: float) -> None:
    """Anti-aliased segments between consecutive pairs of rows of ``ends`` (2M, 2), all in one
    call; ``width_px`` rounded to whole pixels, at least 1. Segments with a non-finite end are left out."""
    pairs = np.asarray(ends, np.float64).reshape(-1, 2, 2)
    pairs = pairs[np.isfinite(pairs).all((1, 2))]
    if len(pairs):
        cv2.polylines(out, list(fixed(pairs)), False, rgb, max(1, round(width_px)), cv2.LINE_AA, SHIFT)


def draw_label(out: np.ndarray, text: str, x: float, y: float, font_px: float, rgb: tuple[int, ...],
               backdrop: float = 0.0) -> None:
    """``text`` with its bottom-left corner at (x, y), digits ``font_px`` tall; ``backdrop`` > 0
    darkens the box behind it by that fraction first (a label readable on any background)."""
    scale = font_px / FONT_HEIGHT_PX
    thickness = max(1, round(font_px / 12))
    origin = (round(x), max(round(font_px), round(y)))
    if backdrop > 0:
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        x0, y0 = max(origin[0] - 2, 0), max(origin[1] - h - 3, 0)
        x1, y1 = min(origin[0] + w + 2, out.shape[1]), min(origin[1] + base, out.shape[0])
        if x1 > x0 and y1 > y0:
            patch = out[y0:y1, x0:x1]
            patch[:] = (patch * (1.0 - backdrop)).astype(out.dtype)
    cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, rgb, thickness, cv2.LINE_AA)
