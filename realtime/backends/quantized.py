"""int8 backends: the exported network statically quantized, calibrated on real face crops.

- ``onnxruntime_int8``: ONNX Runtime's own static quantizer (``onnxruntime.quantization``, no
  extra package): QDQ format, int8 weights per output channel, uint8 activations, MinMax ranges.
- ``openvino_int8``: NNCF's post-training quantization of the OpenVINO model (``nncf``, the
  ``int8`` extra), saved as OpenVINO IR. OpenVINO misreads ONNX Runtime's QDQ files here
  (landmarks off by 55 px), so it gets its own quantizer rather than sharing one file.

Both quantize only the convolutions and keep the last one (it writes the heat-map logits) and the
decoder (softmax, soft-argmax sums) in float32: quantizing those took held-out NME from 3.88% to
4.9-6.4% on the bundled model; keeping them float gives 3.97% (onnxruntime) and 4.03% (NNCF).
Calibration crops come from the bundled clip (``assets/demo.mp4``, framed from its true points
as in training plus a turned, zoomed, shifted copy of each, as the tracker makes them). The
quantized files are cached beside the float ONNX (``cache_dir()``), keyed by the model's content,
the decoder and the quantizer's version, and written atomically.

int8 moves single landmarks by up to 4-4.6 crop pixels on the bundled model's held-out crops (0.3-0.4
px on average; bf16: 0.28 at most), so ``auto`` never picks these; they are for throughput where that
error is acceptable (``docs/results_faces68.md``).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from realtime.backends.base import Backend, cache_dir, model_digest, package_version
from realtime.backends.exported import _quiet, onnx_file, ort_backend, ov_backend
from realtime.core.assets import DEMO_CLIP, DEMO_TRUTH
from realtime.core import altstack
from realtime.core.atomic import atomic_path
from realtime.core.errors import UserError
from realtime.geometry.crops import crop_matrix, face_box_from_points, warp_crop
from realtime.geometry.layouts import get_layout

log = logging.getLogger(__name__)
CLIP, CLIP_TRUTH = DEMO_CLIP, DEMO_TRUTH
RECIPE = 3  # 2: quantized from the split-concat export (inference_form); 3: the decoder's MatMul kept float; bump when the calibration crops or quantizer settings change: it keys the cache
CALIBRATION_EVERY, CALIBRATION_OFFSET = 10, 5  # clip frames 5, 15, 25, ...: 60 crops (the parity tests use 0, 30, ...)
DECODER_OPS = ("Softmax", "ReduceSum", "ReduceMax", "ArgMax", "MatMul")  # MatMul: soft-argmax's centre of mass


def clip_crops(size: int, grey: bool, every: int, offset: int = 0) -> np.ndarray:
    """(N, size, size, C) uint8 face crops of the bundled clip, frames ``offset``,
    ``offset + every``, ...: each framed from its true points as in training, plus a jittered
    copy (turned, zoomed, shifted) as the tracker makes them."""

    if not CLIP.is_file() or not CLIP_TRUTH.is_file():
        raise UserError(f"int8 calibration needs the bundled clip {CLIP} and {CLIP_TRUTH.name}; restore assets/")
    truth = json.loads(CLIP_TRUTH.read_text())
    layout = get_layout(truth["layout"])
    capture, crops = cv2.VideoCapture(str(CLIP)), []
    try:
        for index in range(truth["num_frames"]):
            ok, frame = capture.read()
            if not ok:
                break
            if index < offset or (index - offset) % every:
                continue
            image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            points = np.asarray(truth["frames"][index]["points"], np.float64)
            cx, cy, side = face_box_from_points(points, np.ones(len(points), bool), layout)
            jitter = [{}, {"rotation_deg": 12.0 - index % 25, "scale": 1.1, "shift": (0.04, -0.03)}]
            crops += [warp_crop(image, crop_matrix(cx, cy, side, size, **j), size, grey) for j in jitter]
    finally:
        capture.release()
    if not crops:
        raise UserError(f"could not read frames of {CLIP} for int8 calibration")
    return np.stack(crops).reshape(len(crops), size, size, -1)


def calibration_batch(model: nn.Module) -> np.ndarray:
    """(N, C, S, S) float32 in [0, 1]: the model's input for the calibration crops."""
    size, grey = int(model.config.input_size), int(model.config.in_channels) == 1
    crops = clip_crops(size, grey, CALIBRATION_EVERY, CALIBRATION_OFFSET)
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32) / np.float32(255.0)


