"""Scene parts of the synthetic benchmark around the face: a supersampled drawing canvas, noise-
textured backgrounds, clutter, occluders, and the camera's degradations (lighting, contrast,
gamma, blur, sensor noise).

numpy + cv2 only. Coordinates are (x, y) output pixels with pixel centres at integers.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import cv2
import numpy as np

SUPERSAMPLE = 4
_SHIFT = 4  # cv2 fixed-point fraction bits
# output pixel p -> canvas pixel (p + 0.5) * SUPERSAMPLE - 0.5 -> times 2^_SHIFT
_FIX_SCALE = SUPERSAMPLE * (1 << _SHIFT)
_FIX_OFFSET = (0.5 * SUPERSAMPLE - 0.5) * (1 << _SHIFT)
_UNIT = np.stack([np.cos(a := np.linspace(0, 2 * np.pi, 28, endpoint=False)), np.sin(a)], 1)


def rotation(angle: float) -> np.ndarray:
    """(2, 2) rotation by ``angle`` radians (clockwise on screen, y pointing down)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def circle(centre: tuple[float, float] | np.ndarray, radii: float | tuple[float, float]) -> np.ndarray:
    """(28, 2) polygon of an axis-aligned ellipse."""
    return np.asarray(centre) + _UNIT * np.asarray(radii)


def disc(m: Callable[[np.ndarray], np.ndarray], centre: np.ndarray,
         radii: float | tuple[float, float]) -> np.ndarray:
    """(28, 2) image polygon of an ellipse about ``centre`` in m's local frame, mapped by m's
    linearisation at the centre: its centroid is ``m(centre)`` exactly, even where m is not affine."""
    eps = 1e-3
    c = m(centre[None])[0]
    jac = (m(centre + np.array([[eps, 0.0], [0.0, eps]])) - c).T / eps
    return c + (_UNIT * np.asarray(radii)) @ jac.T


class Canvas:
    """A SUPERSAMPLE-times larger uint8 grey canvas, drawn on in output-pixel coordinates."""

    def __init__(self, background: np.ndarray) -> None:
        """``background`` (H, W) float32 grey levels."""
        h, w = background.shape
        self.size = (w, h)
        small = np.clip(background, 0, 255).astype(np.uint8)
        self.image = cv2.resize(small, (w * SUPERSAMPLE, h * SUPERSAMPLE), interpolation=cv2.INTER_LINEAR)

    @staticmethod
    def _fixed(points: np.ndarray) -> np.ndarray:
        """Output pixels -> canvas pixels in cv2 fixed point (pixel centres stay centres)."""
        return np.rint(points * _FIX_SCALE + _FIX_OFFSET).astype(np.int32)

    def fill(self, polygon: np.ndarray, value: float) -> None:
        """Fill an (N, 2) polygon with grey ``value``."""
        cv2.fillPoly(self.image, [self._fixed(polygon)], _grey(value), cv2.LINE_AA, _SHIFT)

    def stroke(self, line: np.ndarray, value: float, width_px: float, closed: bool = False) -> None:
        """Draw an (N, 2) polyline ``width_px`` output pixels wide."""
        thickness = max(1, int(round(width_px * SUPERSAMPLE)))
        cv2.polylines(self.image, [self._fixed(line)], closed, _grey(value), thickness,
                      cv2.LINE_AA, _SHIFT)

    def result(self) -> np.ndarray:
        """(H, W) uint8, each pixel the mean of its SUPERSAMPLE^2 canvas pixels."""
        return cv2.resize(self.image, self.size, interpolation=cv2.INTER_AREA)


