"""The synthetic landmark benchmark: procedurally drawn faces with five exactly known landmarks.

No real face dataset can be fetched here, so this one is drawn (``train/data/synthetic_render.py``: the
face model; ``train/data/synthetic_parts.py``: eyes and mouths, shared with the look-alikes;
``train/data/synthetic_scene.py``: canvas, background, clutter, occluders, degradations). Each
image is (size, size) grey, size 96 by default, with one face in the mtfl5 layout (left_eye,
right_eye, nose, mouth_left, mouth_right; "left" is the image left of an upright face) placed so
that its 2016 "eyes_mouth" box is 55-92% of the image and mostly inside it.

It is built so that, as for real faces in the RCN paper, coarse features alone and fine features
alone both fall short:

- Local appearance is ambiguous: the clutter holds look-alikes drawn by the same code as the face
  parts (single eyes, eye pairs with brows, mouths, dark blobs) at the face's scale, and
  occluders often hide a landmark. Telling the real eye from a distractor, or placing a hidden
  point, needs the context of the whole face (coarse features).
- The exact position hangs on small details: an eye landmark is the pupil, which the gaze moves
  inside the almond (by 5% of the eye distance on average, up to 13%); mouth corners are the
  sharp vertices where the tapering lips meet; the nose landmark is a ~1-2 px highlight on a tip
  that pseudo-yaw shifts sideways (10% of the eye distance on average). Finding the eye blob,
  the mouth blob or the nose region is not enough (fine features needed).

Attributes, computed from the five points only (so a landmark model can predict them, as the
2018 paper's sequential multitasking needs):

- ``cls`` in {0, 1, 2}: bins of r = mouth width / eye distance (|mouth_right - mouth_left| /
  |right_eye - left_eye|) at edges 0.76 and 0.96. Faces are drawn with r uniform in
  [0.60, 0.72], [0.80, 0.92] or [1.00, 1.12] (class equiprobable), so the classes are separated
  by a margin of 0.04 in r; yaw does not change r.
- ``orientation``: the in-plane angle of the eye line, atan2(dy, dx) of right_eye - left_eye in
  degrees (image y points down, so positive is clockwise on screen); roll is uniform in +-45.

Determinism: image i of ``generate(n, seed, size)`` comes from its own generator seeded by
(seed, i), so the arrays do not depend on the number of worker processes and a shorter run is a
prefix of a longer one. Splits use different seed streams and never share images.
"""
from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.core.assets import synthetic_cache_dir as cache_dir
from realtime.core.atomic import atomic_path
from realtime.core.errors import UserError
from train.data.datasets.landmark_set import FaceSample, LandmarkSet
from train.data.synthetic_render import CLASS_EDGES, RenderOptions, eyes_mouth_box, render

log = logging.getLogger(__name__)

# Bump whenever the drawing changes: it is part of the cache key.
GENERATOR_VERSION = "synth-1"
SPLIT_SIZES = {"train": 20000, "val": 2000, "test": 2000}
_SPLIT_STREAMS = {"train": 101, "val": 202, "test": 303}
ATTRIBUTE_KINDS = {"cls": "class:3", "orientation": "angle"}
_PARALLEL_FROM = 1000  # images; below this one process is faster than starting workers
_WORKERS = 2
_CHUNK = 500


@dataclass(frozen=True)
class SynthArrays:
    """A generated set: ``images`` (N, H, W) uint8 grey, ``points`` (N, 5, 2) float32 (x, y)
    pixels, ``cls`` (N,) int64, ``orientation`` (N,) float32 degrees."""

    images: np.ndarray
    points: np.ndarray
    cls: np.ndarray
    orientation: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def class_from_points(points: np.ndarray) -> np.ndarray:
    """(..., 5, 2) -> (...,) int64 class: mouth width / eye distance binned at CLASS_EDGES."""
    points = np.asarray(points, dtype=np.float64)
    ratio = (np.linalg.norm(points[..., 4, :] - points[..., 3, :], axis=-1)
             / np.linalg.norm(points[..., 1, :] - points[..., 0, :], axis=-1))
    return np.digitize(ratio, CLASS_EDGES).astype(np.int64)


