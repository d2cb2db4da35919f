"""BlazeFace face detection (Google MediaPipe's short- and full-range models): the runners.

One plain object with a pure call: ``detector(image) -> Detections``, and
``detector.detect_batch(images)`` for several frames. Two backends share everything but the
network (``realtime.detect.blazeface``: specs, letterboxing, anchors, decoding, NMS): ``BlazeFaceDetector``
runs the shipped ``.tflite`` through OpenCV dnn; ``realtime.detect.blazeface_torch.TorchBlazeFaceDetector``
runs the same networks ported to PyTorch (converted weights), on any torch device and batched.
``make_detector`` picks one (``DETECTOR_BACKENDS``; ``realtime.detect.blazeface_openvino`` runs the port
through OpenVINO, the default on CPU when it is installed), and
``BlazeFaceBoth`` unites the two models (the default, ``both``). The models' inputs and outputs are
described in ``realtime.detect.blazeface``.
"""
from __future__ import annotations

import time
from importlib.util import find_spec
from pathlib import Path
from typing import Sequence

import numpy as np

from realtime.core.assets import BLAZEFACE_DIR
from realtime.core.errors import UserError
from realtime.detect.blazeface import (  # noqa: F401  (re-exported: the detector's public names)
    BOTH_NMS_IOU,
    BOTH_SCORE_THRESHOLD,
    DEFAULT_DETECTOR,
    DETECTOR_HELP,
    DETECTORS,
    KEYPOINT_NAMES,
    MODELS,
    BlazeFaceBase,
    BlazeFaceSpec,
    Detections,
    decode_detections,
    default_threshold,
    iou_matrix,
    letterbox,
    ssd_anchors,
    weighted_nms,
)
from realtime.detect.blazeface_openvino import OpenVinoBlazeFaceDetector
from realtime.detect.blazeface_torch import TorchBlazeFaceDetector
from realtime.detect.tflite import read_tflite


