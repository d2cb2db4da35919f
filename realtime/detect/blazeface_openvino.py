"""BlazeFace on OpenVINO's CPU plugin: the PyTorch port exported to ONNX once, compiled for the CPU.

Why: the detector runs on every frame the tracker asks for one, and both models together
(``BlazeFaceBoth``, the default) cost 10.2 ms of CPU a 640x480 frame through OpenCV dnn here (AMD
EPYC, one thread: short range 2.3 ms, full range 7.9 ms) against 2.9 ms through OpenVINO (0.8 and
2.1 ms). On the five-person clip (``video_01`` of docs/data.md) the tracker asks on about half the
frames, and the live window's worker spent as long in the detector as in the landmark network.

The networks are ``realtime.detect.blazeface_torch``'s (weights converted from the shipped
``.tflite`` files; their raw outputs agree with OpenCV's to 6e-5), exported with a fixed batch of
one into the backends' cache folder (``realtime.backends.base.cache_dir()/onnx``, named by the
weights' content and the torch version, written atomically), and compiled with fp32 inference
precision (OpenVINO would pick bf16 on CPUs that have it). Letterboxing, anchors, decoding and NMS
are ``realtime.detect.blazeface``'s, shared with the other backends. Optional: needs ``openvino``
(the ``fast`` extra); ``detector.resolve_detector_backend`` falls back to OpenCV without it.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch

from realtime.backends.base import cache_dir
from realtime.core import altstack
from realtime.core.atomic import atomic_path
from realtime.detect.blazeface import BlazeFaceBase
from realtime.detect.blazeface_torch import load_blazeface, weights_path_for


def blazeface_onnx(model: str) -> Path:
    """The ONNX file of the ``model`` ("short" or "full") port, from the cache or exported now."""
    weights = weights_path_for(model)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    path = cache_dir() / "onnx" / f"blazeface-{model}-{digest}-torch{torch.__version__.replace('+', '_')}.onnx"
    if path.is_file():
        return path
    net, _ = load_blazeface(weights)
    side = net.input_size
    with atomic_path(path) as tmp, warnings.catch_warnings():  # a fixed shape: OpenVINO plans it once
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, side, side),), str(tmp), dynamo=False, opset_version=18,
                          input_names=["canvas"], output_names=["regressors", "logits"])
    return path


class OpenVinoBlazeFaceDetector(BlazeFaceBase):
    """``detector(image) -> Detections`` like ``realtime.detect.detector.BlazeFaceDetector``,
    through OpenVINO (module docstring); ``threads`` None uses torch's intra-op thread count, as
    the landmark backends do. ``detect_batch`` runs the network once per image (batch one)."""

    def __init__(self, model: str = "short", score_threshold: float | None = None, nms_iou: float = 0.3,
                 max_faces: int = 16, threads: int | None = None) -> None:
        super().__init__(model, score_threshold, nms_iou, max_faces)
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
        with altstack.kept():  # OpenVINO's CPU plugin swaps the thread's signal stack (realtime.core.altstack)
            compiled = ov.Core().compile_model(str(blazeface_onnx(model)), "CPU", config)
        self._request = compiled.create_infer_request()  # one request: a detector serves one thread
        self._count = len(self.anchors)

    def _forward(self, canvases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, S, S, 3) uint8 RGB -> regressors (B, A, 16), logits (B, A), float64, one image at a time."""
        regressors, logits = [], []
        for canvas in canvases:
            blob = np.ascontiguousarray((canvas.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None])
            self._request.infer({0: blob})
            regressors.append(self._request.get_output_tensor(0).data.reshape(self._count, 16).astype(np.float64))
            logits.append(self._request.get_output_tensor(1).data.reshape(self._count).astype(np.float64))
        return np.stack(regressors), np.stack(logits)