def orientation_from_points(points: np.ndarray) -> np.ndarray:
    """(..., 5, 2) -> (...,) float32 degrees: angle of the line from left to right eye."""
    points = np.asarray(points, dtype=np.float64)
    d = points[..., 1, :] - points[..., 0, :]
    return np.degrees(np.arctan2(d[..., 1], d[..., 0])).astype(np.float32)


def _render_range(seed: int, size: int, start: int, stop: int, options: RenderOptions
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Images start..stop-1: (M, size, size) uint8 and (M, 5, 2) float32."""
    images = np.empty((stop - start, size, size), np.uint8)
    points = np.empty((stop - start, 5, 2), np.float32)
    for j, i in enumerate(range(start, stop)):
        images[j], points[j] = render(np.random.default_rng([seed, i]), size, options)
    return images, points


def _init_worker() -> None:
    cv2.setNumThreads(1)


def generate(n: int, seed: int, size: int = 96, *, options: RenderOptions = RenderOptions(),
             workers: int | None = None) -> SynthArrays:
    """Draw ``n`` images of ``size`` x ``size`` pixels.

    ``workers`` processes share the work in chunks of consecutive indices (default: 2 from 1000
    images on, else 1; always 1 inside a daemon process, which may not have children). The result
    does not depend on ``workers``. Workers are spawned, so a script that calls this with many
    images needs the usual ``if __name__ == "__main__":`` guard.
    """
    if n <= 0:
        raise UserError(f"number of synthetic images must be positive, got {n}")
    if seed < 0:
        raise UserError(f"synthetic seed must be >= 0, got {seed}")
    if size < 32:
        raise UserError(f"synthetic image size must be at least 32, got {size}")
    workers = workers or (_WORKERS if n >= _PARALLEL_FROM else 1)
    if workers == 1 or multiprocessing.current_process().daemon:
        images, points = _render_range(seed, size, 0, n, options)
    else:
        bounds = [(a, min(a + _CHUNK, n)) for a in range(0, n, _CHUNK)]
        # spawn, not fork: cv2's thread pool (and torch's, if loaded) does not survive a fork reliably
        with ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), _init_worker) as pool:
            parts = list(pool.map(_render_range, *zip(*[(seed, size, a, b, options) for a, b in bounds])))
        images = np.concatenate([p[0] for p in parts])
        points = np.concatenate([p[1] for p in parts])
    return SynthArrays(images, points, class_from_points(points), orientation_from_points(points))


def _stream_seed(split: str, seed: int) -> int:
    """A 63-bit seed of its own for each (split, seed)."""
    state = np.random.SeedSequence([_SPLIT_STREAMS[split], seed]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _read_cache(path: Path, n: int, size: int) -> SynthArrays | None:
    """The cached arrays, or None when absent, unreadable or not what was asked for."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = SynthArrays(f["images"], f["points"], f["cls"], f["orientation"])
            version = str(f["version"])
    except Exception as exc:  # a truncated or corrupt file: any decoding error means regenerate
        log.warning("synthetic cache %s is unreadable (%s); regenerating", path, exc)
        return None
    shapes_ok = (arrays.images.shape == (n, size, size) and arrays.images.dtype == np.uint8
                 and arrays.points.shape == (n, 5, 2) and arrays.cls.shape == (n,)
                 and arrays.orientation.shape == (n,))
    if version != GENERATOR_VERSION or not shapes_ok:
        log.warning("synthetic cache %s does not match (version %s); regenerating", path, version)
        return None
    return arrays


def _write_cache(path: Path, arrays: SynthArrays) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=arrays.images, points=arrays.points, cls=arrays.cls,
                 orientation=arrays.orientation, version=np.array(GENERATOR_VERSION))


