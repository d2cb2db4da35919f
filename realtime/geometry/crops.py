"""Face boxes and the affine crop that turns a face into the network's square input.

numpy + cv2 only; shared by the training recipes (augmentation) and the live pipeline.

Conventions (see ``realtime/__init__.py``): points are (x, y) with pixel centres at integer
coordinates, as ``cv2.warpAffine`` assumes. A face box is ``(cx, cy, side)``: a square of
``side`` pixels centred on (cx, cy). A crop matrix ``M`` (2, 3) maps image pixels to crop pixels:
``p_crop = M[:, :2] @ p_image + M[:, 2]``.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.core.errors import UserError
from realtime.geometry.layouts import Layout

# the 2016 paper's recipe (its preprocessing): "eyes_mouth" extends the eye/mouth box by 0.95 x a face distance
# on every side (MTFL_ratio = 3.8 / 4.0); "extent" enlarges the landmark extent x1.3.
EYES_MOUTH_MARGIN = 0.95
EXTENT_RATIO = 1.3
# Detector boxes are taken to cover about the landmark extent (brows to chin, ear to ear), so the
# same x1.3 gives crops framed like the "extent" training crops.
DETECTION_SCALE = 1.3

Box = tuple[float, float, float]


def _square_about_centre(lo: np.ndarray, hi: np.ndarray) -> Box:
    """Square box on the centre of [lo, hi] with side max(width, height)."""
    cx, cy = (lo + hi) / 2.0
    return float(cx), float(cy), float(np.max(hi - lo))


def _extent_box(points: np.ndarray) -> Box:
    cx, cy, side = _square_about_centre(points.min(0), points.max(0))
    return cx, cy, side * EXTENT_RATIO


def _eyes_mouth_box(points: np.ndarray, layout: Layout) -> Box:
    left_eye, right_eye = layout.eye_centre_points(points)
    assert layout.mouth is not None
    mouth = points[list(layout.mouth)]
    corners = np.stack([left_eye, right_eye, *mouth])
    cx, cy, side = _square_about_centre(corners.min(0), corners.max(0))
    eye_distance = np.linalg.norm(right_eye - left_eye)
    eye_mouth_distance = np.linalg.norm((left_eye + right_eye) / 2.0 - mouth.mean(0))
    margin = EYES_MOUTH_MARGIN * max(eye_distance, eye_mouth_distance)
    return cx, cy, side + 2.0 * float(margin)


def face_box_from_points(points: np.ndarray, visible: np.ndarray, layout: Layout) -> Box:
    """The 2016 recipe's square face box from landmarks: (cx, cy, side) in image pixels.

    ``points`` (K, 2), ``visible`` (K,) bool. ``layout.box_rule`` picks the rule:
    ``"eyes_mouth"``: the square bounding box (smaller side grown about the centre) of the two eye
    centres and two mouth corners, extended on every side by 0.95 x max(eye distance, distance
    from the eyes' midpoint to the mouth's midpoint). Falls back to ``"extent"`` when one of those
    points is not visible. ``"extent"``: the square box of the visible points' min/max, enlarged
    x1.3 about its centre.
    """
    points = np.asarray(points, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    if not visible.any():
        raise UserError("cannot place a face box: the face has no visible landmark")
    if layout.box_rule == "eyes_mouth":
        needed = [*layout.eye_centres[0], *layout.eye_centres[1], *(layout.mouth or ())]
        if layout.mouth is not None and visible[needed].all():
            return _eyes_mouth_box(points, layout)
    elif layout.box_rule != "extent":
        raise UserError(f"layout {layout.name!r} has unknown box rule {layout.box_rule!r}")
    return _extent_box(points[visible])


def face_box_from_detection(box_xyxy: tuple[float, float, float, float] | np.ndarray,
                            scale: float = DETECTION_SCALE) -> Box:
    """Square face box (cx, cy, side) from a detector box (x0, y0, x1, y1).

    The square is centred on the detector box with side ``scale * max(width, height)``. The
    default 1.3 treats the detector box as the landmark extent, as most face detectors' boxes
    roughly are, and so frames the face like the ``"extent"`` rule used in training. Detectors
    whose boxes are much tighter or looser than the face want another ``scale``.
    """
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    if x1 <= x0 or y1 <= y0:
        raise UserError(f"empty detection box {(x0, y0, x1, y1)}")
    lo, hi = np.array([x0, y0]), np.array([x1, y1])
    cx, cy, side = _square_about_centre(lo, hi)
    return cx, cy, side * scale


def crop_matrix(cx: float, cy: float, side: float, out_size: int = 80, rotation_deg: float = 0.0,
                scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0),
                mirror: bool = False) -> np.ndarray:
    """(2, 3) float64 affine map from image pixels to crop pixels.

    Without jitter the box [cx - side/2, cx + side/2] (and likewise in y) maps exactly onto
    [-0.5, out_size - 0.5], the outer edges of the crop's pixels. Jitter, about the box centre:
    ``rotation_deg`` turns the content counter-clockwise as displayed (cv2.getRotationMatrix2D's
    sense); ``scale`` > 1 zooms in (the face looks larger); ``shift`` (dx, dy) moves the content
    by that fraction of the box side (= of ``out_size`` crop pixels), after rotation and scale;
    ``mirror`` finally flips the crop left-right (x -> out_size - 1 - x).
    """
    if side <= 0:
        raise ValueError(f"face box side must be positive, got {side}")
    theta = np.deg2rad(rotation_deg)
    cos, sin = np.cos(theta), np.sin(theta)
    linear = (out_size / side) * scale * np.array([[cos, sin], [-sin, cos]])
    centre_out = (out_size - 1) / 2.0 + np.asarray(shift, dtype=np.float64) * out_size
    offset = centre_out - linear @ np.array([cx, cy], dtype=np.float64)
    matrix = np.concatenate([linear, offset[:, None]], axis=1)
    if mirror:
        flip = np.array([[-1.0, 0.0, out_size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        matrix = (flip @ np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    return matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine map to points (..., 2); returns float64 (..., 2)."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse (2, 3) affine map, e.g. to take crop-pixel predictions back to the image."""
    linear_inv = np.linalg.inv(np.asarray(matrix, dtype=np.float64)[:, :2])
    return np.concatenate([linear_inv, -(linear_inv @ matrix[:, 2])[:, None]], axis=1)


def warp_crop(image: np.ndarray, matrix: np.ndarray, out_size: int, grey: bool) -> np.ndarray:
    """Warp an (H, W, 3) RGB or (H, W) grey uint8 image into an (out, out, C) uint8 crop.

    Bilinear, constant-zero border. C is 1 when ``grey`` (RGB -> grey after the warp, which
    commutes with bilinear interpolation and is cheaper), else 3.
    """
    crop = cv2.warpAffine(image, np.asarray(matrix, dtype=np.float64), (out_size, out_size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if crop.ndim == 3 and crop.shape[2] == 1:
        crop = crop[:, :, 0]
    if grey:
        if crop.ndim == 3:
            crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        return crop[:, :, None]
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB)
    return crop
