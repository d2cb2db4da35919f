"""The backends by name, and which exist on this machine (and why not); ``realtime.backends.build``
builds one (``auto`` included)."""
from __future__ import annotations

import shutil
from importlib.util import find_spec
from typing import Callable

import torch
from torch import nn

import realtime.backends.exported as exported
import realtime.backends.quantized as quantized
import realtime.backends.torch_backends as torch_backends
from realtime.backends.base import Backend, native_bf16
from realtime.models.weights import torch_device

Builder = Callable[[nn.Module, torch.device, str, float, int], Backend]
BUILDERS: dict[str, Builder] = {
    "eager": torch_backends.eager,
    "channels_last": torch_backends.channels_last,
    "bf16": torch_backends.bf16,
    "fp16": torch_backends.fp16,
    "compile": torch_backends.compiled,
    "cudagraphs": torch_backends.cudagraphs,
    "onnxruntime": exported.onnxruntime,
    "openvino": exported.openvino,
    "openvino_bf16": exported.openvino_bf16,
    "tensorrt": exported.tensorrt,
    "onnxruntime_int8": quantized.onnxruntime_int8,
    "openvino_int8": quantized.openvino_int8,
}
BACKENDS = tuple(BUILDERS)
# may move landmarks more than the fp32 ones
REDUCED_PRECISION = ("bf16", "fp16", "openvino_bf16", "onnxruntime_int8", "openvino_int8")
FAST_EXTRA = "pip install -e '.[fast]'"
INT8_EXTRA = "pip install -e '.[int8]'"


def available_backends(device: str | torch.device = "cpu") -> dict[str, str | None]:
    """Every backend name -> None when it can run on ``device`` here, else the reason it cannot
    (no CUDA, no bf16 hardware, a package missing). Cheap: imports none of the runtimes."""
    device = torch_device(device, need_available=False)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        return dict.fromkeys(BACKENDS, "this torch has no CUDA device")
    if device.type not in ("cpu", "cuda"):
        return {name: None if name == "eager" else f"only eager runs on {device.type} devices" for name in BACKENDS}
    cuda_only = None if cuda else "needs CUDA (the device is cpu)"
    if cuda:
        bf16 = None if torch.cuda.is_bf16_supported() else "this GPU has no bf16"
    else:
        bf16 = None if native_bf16() else "this CPU has no bf16 instructions (neither AMX nor AVX512-BF16)"
    has_compiler = cuda or shutil.which("g++") or shutil.which("c++")
    compiler = None if has_compiler else "no C++ compiler for torch.compile's CPU code"
    ort = None if find_spec("onnxruntime") else f"onnxruntime is not installed ({FAST_EXTRA})"
    if ort is None and cuda:
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            ort = "this onnxruntime has no CUDA provider (pip install onnxruntime-gpu)"
    openvino = "OpenVINO runs on the CPU here" if cuda else (
        None if find_spec("openvino") else f"openvino is not installed ({FAST_EXTRA})")
    return {
        "eager": None,
        "channels_last": None,
        "bf16": bf16,
        "fp16": cuda_only,
        "compile": compiler,
        "cudagraphs": cuda_only,
        "onnxruntime": ort,
        "openvino": openvino,
        "openvino_bf16": openvino or (bf16 if not cuda else None),
        "tensorrt": (exported.TRT_MISSING if not find_spec("torch_tensorrt") else None) or cuda_only,
        "onnxruntime_int8": "int8 runs on the CPU here" if cuda else (
            ort or (None if find_spec("onnx") else f"onnx is not installed ({FAST_EXTRA})")),
        "openvino_int8": openvino or (None if find_spec("nncf") else f"nncf is not installed ({INT8_EXTRA})"),
    }