def load_synthetic(split: str, n: int | None = None, seed: int = 0, size: int = 96) -> LandmarkSet:
    """The ``split`` ("train", "val" or "test") of the benchmark as a LandmarkSet, cached.

    ``n`` defaults to 20000 / 2000 / 2000. Samples hold their image as a read-only
    (H, W, 3) uint8 RGB view of the grey array (the grey value broadcast to three channels).
    """
    if split not in SPLIT_SIZES:
        raise UserError(f"unknown synthetic split {split!r}; known: {', '.join(SPLIT_SIZES)}")
    n = SPLIT_SIZES[split] if n is None else n
    if n <= 0:
        raise UserError(f"number of synthetic images must be positive, got {n}")
    if seed < 0:
        raise UserError(f"synthetic seed must be >= 0, got {seed}")
    path = cache_dir() / f"synthetic-{GENERATOR_VERSION}-{split}-seed{seed}-n{n}-{size}px.npz"
    arrays = _read_cache(path, n, size)
    if arrays is None:
        t0 = time.monotonic()
        arrays = generate(n, _stream_seed(split, seed), size)
        log.info("drew %d synthetic %s images in %.1f s; caching in %s", n, split, time.monotonic() - t0, path)
        _write_cache(path, arrays)
    return _to_landmark_set(split, arrays)


def _to_landmark_set(split: str, arrays: SynthArrays) -> LandmarkSet:
    h, w = arrays.images.shape[1:]
    samples = [
        FaceSample(points=arrays.points[i], visible=np.ones(5, bool), layout="mtfl5", subset=split,
                   image=np.broadcast_to(arrays.images[i][:, :, None], (h, w, 3)),
                   attributes={"cls": int(arrays.cls[i]), "orientation": float(arrays.orientation[i])},
                   ident=f"synth-{split}-{i}")
        for i in range(len(arrays))
    ]
    return LandmarkSet(name=f"synth:{split}", layout="mtfl5", samples=samples,
                       attribute_kinds=dict(ATTRIBUTE_KINDS))


_COLOURS = ((0, 0, 255), (0, 160, 255), (0, 255, 0), (255, 0, 255), (255, 128, 0))  # BGR per landmark


def write_preview(path: str | Path, n: int = 16, seed: int = 0, zoom: int = 3) -> Path:
    """Save a PNG grid of ``n`` examples, zoomed (nearest), with their landmarks, eyes_mouth box,
    class and orientation drawn on; written atomically. Returns the path."""
    arrays = generate(n, seed)
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    size = arrays.images.shape[1] * zoom
    sheet = np.full((rows * (size + 4) + 4, cols * (size + 4) + 4, 3), 255, np.uint8)
    for i in range(n):
        tile = cv2.cvtColor(cv2.resize(arrays.images[i], (size, size), interpolation=cv2.INTER_NEAREST),
                            cv2.COLOR_GRAY2BGR)
        pts = (arrays.points[i] + 0.5) * zoom - 0.5  # pixel centres stay centres
        cx, cy, side = eyes_mouth_box(arrays.points[i].astype(np.float64))
        lo = (np.array([cx, cy]) - side / 2 + 0.5) * zoom - 0.5
        cv2.rectangle(tile, _fix(lo), _fix(lo + side * zoom), (0, 220, 220), 1, cv2.LINE_AA, 4)
        for k, p in enumerate(pts):  # cross hairs with a gap, so the feature itself stays visible
            for d in np.array([(1, 0), (-1, 0), (0, 1), (0, -1)]):
                cv2.line(tile, _fix(p + 3 * d), _fix(p + 8 * d), _COLOURS[k], 1, cv2.LINE_AA, 4)
        label = f"c{arrays.cls[i]} {arrays.orientation[i]:+.0f}deg"
        cv2.putText(tile, label, (4, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (4, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(i, cols)
        sheet[4 + r * (size + 4):4 + r * (size + 4) + size, 4 + c * (size + 4):4 + c * (size + 4) + size] = tile
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise UserError(f"cannot write preview image {path}")
    return Path(path)


def _fix(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * 16)), int(round(p[1] * 16))
