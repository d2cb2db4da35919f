"""Batched landmark inference: face crops in, (F, K, 2) image-pixel points and (F, K) scores out.

torch lives here (and in the model files) only. One plain object with a pure call:

    points, scores = landmarker(image, rois)      # all faces of one frame in ONE batch
    results = landmarker.batch([(image, rois), ...])  # several frames in one batch (file mode)

Each ROI is a ``tracker.FaceRoi`` or a bare (2, 3) crop matrix (image pixels -> crop pixels, as
``crops.crop_matrix``). Faces are warped to the model's input size (grey when the model takes one
channel), run through the network, decoded on the device (soft-argmax by default; only the
(F, K, 2) coordinates and (F, K) scores cross to the host, never the heat maps), and mapped back to
image pixels with the inverse crop matrix. Any keypoint count works: K comes from the weights file.
The network and decoder run on an inference backend (``realtime/backends``): fp32 eager torch by
default, any other by name, or ``"auto"``, the fastest whose landmarks match eager's within 0.1 px.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch

from realtime.geometry.crops import warp_crop
from realtime.backends import Backend, make_backend
from realtime.stages.device_crops import device_crops
from realtime.core.errors import UserError
from realtime.geometry.layouts import Layout, get_layout, layout_for_count
from realtime.stages.tracker import FaceRoi
from realtime.models.weights import load_landmark_model, torch_device, weights_info

Roi = Union[FaceRoi, np.ndarray]
DECODERS = ("softargmax", "argmax")


def roi_matrix(roi: Roi) -> np.ndarray:
    """The (2, 3) float64 image -> crop matrix of a FaceRoi or of a bare matrix."""
    matrix = np.asarray(roi.matrix if isinstance(roi, FaceRoi) else roi, dtype=np.float64)
    if matrix.shape != (2, 3):
        raise ValueError(f"a crop matrix must be (2, 3), got {matrix.shape}")
    return matrix


def crops_to_image(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Crop-pixel points (F, K, 2) and their (F, 2, 3) image -> crop matrices -> image pixels."""
    m = np.asarray(matrices, np.float64).reshape(-1, 2, 3)
    # the 2x2 linear parts inverted in closed form, all faces at once (np.linalg.inv per face
    # cost more than the mapping itself)
    a, b, c, d = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    inverse_t = np.stack([np.stack([d, -c], -1), np.stack([-b, a], -1)], -2) / (a * d - b * c)[:, None, None]
    return (np.asarray(points, np.float64) - m[:, None, :, 2]) @ inverse_t


