"""The parts of a synthetic face that look-alike distractors reuse: eyes and mouths.

numpy only (drawing goes through ``Canvas``). Each part is drawn in its own local frame (face
units: the frontal eye distance is 1) through a ``Mapper`` that takes (N, 2) local points to
(N, 2) image pixels: the face's curved head projection for the real face, a plain affine map for
distractors. Round parts
(iris, pupil) use the mapper's linearisation at their centre, so the pupil is centred on the
landmark exactly; the mouth corners are polygon vertices, so the lips end on them exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from train.data.synthetic_scene import Canvas, circle, disc

Mapper = Callable[[np.ndarray], np.ndarray]
_T = np.linspace(-1.0, 1.0, 15)


def affine_mapper(lin: np.ndarray, offset: np.ndarray) -> Mapper:
    return lambda p: p @ lin.T + offset


@dataclass(frozen=True)
class Eye:
    """Eye look, in face units: an almond of half width/height, a lower lid at ``lower`` x the
    upper's height, an iris and pupil. Grey levels 0..255."""

    half_w: float
    half_h: float
    lower: float
    iris_r: float
    pupil_r: float
    sclera: float
    iris: float
    pupil: float
    lid: float
    lash: float
    catchlight: float  # 0: none


def sample_eye(rng: np.random.Generator, skin: float) -> Eye:
    """The pupil is the darkest part (lashes included), so it stays the eye's sharpest detail."""
    half_w = rng.uniform(0.19, 0.26)
    iris_r = half_w * rng.uniform(0.38, 0.5)
    pupil = rng.uniform(0, 25)
    return Eye(half_w=half_w, half_h=half_w * rng.uniform(0.45, 0.65), lower=rng.uniform(0.6, 0.9),
               iris_r=iris_r, pupil_r=iris_r * rng.uniform(0.45, 0.6),
               sclera=min(255.0, skin + rng.uniform(35, 85)),
               iris=max(skin * rng.uniform(0.3, 0.6), pupil + 35), pupil=pupil,
               lid=skin * rng.uniform(0.72, 0.92), lash=pupil + rng.uniform(20, 55),
               catchlight=rng.uniform(200, 255) if rng.random() < 0.4 else 0.0)


def sample_gaze(rng: np.random.Generator, eye: Eye) -> np.ndarray:
    """(2,) pupil offset from the almond's centre, keeping the pupil inside the almond."""
    gx = rng.uniform(-1, 1) * (eye.half_w - eye.iris_r) * 0.85
    room = eye.half_h * eye.lower * (1 - (gx / eye.half_w) ** 2) - eye.pupil_r
    return np.array([gx, rng.uniform(-0.4, 0.4) * max(room, 0.0)])


def draw_eye(canvas: Canvas, m: Mapper, eye: Eye, gaze: np.ndarray, px: float) -> None:
    """Socket shadow, almond, iris, pupil (centred on m(gaze)), lids over the iris, lash line."""
    x = _T * eye.half_w
    upper = np.stack([x, -eye.half_h * (1 - _T ** 2)], 1)
    lower = np.stack([x, eye.lower * eye.half_h * (1 - _T ** 2)], 1)
    reach = abs(gaze[1]) + eye.iris_r + 0.03
    canvas.fill(m(circle((0.0, 0.0), (eye.half_w * 1.5, reach * 1.5))), eye.lid)
    canvas.fill(m(np.concatenate([upper, lower[::-1]])), eye.sclera)
    canvas.fill(disc(m, gaze, eye.iris_r), eye.iris)
    canvas.fill(disc(m, gaze, eye.pupil_r), eye.pupil)
    if eye.catchlight:  # on the iris ring, clear of the pupil
        ring = eye.iris_r - eye.pupil_r
        offset = (eye.pupil_r + 0.5 * ring) * np.array([-0.6, -0.8])
        canvas.fill(disc(m, gaze + offset, 0.3 * ring), eye.catchlight)
    far = np.array([[eye.half_w, reach], [-eye.half_w, reach]])
    canvas.fill(m(np.concatenate([upper, far * [1.0, -1.0]])), eye.lid)
    canvas.fill(m(np.concatenate([lower, far])), eye.lid)
    canvas.stroke(m(upper - [0.0, 0.025]), eye.lash, 0.05 * px)  # just outside the almond


@dataclass(frozen=True)
class Mouth:
    """Lips between two sharp corners at (+-width/2, 0); ``smile`` > 0 lifts the corners."""

    width: float
    smile: float
    upper_t: float
    lower_t: float
    opening: float
    bow: float
    lip: float
    line: float


def sample_mouth(rng: np.random.Generator, width: float, skin: float) -> Mouth:
    opening = rng.uniform(0.02, 0.09) if rng.random() < 0.3 else 0.0
    return Mouth(width=width, smile=rng.uniform(-0.04, 0.08), upper_t=rng.uniform(0.045, 0.09),
                 lower_t=rng.uniform(0.06, 0.12), opening=opening, bow=rng.uniform(0.0, 0.6),
                 lip=skin * rng.uniform(0.5, 0.82), line=rng.uniform(0, 45))


def mouth_corners(mouth: Mouth) -> np.ndarray:
    return np.array([[-mouth.width / 2, 0.0], [mouth.width / 2, 0.0]])


def draw_mouth(canvas: Canvas, m: Mapper, mouth: Mouth, px: float) -> None:
    """Lips whose outlines meet at the two corners (polygon vertices), mouth line or opening."""
    x = _T * mouth.width / 2
    base = 1 - _T ** 2
    line = mouth.smile * base
    upper = line - mouth.upper_t * base ** 0.9 * (1 - mouth.bow * np.exp(-(_T / 0.18) ** 2))
    lower = line + mouth.opening * base + mouth.lower_t * base ** 0.9
    canvas.fill(m(np.concatenate([np.stack([x, upper], 1), np.stack([x, lower], 1)[-2:0:-1]])), mouth.lip)
    if mouth.opening:
        gap = np.concatenate([np.stack([x, line], 1), np.stack([x, line + mouth.opening * base], 1)[-2:0:-1]])
        canvas.fill(m(gap), mouth.line)
    width = max(0.03 * px, 0.5)
    t = _T * (1 - width / px / mouth.width)  # stop half a stroke short: the round caps end at the corners
    canvas.stroke(m(np.stack([t * mouth.width / 2, mouth.smile * (1 - t ** 2)], 1)), mouth.line, width)