def _grey(value: float) -> int:
    return int(min(max(value, 0.0), 255.0))


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size, size) x and y, both in [-1, 1]."""
    t = np.linspace(-1, 1, size, dtype=np.float32)
    return np.meshgrid(t, t)


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """(size, size) float32 smooth noise, std about 1, with ``cells`` features across."""
    g = rng.standard_normal((cells + 1, cells + 1), dtype=np.float32)
    return cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC)


def background(rng: np.random.Generator, size: int, textured: bool) -> np.ndarray:
    """(size, size) float32: flat grey, or noise textures at three scales, gradient, gratings."""
    image = np.full((size, size), rng.uniform(20, 235), np.float32)
    if not textured:
        return image
    for cells, amp in ((3, 45), (9, 30), (24, 18)):
        image += rng.uniform(0, amp) * _value_noise(rng, size, cells)
    x, y = _grid(size)
    image += rng.uniform(-50, 50) * x + rng.uniform(-50, 50) * y
    if rng.random() < 0.3:
        angle, period = rng.uniform(0, np.pi), rng.uniform(0.08, 0.5)
        grating = np.sin((np.cos(angle) * x + np.sin(angle) * y) * np.pi / period + rng.uniform(0, 6.3))
        image += rng.uniform(10, 45) * (np.sign(grating) if rng.random() < 0.4 else grating)
    return image


def _polar(angles: np.ndarray, radii: np.ndarray | float) -> np.ndarray:
    """(N, 2) points at ``angles`` (N,) and ``radii`` from the origin."""
    return np.stack([np.cos(angles), np.sin(angles)], 1) * np.reshape(radii, (-1, 1))


_SQUARE = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])


def clutter(canvas: Canvas, rng: np.random.Generator, size: int) -> None:
    """3-11 random polygons, ellipses, thick lines and curves."""
    for _ in range(rng.integers(3, 12)):
        kind, value = rng.integers(4), rng.uniform(0, 255)
        centre, r = rng.uniform(-0.1, 1.1, 2) * size, rng.uniform(0.04, 0.3) * size
        if kind == 0:
            corners = rng.integers(3, 7)
            angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
            canvas.fill(centre + _polar(angles, r * rng.uniform(0.4, 1, corners)), value)
        elif kind == 1:
            ellipse = circle((0.0, 0.0), (r, r * rng.uniform(0.3, 1)))
            canvas.fill(centre + ellipse @ rotation(rng.uniform(0, np.pi)).T, value)
        elif kind == 2:
            end = _polar(rng.uniform(0, 2 * np.pi, 1), 2 * r)[0]
            canvas.stroke(np.stack([centre - end, centre + end]), value, rng.uniform(0.5, 4))
        else:  # a quadratic Bezier curve
            t = np.linspace(0, 1, 12)[:, None]
            a, b, c = centre, centre + rng.normal(0, r, 2), centre + rng.normal(0, 2 * r, 2)
            canvas.stroke((1 - t) ** 2 * a + 2 * t * (1 - t) * b + t ** 2 * c, value, rng.uniform(0.5, 3))


def occluders(canvas: Canvas, rng: np.random.Generator, size: int, points: np.ndarray) -> None:
    """0-2 occluders, most aimed near a landmark (``points`` (K, 2)): P1-style rectangles (often
    black), long bars, blobs."""
    for _ in range(rng.choice(3, p=[0.5, 0.38, 0.12])):
        if rng.random() < 0.65:
            centre = points[rng.integers(len(points))] + rng.normal(0, 0.1 * size, 2)
        else:
            centre = rng.uniform(0, size, 2)
        value = 0.0 if rng.random() < 0.3 else rng.uniform(0, 255)
        kind = rng.choice(3, p=[0.4, 0.25, 0.35])
        if kind == 0:
            canvas.fill(centre + _SQUARE * rng.uniform(0.06, 0.2, 2) * size, value)
        elif kind == 1:
            bar = _SQUARE * [rng.uniform(0.3, 0.6) * size, rng.uniform(0.03, 0.07) * size]
            canvas.fill(centre + bar @ rotation(rng.uniform(0, np.pi)).T, value)
        else:
            angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            wobble = 1 + 0.3 * np.sin(angles * rng.integers(2, 5) + rng.uniform(0, 2 * np.pi))
            canvas.fill(centre + _polar(angles, rng.uniform(0.07, 0.2) * size * wobble), value)


def _lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gain gradient, sometimes a spot light or shadow, then contrast, brightness and gamma."""
    x, y = _grid(img.shape[0])
    angle = rng.uniform(0, 2 * np.pi)
    gain = 1 + rng.uniform(0, 0.4) * (np.cos(angle) * x + np.sin(angle) * y)
    if rng.random() < 0.3:
        cx, cy = rng.uniform(-1, 1, 2)
        spread = 2 * rng.uniform(0.2, 0.6) ** 2
        gain *= 1 + rng.uniform(-0.5, 0.6) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / spread)
    img = img * gain
    mean = float(img.mean())
    img = (img - mean) * rng.uniform(0.7, 1.2) + mean + rng.uniform(-0.06, 0.06)
    return np.clip(img, 0, 1) ** np.exp(rng.uniform(np.log(0.75), np.log(1.4)))


def _blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mostly a Gaussian (sigma 0.3-1 px), sometimes a short motion blur, sometimes none."""
    if rng.random() < 0.75:
        return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < 0.5:
        n = int(rng.integers(2, 5))
        kernel = np.zeros((2 * n + 1, 2 * n + 1), np.float32)
        dx, dy = np.rint(_polar(rng.uniform(0, np.pi, 1), n)[0]).astype(int)
        cv2.line(kernel, (n - dx, n - dy), (n + dx, n + dy), 1.0)
        return cv2.filter2D(img, -1, kernel / kernel.sum())
    return img


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W) uint8 -> (H, W) uint8 through lighting, a fine noise texture, blur and sensor noise
    (Gaussian, sometimes salt and pepper)."""
    img = _lighting(image.astype(np.float32) / 255.0, rng)
    img += rng.uniform(0, 0.03) * _value_noise(rng, img.shape[0], int(rng.integers(12, 40)))
    img = _blur(img, rng)
    img += rng.uniform(0.003, 0.025) * rng.standard_normal(img.shape, dtype=np.float32)
    if rng.random() < 0.1:
        speckle = rng.random(img.shape) < 0.003
        img[speckle] = rng.random(int(speckle.sum())) > 0.5
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