class Landmarker:
    """``landmarker(image, rois) -> (points (F, K, 2) image px, scores (F, K))`` for one weights file.

    ``decoder`` None decodes with soft-argmax (sub-pixel, the live default) at the file's
    ``beta``, whatever decoder the file names: on the placeholder ``rcn_mtfl_synth`` (whose file
    says argmax) soft-argmax scores 3.73% vs 4.59% NME (eye centres) on ``synth:test``
    (``python -m train evaluate ... --decoder``). "argmax" gives the whole-pixel maximum. ``last_ms`` holds the last call's time in
    milliseconds (warp + network + decode + mapping back). ``crop_on_device`` makes the crops on
    the torch device (``realtime.stages.device_crops``: frames uploaded once, affine sampling there, the
    face batch padded to a bucket size) instead of with cv2 on the host; off by default.

    ``backend`` names the inference backend (``realtime.backends.BACKENDS``, or "auto"); an
    unknown or unavailable one is a UserError. ``batch_size`` is the number of faces per call it
    should be fastest at (compiled backends build for it, "auto" times it). ``threads`` the
    intra-op threads of ONNX Runtime and OpenVINO (None: torch's count; the pipeline passes
    ``realtime.backends.base.pipeline_threads()``). ``backend.name`` says which one runs.
    """

    def __init__(self, weights_path: str | Path, device: str = "cpu", decoder: str | None = None,
                 backend: str = "eager", batch_size: int = 1,
                 crop_on_device: bool = False, threads: int | None = None) -> None:
        self.device = torch_device(device)
        self.decoder = decoder or "softargmax"
        if self.decoder not in DECODERS:
            raise UserError(f"unknown decoder {decoder!r}; choose one of {DECODERS}")
        self.weights_path = Path(weights_path)
        self.model = load_landmark_model(self.weights_path, self.device)
        self.config = self.model.config
        # the re-detect threshold calibrated for this model's score scale, when its file has one
        self.track_min_confidence: float | None = weights_info(self.weights_path).get("track_min_confidence")
        self.input_size = int(self.config.input_size)
        self.num_points = int(self.config.num_points)
        self.grey = int(self.config.in_channels) == 1
        self.layout: Layout | None = (get_layout(self.config.layout) if self.config.layout
                                      else layout_for_count(self.num_points))
        self.crop_on_device = crop_on_device
        self.backend: Backend = make_backend(backend, self.model, self.device, decoder=self.decoder,
                                             beta=self.config.beta, batch_size=batch_size, threads=threads)
        self.last_ms = 0.0

    def warp(self, image: np.ndarray, matrices: Sequence[np.ndarray]) -> np.ndarray:
        """(H, W, 3) RGB or (H, W) grey uint8 -> (F, S, S, C) uint8 crops, C = the model's channels."""
        shape = (0, self.input_size, self.input_size, 1 if self.grey else 3)
        crops = [warp_crop(image, m, self.input_size, self.grey) for m in matrices]
        return np.stack(crops) if crops else np.zeros(shape, np.uint8)

    def infer_crops(self, crops: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(N, S, S, C) uint8 crops, or (N, C, S, S) float crops in [0, 1] already on the device
        (``device_crops``) -> crop-pixel points (N, K, 2) and scores (N, K), one batch."""
        if len(crops) == 0:
            return np.zeros((0, self.num_points, 2)), np.zeros((0, self.num_points))
        run_numpy = self.backend.run_numpy
        if run_numpy is not None and not isinstance(crops, torch.Tensor):
            # the runtimes outside torch take host arrays: no tensor made, converted or copied back
            x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2)).astype(np.float32)
            np.divide(x, np.float32(255.0), out=x)
            points, scores = run_numpy(x)
            return points.astype(np.float64), scores.astype(np.float64)
        with torch.inference_mode():
            if isinstance(crops, torch.Tensor):
                x = crops
            else:
                x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)
                x = x.permute(0, 3, 1, 2).float().div_(255.0)
            points, scores = self.backend(x)
            return points.double().cpu().numpy(), scores.double().cpu().numpy()

    def __call__(self, image: np.ndarray, rois: Sequence[Roi]) -> tuple[np.ndarray, np.ndarray]:
        """All faces of one frame in one batch: image (H, W, 3) uint8 RGB -> ((F, K, 2), (F, K))."""
        return self.batch([(image, rois)])[0]

    def batch(self, frames: Sequence[tuple[np.ndarray, Sequence[Roi]]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Several frames' faces in one network batch; one (points, scores) pair per frame."""
        if not frames:
            return []
        start = time.perf_counter()
        matrices = [[roi_matrix(r) for r in rois] for _, rois in frames]
        if self.crop_on_device:
            crops = device_crops([image for image, _ in frames], matrices, self.input_size, self.grey, self.device)
        else:
            crops = np.concatenate([self.warp(image, mats) for (image, _), mats in zip(frames, matrices)])
        flat = [m for mats in matrices for m in mats]
        points, scores = (a[:len(flat)] for a in self.infer_crops(crops))  # bucket padding dropped
        image_points = crops_to_image(points, np.array(flat).reshape(-1, 2, 3))
        out, i = [], 0
        for mats in matrices:
            out.append((image_points[i:i + len(mats)], scores[i:i + len(mats)]))
            i += len(mats)
        self.last_ms = (time.perf_counter() - start) * 1e3
        return out

    def warmup(self, batch_size: int = 1) -> None:
        """One throw-away inference so the first real frame is not slow."""
        self.infer_crops(np.zeros((batch_size, self.input_size, self.input_size, 1 if self.grey else 3), np.uint8))