def _key(model: nn.Module, decoder: str, beta: float, *packages: str) -> str:
    versions = "-".join(f"{p}{package_version(p)}" for p in ("torch", *packages))
    return f"{model_digest(model, decoder, beta)}-r{RECIPE}-{versions}".replace("+", "_")


def cpu_has_vnni() -> bool:
    """Whether this CPU has VNNI (AVX512-VNNI or AVX-VNNI) int8 dot products. Without them ONNX
    Runtime's u8 x s8 convolutions use VPMADDUBSW, whose 16-bit sums saturate (its quantization
    docs); on such an AVX2-only host the bundled model's int8 points moved 1.9 px on average
    instead of 0.3 px, so the quantizer is told ``reduce_range`` (7-bit weights) there."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True  # not Linux on x86: ONNX Runtime's ARM kernels have no such saturation
    return "avx512_vnni" in flags or "avx_vnni" in flags or " avx2" not in flags


def ort_int8_file(model: nn.Module, decoder: str, beta: float) -> Path:
    """The float ONNX file statically quantized by ONNX Runtime (cached, atomic)."""
    reduce_range = not cpu_has_vnni()
    path = cache_dir() / "int8" / f"{_key(model, decoder, beta, 'onnxruntime')}{'-rr' if reduce_range else ''}.onnx"
    if path.is_file():
        return path
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = onnx_file(model, decoder, beta)
    batches = calibration_batch(model)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches[i:i + 16] for i in range(0, len(batches), 16))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"crops": batch}

    with tempfile.TemporaryDirectory() as scratch, _quiet(), atomic_path(path) as tmp:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        convs = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"]
        if not convs:
            raise UserError("the exported landmark model has no convolution to quantize")
        # graph nodes are topologically sorted: the last Conv writes the heat-map logits
        quantize_static(str(prepared), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=["Conv"],
                        nodes_to_exclude=[convs[-1]], reduce_range=reduce_range)
    log.info("quantized the landmark model for onnxruntime: %s", path)
    return path


def onnxruntime_int8(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
    """ONNX Runtime on the CPU running the statically quantized (int8 convolutions) model."""
    backend = ort_backend("onnxruntime_int8", ort_int8_file(model, decoder, beta), device)
    backend.note = f"{backend.note}, int8 convolutions (calibrated on the bundled clip)"
    return backend


def ov_int8_file(model: nn.Module, decoder: str, beta: float) -> Path:
    """The OpenVINO model quantized by NNCF, as IR (``model.xml`` + ``model.bin`` in a folder
    that is renamed into place whole, so a reader never sees half of it)."""
    folder = cache_dir() / "int8" / _key(model, decoder, beta, "openvino", "nncf")
    xml = folder / "model.xml"
    if xml.is_file():
        return xml
    import nncf
    import openvino as ov

    batches = calibration_batch(model)
    core_model = ov.Core().read_model(str(onnx_file(model, decoder, beta)))
    convs = [op.get_friendly_name() for op in core_model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    if not convs:
        raise UserError("the exported landmark model has no convolution to quantize")
    ignored = nncf.IgnoredScope(names=[convs[-1]], types=list(DECODER_OPS), validate=False)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        # NNCF compiles with OpenVINO, which swaps the thread's signal stack (realtime.core.altstack);
        # its progress bars write to stderr.
        with _quiet(), contextlib.redirect_stderr(io.StringIO()), altstack.kept():
            quantized = nncf.quantize(core_model, nncf.Dataset([b[None] for b in batches]),
                                      subset_size=len(batches), ignored_scope=ignored)
        ov.save_model(quantized, str(scratch / "model.xml"), compress_to_fp16=False)
        try:
            os.replace(scratch, folder)
        except OSError:  # another process put it in place first
            if not xml.is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("quantized the landmark model for OpenVINO with NNCF: %s", folder)
    return xml


def openvino_int8(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
    """OpenVINO on the CPU running NNCF's int8 model (float32 where it was kept float)."""
    return ov_backend("openvino_int8", ov_int8_file(model, decoder, beta), device, "f32",
                      "OpenVINO CPU, int8 convolutions by NNCF (calibrated on the bundled clip)")
