"""Training-time jitter of the 2016 recipe (PAPERS.md 1.2) and the crop that every sample goes through.

One affine warp per sample carries the face box, scale, translation, rotation and an optional
mirror; the landmarks get the same map. Images stay in [0, 1]: contrast normalisation lives
inside the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.crops import crop_matrix, face_box_from_points, transform_points, warp_crop
from realtime.layouts import Layout

# The 2016 code's occluder sizes are in pixels of its 80 x 80 input.
OCCLUDER_REFERENCE_SIZE = 80


@dataclass(frozen=True)
class AugmentConfig:
    """Jitter ranges; all draws are uniform. Defaults are the 2016 recipe.

    ``scale``: zoom in [1 - scale, 1 + scale]. ``translate``: shift in [-t, t] x box side, x and y
    independently. ``rotation_deg``: integer degrees in [-R, R]; the paper's default is 40 (the
    released 300W model was trained with 20). ``occlude``: one black rectangle per image, height
    and width independently in ``occluder_px`` (pixels of an 80 x 80 crop, scaled for other
    sizes), placed fully inside the crop. ``mirror_prob``: chance of a left-right flip with the
    layout's point permutation (the 2016 code never flips).
    """

    scale: float = 0.1
    translate: float = 0.1
    rotation_deg: int = 40
    occlude: bool = True
    occluder_px: tuple[int, int] = (20, 50)
    mirror_prob: float = 0.0

    @classmethod
    def none(cls) -> AugmentConfig:
        """No jitter and no occluder: the evaluation crop."""
        return cls(scale=0.0, translate=0.0, rotation_deg=0, occlude=False, mirror_prob=0.0)

    @property
    def is_identity(self) -> bool:
        return self == AugmentConfig.none()


@dataclass(frozen=True)
class Jitter:
    """One draw of the jitter: the crop_matrix arguments plus the occluder (x0, y0, w, h) or None."""

    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    mirror: bool = False
    occluder: tuple[int, int, int, int] | None = None


@dataclass
class PreparedFace:
    """A network-ready face.

    ``image`` (C, H, W) float32 in [0, 1]; ``points`` (K, 2) float32 in crop pixels; ``mask`` (K,)
    bool: visible and inside the crop [-0.5, out - 0.5) in x and y (points outside are kept but
    masked, as the 2016 code's ``bound_mask``); ``matrix`` (2, 3) float64 image -> crop pixels.
    """

    image: np.ndarray
    points: np.ndarray
    mask: np.ndarray
    matrix: np.ndarray


def draw_jitter(aug: AugmentConfig, rng: np.random.Generator, out_size: int) -> Jitter:
    """Draw one jitter, always in the same order so a seed fixes the whole sample."""
    scale = float(rng.uniform(1.0 - aug.scale, 1.0 + aug.scale))
    shift = rng.uniform(-aug.translate, aug.translate, size=2)
    rotation = int(rng.integers(-aug.rotation_deg, aug.rotation_deg + 1))
    mirror = bool(rng.random() < aug.mirror_prob)
    occluder = _draw_occluder(aug, rng, out_size) if aug.occlude else None
    return Jitter(scale, (float(shift[0]), float(shift[1])), rotation, mirror, occluder)


def _draw_occluder(aug: AugmentConfig, rng: np.random.Generator,
                   out_size: int) -> tuple[int, int, int, int]:
    lo, hi = aug.occluder_px
    height, width = rng.integers(lo, hi + 1, size=2)
    factor = out_size / OCCLUDER_REFERENCE_SIZE
    height = min(out_size, max(1, round(height * factor)))
    width = min(out_size, max(1, round(width * factor)))
    y0 = int(rng.integers(0, out_size - height + 1))
    x0 = int(rng.integers(0, out_size - width + 1))
    return x0, y0, int(width), int(height)


def inside_crop(points: np.ndarray, out_size: int) -> np.ndarray:
    """(K, 2) crop pixels -> (K,) bool: inside [-0.5, out_size - 0.5) in both x and y."""
    return np.all((points >= -0.5) & (points < out_size - 0.5), axis=-1)


def prepare_face(image: np.ndarray, points: np.ndarray, visible: np.ndarray, layout: Layout,
                 out_size: int = 80, grey: bool = True, aug: AugmentConfig | None = None,
                 rng: np.random.Generator | None = None,
                 box: tuple[float, float, float] | None = None) -> PreparedFace:
    """Crop (and, with ``aug``, jitter) one face.

    ``image`` (H, W, 3) uint8 RGB; ``points`` (K, 2) and ``visible`` (K,) in image pixels.
    ``box`` (cx, cy, side) overrides the layout's landmark box (``face_box_from_points``).
    ``rng`` is required when ``aug`` jitters anything.
    """
    visible = np.asarray(visible, dtype=bool)
    if box is None:
        box = face_box_from_points(points, visible, layout)
    jitter = Jitter()
    if aug is not None and not aug.is_identity:
        if rng is None:
            raise ValueError("prepare_face needs an rng to draw the augmentation")
        jitter = draw_jitter(aug, rng, out_size)
    matrix = crop_matrix(*box, out_size=out_size, rotation_deg=jitter.rotation_deg,
                         scale=jitter.scale, shift=jitter.shift, mirror=jitter.mirror)
    crop = warp_crop(image, matrix, out_size, grey)
    if jitter.occluder is not None:
        x0, y0, width, height = jitter.occluder
        crop[y0:y0 + height, x0:x0 + width] = 0
    crop_points = transform_points(points, matrix)
    if jitter.mirror:
        # After the flip the left eye's pixels are where a right eye belongs: relabel.
        perm = list(layout.mirror)
        crop_points, visible = crop_points[perm], visible[perm]
    return PreparedFace(
        image=np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32) / 255.0,
        points=crop_points.astype(np.float32),
        mask=visible & inside_crop(crop_points, out_size),
        matrix=matrix,
    )
