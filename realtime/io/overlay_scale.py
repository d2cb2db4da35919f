"""How big the overlays draw a face's marks: points, lines and pose axes scale with the face.

numpy only. Both overlays size each face's marks from ``face_size_px`` (its box side in image
pixels): the annotated video (``video_out.draw_overlay``, cv2) and the live window
(``overlay_items.FaceLayers``, pyqtgraph, in image pixels so the window's zoom scales them too).
Fixed-size marks fail both ways: 68 dots of 7 px on a face of 50 px (about 2.5 px between
neighbouring points) merge into one blob, and on a face of 400 px they are specks.

The rules, each ``clamp(fraction * face_px, min, max)`` in image pixels, come from the bundled
clip (box side 176-233 px) and a real-footage clip of five small faces (36-87 px, ``video_01`` of
docs/data.md): the 68-point model's median distance between neighbouring points is 0.05 of the
box side, so a dot 0.03 of the side across (radius 0.015) leaves a gap of its own size between
neighbours; the inter-ocular distance is about 0.46 of the side. The minima keep marks visible on the smallest faces (a
point stays at least 1.4 px across, a line 1 px wide, pose axes 12 px long), the maxima keep
them from covering a face that fills the frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.core.packet import FaceResult

# (fraction of the face size, min px, max px)
POINT_RADIUS = (0.015, 0.7, 5.0)
LINE_WIDTH = (0.01, 1.0, 3.0)  # boxes, the pose cube
AXIS_WIDTH = (0.015, 1.0, 4.0)
AXIS_MIN_PX = 12.0
FONT_PX = (0.2, 9.0, 18.0)  # height of a track id's digits
DEFAULT_FACE_PX = 100.0  # for a face with neither a finite box nor finite points
POINTS_TO_BOX = 1.4  # box side / extent of the points (68 points: 0.72 of the side)


def _clamp(face_px: float, rule: tuple[float, float, float]) -> float:
    fraction, low, high = rule
    return float(np.clip(fraction * face_px, low, high))


def face_size_px(face: FaceResult) -> float:
    """The face's size in image pixels: its box side, max(width, height); without a finite box,
    ``POINTS_TO_BOX`` x the extent of its finite points; else ``DEFAULT_FACE_PX``."""
    x0, y0, x1, y1 = face.box_xyxy
    side = max(x1 - x0, y1 - y0)
    if np.isfinite(side) and side > 0:
        return float(side)
    finite = face.points[np.isfinite(face.points).all(1)]
    if len(finite) >= 2 and np.ptp(finite, 0).max() > 0:
        return float(POINTS_TO_BOX * np.ptp(finite, 0).max())
    return DEFAULT_FACE_PX


@dataclass(frozen=True)
class MarkSizes:
    """One face's marks in image pixels: point radius, box/cube line width, pose axis line width,
    the shortest pose axis, and the height of its track id's text."""

    point_radius_px: float
    line_px: float
    axis_line_px: float
    axis_min_px: float
    font_px: float

    def axis_length_px(self, face_px: float, length_faces: float) -> float:
        """Pose axis length: ``length_faces`` face sizes, but at least ``axis_min_px``."""
        return max(length_faces * face_px, self.axis_min_px)


def mark_sizes(face_px: float) -> MarkSizes:
    """The marks of a face ``face_px`` image pixels in size (module docstring for the rules)."""
    face_px = float(face_px) if np.isfinite(face_px) and face_px > 0 else DEFAULT_FACE_PX
    return MarkSizes(_clamp(face_px, POINT_RADIUS), _clamp(face_px, LINE_WIDTH), _clamp(face_px, AXIS_WIDTH),
                     AXIS_MIN_PX, _clamp(face_px, FONT_PX))
