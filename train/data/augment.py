"""Training-time jitter and the crop that every sample goes through.

Geometry: one warp per sample carries the face box, scale, translation, rotation, an optional
mirror and an optional perspective distortion, taken straight from the source image (never from
an already cropped one, which would leave black borders); the landmarks get the same map.
Photometry: colour, brightness, contrast, gamma, grey, blur, sensor noise and JPEG, on the crop.
The defaults are the 2016 paper's recipe; ``AugmentConfig.heavy`` is the stronger set
for small training sets. Images stay in [0, 1]: contrast normalisation lives inside the model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.geometry.crops import crop_matrix, face_box_from_points, warp_crop
from realtime.geometry.layouts import Layout

# The 2016 code's occluder sizes are in pixels of its 80 x 80 input.
OCCLUDER_REFERENCE_SIZE = 80
OCCLUDER_FILLS = ("black", "random")
BLUR_SIGMA_MIN = 0.3


@dataclass(frozen=True)
class AugmentConfig:
    """Jitter ranges and probabilities; all draws are uniform. Defaults are the 2016 recipe.

    Geometry. ``scale``: zoom in [1 - scale, 1 + scale]. ``translate``: shift in [-t, t] x box
    side, x and y independently. ``rotation_deg``: integer degrees in [-R, R]; the paper's default
    is 40 (the released 300W model was trained with 20). ``mirror_prob``: chance of a left-right
    flip with the layout's point permutation (the 2016 code never flips). ``perspective``: each
    crop corner moves by up to this fraction of the crop side in x and y independently.

    Occluder. ``occlude``: one rectangle per image, height and width independently in
    ``occluder_px`` (pixels of an 80 x 80 crop, scaled for other sizes), placed fully inside the
    crop. ``occluder_fill``: "black" (the 2016 code), or "random": half the time a uniform grey
    level in [0, 255], otherwise uniform noise. It goes in before the photometry, as a real
    occluder is seen through the same camera.

    Photometry, applied to the crop in this order. ``colour``: per-channel gain in
    [1 - c, 1 + c] (RGB crops only). ``brightness``: add [-b, b] x 255. ``contrast``: scale about
    the crop's mean by [1 - k, 1 + k]. ``gamma``: exponent exp(uniform(-g, g)) on [0, 1] values.
    ``grey_prob``: chance of RGB -> grey replicated to 3 channels. ``blur_prob``: chance of a
    Gaussian blur with sigma uniform in [0.3, ``blur_sigma``] crop pixels. ``noise``: Gaussian
    sensor noise with std uniform in [0, noise] x 255. ``jpeg_prob``: chance of JPEG
    re-compression at an integer quality uniform in ``jpeg_quality`` (inclusive).
    """

    scale: float = 0.1
    translate: float = 0.1
    rotation_deg: int = 40
    occlude: bool = True
    occluder_px: tuple[int, int] = (20, 50)
    mirror_prob: float = 0.0
    perspective: float = 0.0
    occluder_fill: str = "black"
    colour: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    gamma: float = 0.0
    grey_prob: float = 0.0
    blur_prob: float = 0.0
    blur_sigma: float = 1.5
    noise: float = 0.0
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 90)

    def __post_init__(self) -> None:
        amounts = (self.scale, self.translate, self.rotation_deg, self.perspective, self.colour,
                   self.brightness, self.contrast, self.gamma, self.noise)
        probabilities = (self.mirror_prob, self.grey_prob, self.blur_prob, self.jpeg_prob)
        checks = [
            (min(amounts) >= 0 and self.scale < 1, "jitter ranges must be >= 0, and scale < 1"),
            (all(0 <= p <= 1 for p in probabilities), "probabilities must be in [0, 1]"),
            (self.occluder_fill in OCCLUDER_FILLS, f"occluder fill must be one of {OCCLUDER_FILLS}"),
            (self.blur_sigma >= BLUR_SIGMA_MIN, f"blur sigma must be >= {BLUR_SIGMA_MIN}"),
            (1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100, "JPEG quality must be a range in 1-100"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"{message}: {self}")

    @classmethod
    def none(cls) -> AugmentConfig:
        """No jitter and no occluder: the evaluation crop."""
        return cls(scale=0.0, translate=0.0, rotation_deg=0, occlude=False, mirror_prob=0.0)

    @classmethod
    def heavy(cls, rotation_deg: int = 40, mirror_prob: float = 0.5, occlude: bool = True) -> AugmentConfig:
        """Strong jitter for small training sets (about a hundred identities).

        Geometry a little wider than 2016 (zoom +-15%, corners moved up to 8% of the crop for
        small out-of-plane turns); the occluder filled with random grey or noise so the network
        cannot learn "black means occluded"; and the camera effects a webcam adds: colour casts
        (+-20% per channel), exposure (+-15% brightness, +-30% contrast, gamma e^+-0.4), grey
        frames (20%), defocus (30%, sigma <= 1.5 px), sensor noise (std <= 4%) and JPEG (30%,
        quality 30-90). Each range stays where a face still looks like a photograph of a face.
        """
        return cls(scale=0.15, translate=0.1, rotation_deg=rotation_deg, occlude=occlude,
                   mirror_prob=mirror_prob, perspective=0.08, occluder_fill="random", colour=0.2,
                   brightness=0.15, contrast=0.3, gamma=0.4, grey_prob=0.2, blur_prob=0.3,
                   blur_sigma=1.5, noise=0.04, jpeg_prob=0.3, jpeg_quality=(30, 90))

    @property
    def is_identity(self) -> bool:
        """True when every draw gives the plain crop (then nothing is drawn)."""
        ranges = (self.scale, self.translate, self.rotation_deg, self.mirror_prob, self.perspective,
                  self.colour, self.brightness, self.contrast, self.gamma, self.grey_prob,
                  self.blur_prob, self.noise, self.jpeg_prob)
        return not self.occlude and not any(ranges)


@dataclass(frozen=True)
class Photometric:
    """One draw of the photometric jitter, in the order it is applied; None (False) = skipped.

    ``gains`` per RGB channel; ``brightness`` and ``noise_std`` in 0-255 units; ``contrast`` a
    factor about the crop's mean; ``gamma`` the exponent on [0, 1] values; ``blur_sigma`` in crop
    pixels; ``jpeg_quality`` 1-100.
    """

    gains: tuple[float, float, float] | None = None
    brightness: float | None = None
    contrast: float | None = None
    gamma: float | None = None
    grey: bool = False
    blur_sigma: float | None = None
    noise_std: float | None = None
    jpeg_quality: int | None = None


@dataclass(frozen=True)
class Jitter:
    """One draw of the jitter: the crop_matrix arguments, the occluder and the photometry.

    ``occluder`` (x0, y0, w, h) crop pixels or None; ``occluder_fill`` grey level 0-255, or None
    for uniform noise. ``corners`` (4, 2) displacements in crop pixels of the crop's outer
    corners (top-left, top-right, bottom-right, bottom-left), or None for no perspective.
    ``pixel_seed`` seeds the per-pixel noise (occluder noise, sensor noise).
    """

    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    rotation_deg: float = 0.0
    mirror: bool = False
    occluder: tuple[int, int, int, int] | None = None
    occluder_fill: float | None = 0.0
    corners: tuple[tuple[float, float], ...] | None = None
    photometric: Photometric = field(default_factory=Photometric)
    pixel_seed: int | None = None


@dataclass
class PreparedFace:
    """A network-ready face.

    ``image`` (C, H, W) float32 in [0, 1]; ``points`` (K, 2) float32 in crop pixels; ``mask`` (K,)
    bool: visible and inside the crop [-0.5, out - 0.5) in x and y (points outside are kept but
    masked, as the 2016 code's ``bound_mask``); ``homography`` (3, 3) float64 image -> crop
    pixels, the exact map (points map as ``p ~ H @ (x, y, 1)``); ``matrix`` (2, 3) float64 its
    affine part before any perspective, so the exact map whenever there is no perspective.
    """

    image: np.ndarray
    points: np.ndarray
    mask: np.ndarray
    matrix: np.ndarray
    homography: np.ndarray


def draw_jitter(aug: AugmentConfig, rng: np.random.Generator, out_size: int) -> Jitter:
    """Draw one jitter, always in the same order so a seed fixes the whole sample.

    The 2016 draws come first and a feature that is off draws nothing, so a 2016 config gives
    the same samples per seed as before the later features existed.
    """
    scale = float(rng.uniform(1.0 - aug.scale, 1.0 + aug.scale))
    shift = rng.uniform(-aug.translate, aug.translate, size=2)
    rotation = int(rng.integers(-aug.rotation_deg, aug.rotation_deg + 1))
    mirror = bool(rng.random() < aug.mirror_prob)
    occluder = _draw_occluder(aug, rng, out_size) if aug.occlude else None
    corners = None
    if aug.perspective > 0:
        moves = rng.uniform(-aug.perspective, aug.perspective, size=(4, 2)) * out_size
        corners = tuple((float(x), float(y)) for x, y in moves)
    random_fill = aug.occlude and aug.occluder_fill == "random"
    fill = (float(rng.uniform(0.0, 255.0)) if rng.random() < 0.5 else None) if random_fill else 0.0
    photometric = _draw_photometric(aug, rng)
    pixel_seed = int(rng.integers(2**32)) if random_fill or aug.noise > 0 else None
    return Jitter(scale=scale, shift=(float(shift[0]), float(shift[1])), rotation_deg=rotation,
                  mirror=mirror, occluder=occluder, occluder_fill=fill, corners=corners,
                  photometric=photometric, pixel_seed=pixel_seed)


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


def _draw_photometric(aug: AugmentConfig, rng: np.random.Generator) -> Photometric:
    """The photometric draws, in application order; an op that is off draws nothing."""
    def span(half: float, centre: float = 0.0) -> float | None:
        return float(rng.uniform(centre - half, centre + half)) if half > 0 else None

    def chance(prob: float) -> bool:
        return prob > 0 and bool(rng.random() < prob)

    gains = tuple(float(g) for g in rng.uniform(1 - aug.colour, 1 + aug.colour, 3)) if aug.colour > 0 else None
    brightness = span(aug.brightness * 255.0)
    contrast = span(aug.contrast, 1.0)
    gamma = float(np.exp(rng.uniform(-aug.gamma, aug.gamma))) if aug.gamma > 0 else None
    grey = chance(aug.grey_prob)
    blur_sigma = float(rng.uniform(BLUR_SIGMA_MIN, aug.blur_sigma)) if chance(aug.blur_prob) else None
    noise_std = float(rng.uniform(0.0, aug.noise * 255.0)) if aug.noise > 0 else None
    lo, hi = aug.jpeg_quality
    jpeg_quality = int(rng.integers(lo, hi + 1)) if chance(aug.jpeg_prob) else None
    return Photometric(gains, brightness, contrast, gamma, grey, blur_sigma, noise_std, jpeg_quality)


def perspective_homography(corners: tuple[tuple[float, float], ...], out_size: int) -> np.ndarray:
    """(3, 3) float64 crop -> crop map that moves the crop's outer corners by ``corners``."""
    edge = out_size - 0.5
    square = np.array([[-0.5, -0.5], [edge, -0.5], [edge, edge], [-0.5, edge]], dtype=np.float32)
    return cv2.getPerspectiveTransform(square, square + np.asarray(corners, dtype=np.float32))


def apply_homography(points: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """(..., 2) points through a (3, 3) homography; returns float64 (..., 2)."""
    points = np.asarray(points, dtype=np.float64)
    mapped = points @ homography[:2, :2].T + homography[:2, 2]
    return mapped / (points @ homography[2, :2] + homography[2, 2])[..., None]


def _warp_perspective(image: np.ndarray, homography: np.ndarray, out_size: int, grey: bool) -> np.ndarray:
    """``warp_crop`` with a (3, 3) homography: (out, out, C) uint8, C = 1 when ``grey`` else 3."""
    crop = cv2.warpPerspective(image, homography, (out_size, out_size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    crop = crop[:, :, None] if crop.ndim == 2 else crop
    if grey and crop.shape[2] == 3:
        return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None]
    return cv2.cvtColor(crop, cv2.COLOR_GRAY2RGB) if not grey and crop.shape[2] == 1 else crop


def apply_photometric(crop: np.ndarray, p: Photometric, rng: np.random.Generator | None) -> np.ndarray:
    """(H, W, C) uint8 crop -> (H, W, C) float32 in [0, 255]; exactly the crop when ``p`` is empty.

    ``rng`` draws the sensor noise pixels; it is needed only when ``p.noise_std`` is set.
    """
    shape, x = crop.shape, crop.astype(np.float32)
    if p.gains is not None and shape[2] == 3:
        x *= np.asarray(p.gains, dtype=np.float32)
    if p.brightness is not None:
        x += p.brightness
    if p.contrast is not None:
        mean = x.mean()
        x = (x - mean) * p.contrast + mean
    if p.gamma is not None:
        x = 255.0 * (np.clip(x, 0.0, 255.0) / 255.0) ** p.gamma
    if p.grey and shape[2] == 3:
        x = np.repeat(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    if p.blur_sigma is not None:
        x = cv2.GaussianBlur(x, (0, 0), p.blur_sigma, borderType=cv2.BORDER_REFLECT_101).reshape(shape)
    if p.noise_std is not None:
        x += rng.normal(0.0, p.noise_std, size=shape).astype(np.float32)
    x = np.clip(x, 0.0, 255.0)
    if p.jpeg_quality is not None:
        x = _jpeg(np.round(x).astype(np.uint8), p.jpeg_quality).astype(np.float32)
    return x


def _jpeg(crop: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, C) uint8 RGB or grey crop -> the same after a JPEG round trip at ``quality``."""
    colour = crop.shape[2] == 3
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR) if colour else crop,
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode a crop")
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB) if colour else decoded.reshape(crop.shape)


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
    homography = np.vstack([matrix, [0.0, 0.0, 1.0]])
    if jitter.corners is None:
        crop = warp_crop(image, matrix, out_size, grey)
    else:
        homography = perspective_homography(jitter.corners, out_size) @ homography
        crop = _warp_perspective(image, homography, out_size, grey)
    pixels = np.random.default_rng(jitter.pixel_seed) if jitter.pixel_seed is not None else None
    if jitter.occluder is not None:
        x0, y0, width, height = jitter.occluder
        fill = jitter.occluder_fill
        crop[y0:y0 + height, x0:x0 + width] = (
            round(fill) if fill is not None else pixels.integers(0, 256, (height, width, crop.shape[2])))
    crop = apply_photometric(crop, jitter.photometric, pixels)
    crop_points = apply_homography(points, homography)
    if jitter.mirror:
        # After the flip the left eye's pixels are where a right eye belongs: relabel.
        perm = list(layout.mirror)
        crop_points, visible = crop_points[perm], visible[perm]
    return PreparedFace(
        image=np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32) / 255.0,
        points=crop_points.astype(np.float32),
        mask=visible & inside_crop(crop_points, out_size),
        matrix=matrix,
        homography=homography,
    )
