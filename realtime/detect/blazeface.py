"""BlazeFace without a runtime: model specs, anchors, letterboxing, decoding and NMS, shared by the
OpenCV runner (``realtime.detect.detector.BlazeFaceDetector``) and the PyTorch port
(``realtime.detect.blazeface_torch``) through ``BlazeFaceBase``.

What the models expect and return (``assets/README.md``, and MediaPipe's
``face_detection_*_range.pbtxt`` graphs): an RGB image letterboxed (aspect kept, centred, zero
padding) to a square input of S x S pixels, values in [-1, 1]; per anchor 16 regressors (box
centre dx, dy, width, height, then 6 keypoints x, y, all in input pixels relative to the anchor
centre) and one logit. Anchors are MediaPipe's SSD anchors with ``fixed_anchor_size``: every
anchor is 1 x 1 in normalised units, centred at ((i + 0.5) / grid, (j + 0.5) / grid).

- short range (faces within ~2 m): S = 128, strides 8, 16, 16, 16 -> 16x16x2 + 8x8x6 = 896 anchors
- full range (small, far faces): S = 192, stride 4 -> 48x48x1 = 2304 anchors

Keypoints, in MediaPipe's order, named from the subject's point of view (so the subject's right
eye is on the image's left in an unmirrored photo): right eye, left eye, nose tip, mouth centre,
right ear tragion, left ear tragion. Overlapping boxes are merged by MediaPipe's weighted NMS:
each cluster of boxes with IoU above ``nms_iou`` is replaced by the score-weighted mean of its
boxes and keypoints, with the best score.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from realtime.core.errors import UserError

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_centre", "right_ear", "left_ear")


@dataclass(frozen=True)
class BlazeFaceSpec:
    """One BlazeFace model: file name, input side S pixels, anchor strides, default threshold."""

    file_name: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # MediaPipe: 2 (aspect 1.0 + interpolated scale) or 1
    score_threshold: float


MODELS = {
    "short": BlazeFaceSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5),
    "full": BlazeFaceSpec("face_detection_full_range.tflite", 192, (4,), 1, 0.6),
}
# What ``make_detector`` and the CLIs' ``--detector`` take: one model, or both pooled (``BlazeFaceBoth``).
DETECTORS = ("short", "full", "both")
DEFAULT_DETECTOR = "both"
# "both": the full-range model's score threshold (the short-range one runs 0.1 above it) and NMS IoU,
# chosen from the measurements in docs/detection.md (python -m train.tools.score_detector). One model alone
# keeps MediaPipe's.
BOTH_SCORE_THRESHOLD = 0.4
BOTH_NMS_IOU = 0.2


DETECTOR_HELP = ("face detector: both (default: BlazeFace short range plus the full range's other faces, from a few metres "
                 "away to filling the frame; docs/detection.md), short (faces within ~2 m, cheapest) or full "
                 "(small, far faces)")


def default_threshold(detector: str) -> float:
    """The score threshold ``detector`` (one of ``DETECTORS``) runs with unless told otherwise."""
    return BOTH_SCORE_THRESHOLD if detector == "both" else MODELS[detector].score_threshold


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, best first. ``boxes`` (N, 4) xyxy image pixels; ``scores`` (N,)
    in [0, 1]; ``keypoints`` (N, 6, 2) image pixels in ``KEYPOINT_NAMES`` order."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return int(len(self.scores))

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 6, 2)))


def ssd_anchors(input_size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """MediaPipe SSD anchor centres with fixed size: (A, 2) (cx, cy) normalised to [0, 1].

    Consecutive layers with the same stride share one grid, each adding ``anchors_per_layer``
    anchors per cell, as MediaPipe's ``SsdAnchorsCalculator`` orders them (cell-major).
    """
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        repeats = 0
        while layer < len(strides) and strides[layer] == stride:
            repeats += anchors_per_layer
            layer += 1
        grid = int(np.ceil(input_size / stride))
        ys, xs = np.mgrid[0:grid, 0:grid]
        cell = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
        centres.append(np.repeat(cell, repeats, axis=0))
    return np.concatenate(centres).astype(np.float64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (N, 4) and b (M, 4), xyxy -> (N, M)."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=-1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float) -> Detections:
    """MediaPipe's weighted NMS: boxes (N, 4), scores (N,), keypoints (N, P, 2) -> Detections."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    remaining = np.ones(len(scores), dtype=bool)
    out_boxes, out_scores, out_points = [], [], []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        cluster = remaining & (iou_matrix(boxes[i:i + 1], boxes)[0] > iou_threshold)
        cluster[i] = True
        weights = scores[cluster] / scores[cluster].sum()
        out_boxes.append(weights @ boxes[cluster])
        out_points.append(np.tensordot(weights, keypoints[cluster], axes=1))
        out_scores.append(scores[i])
        remaining &= ~cluster
    if not out_scores:
        return Detections.empty()
    return Detections(np.array(out_boxes), np.array(out_scores), np.array(out_points))


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) grey, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA uint8 -> (H, W, 3) RGB."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise UserError(f"expected a grey, RGB or RGBA image, got an array of shape {image.shape}")


