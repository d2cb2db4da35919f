"""The shipped 3D mean face for head pose, and its points for each keypoint layout.

numpy only. ``assets/mean_face_68.npy`` is a (68, 3) float64 array in the ibug68 order, derived
from MediaPipe's face mesh depth averaged over real faces (``python -m train.tools.make_mean_face derive``;
derivation and numbers in ``assets/README.md``). Its conventions, written once here:

- axes as ``realtime/stages/pose.py`` expects for a face looking into the camera: +x towards the image's
  right (the subject's left), +y down (towards the chin), +z away from the camera (into the head);
- unit: millimetres, scaled so that the outer eye corners (points 36 and 45) are ``OUTER_EYE_MM``
  apart (a typical adult's biocular width); so ``PoseEstimate.tvec`` is in millimetres and its z
  is the face's distance from the camera if the face is of that size;
- origin: the centroid of the 68 points; exactly left-right symmetric (x -> -x with the ibug68
  mirror permutation gives the same face);
- rotation zero ("frontal"): yaw and roll zero when the symmetry plane contains the optical axis
  and the eyes are level; pitch zero when the plane through the four eye corners and the two
  mouth corners (36, 39, 42, 45, 48, 54) is perpendicular to the optical axis.

Other layouts take a subset: ``mtfl5`` (left eye, right eye, nose, mouth corners; "left" = image
left) uses the means of the eye contours 36-41 and 42-47, the nose tip 30 and the mouth corners
48 and 54. Layouts without a known correspondence get no 3D face (no pose).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from realtime.core.assets import MEAN_FACE
from realtime.core.errors import UserError
from realtime.geometry.layouts import Layout

MEAN_FACE_PATH = MEAN_FACE
OUTER_EYE_MM = 90.0

# Each layout point as the mean of these ibug68 points.
FROM_IBUG68: dict[str, tuple[tuple[int, ...], ...]] = {
    "ibug68": tuple((i,) for i in range(68)),
    "mtfl5": (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,)),
}


def load_face_model(path: str | Path) -> np.ndarray:
    """A (K, 3) float64 3D face from a ``.npy`` file (finite values; any K)."""
    file = Path(path)
    try:
        face = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the 3D face model {file}: {exc}") from None
    if face.ndim != 2 or face.shape[1] != 3 or not np.isfinite(face).all():
        raise UserError(f"{file} must hold a finite (K, 3) array, not {face.dtype} {face.shape}")
    return face.astype(np.float64)


def load_mean_face(path: str | Path | None = None) -> np.ndarray:
    """(68, 3) float64 millimetres (module docstring), from ``path`` or the shipped file."""
    file = Path(path) if path is not None else MEAN_FACE_PATH
    face = load_face_model(file)
    if face.shape != (68, 3):
        raise UserError(f"{file} must hold the 68 ibug68 points, not {face.shape[0]}")
    return face


def face_model_for(layout: Layout | None, mean_face: np.ndarray | None = None) -> np.ndarray | None:
    """The (K, 3) 3D face for ``layout`` from the 68-point ``mean_face`` (default: the shipped
    one), or None when the layout has no known correspondence (or is None)."""
    if layout is None or layout.name not in FROM_IBUG68:
        return None
    face = load_mean_face() if mean_face is None else np.asarray(mean_face, np.float64)
    return np.stack([face[list(group)].mean(0) for group in FROM_IBUG68[layout.name]])