class BlazeFaceDetector(BlazeFaceBase):
    """``detector(image) -> Detections`` for one BlazeFace model ("short" or "full") through
    OpenCV dnn (the shipped ``.tflite`` file itself). Attributes as ``BlazeFaceBase``;
    ``detect_batch`` runs the network once per image (OpenCV's tflite import takes batch 1).
    """

    def __init__(self, model: str = "short", model_path: str | Path | None = None,
                 score_threshold: float | None = None, nms_iou: float = 0.3, max_faces: int = 16) -> None:
        super().__init__(model, score_threshold, nms_iou, max_faces)
        path = Path(model_path) if model_path is not None else BLAZEFACE_DIR / self.spec.file_name
        if not path.is_file():
            raise UserError(f"BlazeFace model file not found: {path} (it ships with the package, from "
                            "assets/blazeface/; see assets/README.md for where it comes from)")
        side, count = self.spec.input_size, len(self.anchors)
        self.net, self.output_names = read_tflite(path, "BlazeFace model", (1, 3, side, side), (count * 16, count))

    def _forward(self, canvases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, S, S, 3) uint8 RGB -> regressors (B, A, 16), logits (B, A), one image at a time."""
        regressors, logits = [], []
        for canvas in canvases:
            blob = (canvas.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
            self.net.setInput(np.ascontiguousarray(blob))
            outputs = self.net.forward(self.output_names)
            by_size = {out.size: out for out in outputs}  # the layout varies across OpenCV releases
            regressors.append(by_size[16 * len(self.anchors)].reshape(-1, 16))
            logits.append(by_size[len(self.anchors)].reshape(-1))
        return np.stack(regressors).astype(np.float64), np.stack(logits).astype(np.float64)


DETECTOR_BACKENDS = ("auto", "opencv", "openvino", "torch")


def resolve_detector_backend(backend: str, device: str = "cpu") -> str:
    """"auto" -> "torch" on a CUDA device (detection batches on the GPU next to the landmarks),
    else "openvino" when OpenVINO is installed (3.5x less CPU than OpenCV dnn for both models
    here), else "opencv" (the timings are in docs/video.md, "Detector backends")."""
    if backend not in DETECTOR_BACKENDS:
        raise UserError(f"unknown detector backend {backend!r}; choose one of {', '.join(DETECTOR_BACKENDS)}")
    if backend == "auto":
        if str(device).startswith("cuda"):
            return "torch"
        return "openvino" if find_spec("openvino") is not None else "opencv"
    if backend == "openvino" and find_spec("openvino") is None:
        raise UserError("--detector-backend openvino needs OpenVINO: pip install 'rcn-realtime[fast]'")
    return backend


class BlazeFaceBoth:
    """``detector(image) -> Detections`` from the short- and full-range models together: the
    short-range model's faces as it finds them alone, plus the full-range model's faces that lie
    on none of them (IoU above ``nms_iou`` or centres within half a face: the same face).

    Why both (docs/detection.md has the numbers and the command): the short-range model alone
    finds no face in a handheld group shot whose faces are 40-70 px of a 640x480 frame, the
    full-range model alone misses a third of faces that fill the frame (a face close to a
    webcam); together they find both, for the two models' cost. The tracker runs the detector
    only every few frames, which keeps that cost small per frame. Where the short-range model
    finds a face its box is kept as it was (crops, and so the landmarks and their jitter, stay
    those of the short-range default on close faces).

    ``members`` are (short, full) ``BlazeFaceBase`` detectors (any backend). ``score_threshold``
    is the full-range model's; the short-range model runs ``SHORT_OFFSET`` above it (0.5 at the
    default 0.4, MediaPipe's own). ``nms_iou`` is the full-range model's NMS and the same-face test.
    """

    model = "both"
    SHORT_OFFSET = 0.1

    def __init__(self, members: Sequence[BlazeFaceBase], score_threshold: float | None = None,
                 nms_iou: float = BOTH_NMS_IOU, max_faces: int = 16) -> None:
        self.short, self.full = members
        self.members = [self.short, self.full]
        self.score_threshold = BOTH_SCORE_THRESHOLD if score_threshold is None else score_threshold
        self.nms_iou, self.max_faces, self.last_ms = nms_iou, max_faces, 0.0

    @property
    def score_threshold(self) -> float:
        return self.full.score_threshold

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise UserError(f"detector score threshold must be in [0, 1], got {value}")
        self.full.score_threshold, self.short.score_threshold = value, min(1.0, value + self.SHORT_OFFSET)

    @property
    def nms_iou(self) -> float:
        return self.full.nms_iou

    @nms_iou.setter
    def nms_iou(self, value: float) -> None:
        self.full.nms_iou = value

    def __call__(self, image: np.ndarray) -> Detections:
        """Detect faces in an (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA uint8 image."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """One ``Detections`` per image, best first; each model runs on the whole batch."""
        start = time.perf_counter()
        found = [self._union(near, far) for near, far in zip(self.short.detect_batch(images),
                                                              self.full.detect_batch(images))]
        self.last_ms = (time.perf_counter() - start) * 1e3
        return found

    def _union(self, near: Detections, far: Detections) -> Detections:
        if len(near) and len(far):
            centres = lambda d: (d.boxes[:, :2] + d.boxes[:, 2:]) / 2  # noqa: E731
            sides = (near.boxes[:, 2:] - near.boxes[:, :2]).mean(1)
            gaps = np.linalg.norm(centres(near)[:, None] - centres(far)[None], axis=2) / sides[:, None]
            same = (iou_matrix(near.boxes, far.boxes) > self.nms_iou) | (gaps < 0.5)
            keep = ~same.any(0)
            far = Detections(far.boxes[keep], far.scores[keep], far.keypoints[keep])
        boxes, scores = np.concatenate([near.boxes, far.boxes]), np.concatenate([near.scores, far.scores])
        order = np.argsort(-scores, kind="stable")[: self.max_faces]
        return Detections(boxes[order], scores[order], np.concatenate([near.keypoints, far.keypoints])[order])


def make_detector(model: str = DEFAULT_DETECTOR, backend: str = "auto", device: str = "cpu",
                  score_threshold: float | None = None) -> BlazeFaceBase | BlazeFaceBoth:
    """A BlazeFace detector of ``model`` (one of ``DETECTORS``: "short", "full" or "both") on
    ``backend`` (``resolve_detector_backend``); ``device`` is used by the torch backend only."""
    if model not in DETECTORS:
        raise UserError(f"unknown detector {model!r}; choose one of {', '.join(DETECTORS)}")
    if model == "both":
        members = [make_detector(name, backend, device) for name in ("short", "full")]
        return BlazeFaceBoth(members, score_threshold)
    resolved = resolve_detector_backend(backend, device)
    if resolved == "opencv":
        return BlazeFaceDetector(model, score_threshold=score_threshold)
    if resolved == "openvino":
        return OpenVinoBlazeFaceDetector(model, score_threshold=score_threshold)
    return TorchBlazeFaceDetector(model, device=device, score_threshold=score_threshold)