def letterbox(image_rgb: np.ndarray, size: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Resize keeping the aspect ratio and centre on a zero ``size`` x ``size`` canvas.

    Returns (canvas (size, size, 3) uint8, scale, offset (2,)) with
    ``p_input = scale * p_image + offset`` for pixel-centre coordinates.
    """
    h, w = image_rgb.shape[:2]
    scale = size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image_rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x0, y0 = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[y0:y0 + new_h, x0:x0 + new_w] = resized
    sx, sy = new_w / w, new_h / h
    # pixel-centre mapping: p_in + 0.5 = s (p + 0.5) + x0; the small sx/sy rounding is averaged
    scale_xy = np.array([sx, sy])
    offset = 0.5 * scale_xy - 0.5 + np.array([x0, y0], dtype=np.float64)
    return canvas, float(scale_xy.mean()), offset


def decode_detections(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, input_size: int,
                      scale: float, offset: np.ndarray, score_threshold: float, nms_iou: float,
                      max_faces: int) -> Detections:
    """One image's raw network outputs -> Detections in image pixels.

    ``regressors`` (A, 16) and ``logits`` (A,) as the tflite graph gives them, ``anchors`` (A, 2)
    normalised centres, ``scale``/``offset`` the letterbox mapping (``letterbox``). Anchors
    scoring below ``score_threshold`` are dropped, the rest decoded, merged by weighted NMS and
    cut to the ``max_faces`` best.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
    keep = scores >= score_threshold
    regressors, scores, anchors = regressors[keep], scores[keep], anchors[keep] * input_size
    # input pixels with pixel edges at 0 and size; -0.5 makes them pixel-centre coordinates
    centres = regressors[:, 0:2] + anchors - 0.5
    half = regressors[:, 2:4] / 2.0
    boxes_in = np.concatenate([centres - half, centres + half], axis=1)
    points_in = regressors[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :] - 0.5
    boxes = (boxes_in.reshape(-1, 2, 2) - offset) / scale
    points = (points_in - offset) / scale
    detections = weighted_nms(boxes.reshape(-1, 4), scores, points, nms_iou)
    if len(detections) > max_faces:
        n = max_faces
        detections = Detections(detections.boxes[:n], detections.scores[:n], detections.keypoints[:n])
    return detections


class BlazeFaceBase:
    """What every BlazeFace backend shares: model spec, anchors, letterboxing, decoding, timing.

    Subclasses implement ``_forward(canvases (B, S, S, 3) uint8 RGB) -> (regressors (B, A, 16),
    logits (B, A))`` as float64 numpy. ``score_threshold`` (None: the model's MediaPipe default,
    0.5 short / 0.6 full) and ``nms_iou`` are plain attributes and may be changed between calls.
    ``last_ms`` holds the time of the last call (preprocess + network + decode) in milliseconds.
    """

    def __init__(self, model: str, score_threshold: float | None, nms_iou: float, max_faces: int) -> None:
        if model not in MODELS:
            raise UserError(f"unknown BlazeFace model {model!r}; choose one of {sorted(MODELS)}")
        if score_threshold is not None and not 0.0 <= score_threshold <= 1.0:
            raise UserError(f"detector score threshold must be in [0, 1], got {score_threshold}")
        self.model = model
        self.spec = MODELS[model]
        self.anchors = ssd_anchors(self.spec.input_size, self.spec.strides, self.spec.anchors_per_layer)
        self.score_threshold = self.spec.score_threshold if score_threshold is None else score_threshold
        self.nms_iou = nms_iou
        self.max_faces = max_faces
        self.last_ms = 0.0

    def _forward(self, canvases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __call__(self, image: np.ndarray) -> Detections:
        """Detect faces in an (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA uint8 image."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """One ``Detections`` per image; the images' letterboxed canvases go through ``_forward``
        together (one forward pass where the backend batches)."""
        start = time.perf_counter()
        size = self.spec.input_size
        found: list[Detections] = [Detections.empty() for _ in images]
        used, canvases, mappings = [], [], []
        for i, image in enumerate(images):
            rgb = _to_rgb(np.asarray(image))
            if min(rgb.shape[:2]) < 2:
                continue
            canvas, scale, offset = letterbox(rgb, size)
            used.append(i)
            canvases.append(canvas)
            mappings.append((scale, offset))
        if used:
            regressors, logits = self._forward(np.stack(canvases))
            for j, i in enumerate(used):
                found[i] = decode_detections(regressors[j], logits[j], self.anchors, size, *mappings[j],
                                             self.score_threshold, self.nms_iou, self.max_faces)
        self.last_ms = (time.perf_counter() - start) * 1e3
        return found
