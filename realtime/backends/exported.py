"""Backends outside torch: ONNX -> onnxruntime, ONNX -> OpenVINO, and torch-tensorrt.

The network and its decoder are exported together (``base.Decoded``), so the runtimes return
(B, K, 2) points and (B, K) scores, never heat maps. The ONNX file is written once per model
content (``base.model_digest``) and torch version into ``cache_dir()/onnx``, atomically, and
shared by onnxruntime and OpenVINO. Export uses torch's ``torch.export``-based exporter when
onnxscript is installed, and the TorchScript exporter otherwise or when that one fails (logged).

torch-tensorrt cannot be installed on this project's machines (docs/backends.md): that builder
follows its documented ``torch_tensorrt.compile(..., ir="dynamo", inputs=[Input(min/opt/max)])``
API, is imported only when asked for, and has never run here.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from torch import nn

from realtime.core import altstack
from realtime.core.atomic import atomic_path
from realtime.backends.base import MAX_BUCKET, Backend, Decoded, bucket, cache_dir, chunked, model_digest
from realtime.core.errors import UserError
from realtime.backends.inference_form import FORM, inference_form

log = logging.getLogger(__name__)
OPSET = 18
TRT_MISSING = ("torch-tensorrt is not installed: it needs NVIDIA's TensorRT libraries and a CUDA build of torch of "
               "its own version (pip install torch-tensorrt on a CUDA machine; it cannot be installed on this "
               "project's CPU machines)")


def onnx_file(model: nn.Module, decoder: str, beta: float) -> Path:
    """The exported network + decoder for ``model``, from the cache or exported now. What is
    exported is ``inference_form(model)``: the same function with each RCN level's concatenation
    split into summed convs, which ONNX Runtime runs without layout reorders
    (``realtime.backends.inference_form``)."""
    name = (f"{model_digest(model, decoder, beta)}-form{FORM}-torch{torch.__version__.replace('+', '_')}"
            f"-opset{OPSET}.onnx")
    path = cache_dir() / "onnx" / name
    if path.is_file():
        return path
    net = Decoded(inference_form(copy.deepcopy(model).to("cpu", torch.float32).eval()), decoder, beta)
    example = torch.rand(2, int(model.config.in_channels), int(model.config.input_size), int(model.config.input_size))
    with atomic_path(path) as tmp:
        export_onnx(net, example, tmp)
    log.info("exported the landmark model to %s", path)
    return path


def export_onnx(net: nn.Module, example: torch.Tensor, path: Path, exporter: str | None = None) -> str:
    """Write ``net`` (crops -> points, scores; batch dynamic) as ONNX; returns the exporter used
    ("dynamo" or "torchscript"). ``exporter`` None tries dynamo first when onnxscript exists."""
    names = dict(input_names=["crops"], output_names=["points", "scores"])
    if exporter is None:
        exporter = "dynamo" if find_spec("onnxscript") else "torchscript"
    with _quiet():
        if exporter == "dynamo":
            try:
                batch = torch.export.Dim("batch", min=1, max=4096)
                program = torch.onnx.export(net, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                            dynamic_shapes={"x": {0: batch}}, **names)
                program.save(str(path))
                return "dynamo"
            except Exception as exc:  # noqa: BLE001 - any exporter failure: the older exporter may still work
                log.info("torch.export-based ONNX export failed (%s: %s); using the TorchScript exporter",
                         type(exc).__name__, str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "")
        batch_axis = {"crops": {0: "batch"}, "points": {0: "batch"}, "scores": {0: "batch"}}
        torch.onnx.export(net, (example,), str(path), dynamo=False, opset_version=OPSET,
                          dynamic_axes=batch_axis, **names)
    return "torchscript"


@contextlib.contextmanager
def _quiet():
    """The exporters' and quantizers' progress prints, deprecation warnings and log lines, silenced."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript", "onnx_ir", "nncf")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _host(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


def onnxruntime(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
    """ONNX Runtime with the CPU provider, or the CUDA provider on a CUDA device (inputs and
    outputs still pass through the host). Threads: torch's intra-op thread count."""
    return ort_backend("onnxruntime", onnx_file(model, decoder, beta), device)


def ort_backend(name: str, path: Path, device: torch.device) -> Backend:
    """A ``Backend`` running the ONNX file ``path`` (crops -> points, scores) in ONNX Runtime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    cuda = device.type == "cuda"
    providers: list = ["CPUExecutionProvider"]
    if cuda:
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    session = ort.InferenceSession(str(path), options, providers=providers)
    if cuda and session.get_providers()[0] != "CUDAExecutionProvider":
        raise RuntimeError("onnxruntime could not start its CUDA provider")
    input_name = session.get_inputs()[0].name

    def run_numpy(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points, scores = session.run(None, {input_name: x})
        return points, scores

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        points, scores = run_numpy(_host(x))
        return torch.from_numpy(points), torch.from_numpy(scores)

    return Backend(name, device, run, note=session.get_providers()[0], run_numpy=None if cuda else run_numpy)


def ov_backend(name: str, path: Path, device: torch.device, precision: str, note: str) -> Backend:
    """A ``Backend`` running ``path`` (ONNX or OpenVINO IR) on OpenVINO's CPU plugin with the
    inference precision hint ``precision`` ("f32", "bf16"; int8 models keep their int8 parts)."""
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": torch.get_num_threads(),
              "PERFORMANCE_HINT": "LATENCY"}
    with altstack.kept():  # OpenVINO's CPU plugin swaps the thread's signal stack (realtime.core.altstack)
        compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()  # one request: a backend serves one thread

    def run_numpy(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        request.infer({0: x})
        return request.get_output_tensor(0).data.copy(), request.get_output_tensor(1).data.copy()

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        points, scores = run_numpy(_host(x))
        return torch.from_numpy(points), torch.from_numpy(scores)

    return Backend(name, device, run, note=note, run_numpy=run_numpy)


def _openvino(name: str, precision: str):
    def build(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
        return ov_backend(name, onnx_file(model, decoder, beta), device, precision,
                          f"OpenVINO CPU, {precision} inference precision")
    build.__doc__ = f"The ONNX file compiled by OpenVINO for the CPU with a {precision} precision hint."
    return build


openvino = _openvino("openvino", "f32")
openvino_bf16 = _openvino("openvino_bf16", "bf16")


def tensorrt(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
    """torch-tensorrt's dynamo path, fp32 (TF32 off, for parity), batch 1..MAX_BUCKET optimised
    for the caller's bucket; larger batches run in chunks. Written against the documented API,
    never run on this project's machines (it cannot be installed there)."""
    try:
        import torch_tensorrt
    except ImportError:
        raise UserError(TRT_MISSING) from None
    net = Decoded(copy.deepcopy(model).eval(), decoder, beta)
    c, s = int(model.config.in_channels), int(model.config.input_size)
    spec = torch_tensorrt.Input(min_shape=(1, c, s, s), opt_shape=(bucket(batch_size), c, s, s),
                                max_shape=(MAX_BUCKET, c, s, s), dtype=torch.float32)
    engine = torch_tensorrt.compile(net, ir="dynamo", inputs=[spec], disable_tf32=True)

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        points, scores = engine(x.contiguous())
        return points, scores

    return Backend("tensorrt", device, lambda x: chunked(run, x), note=f"torch-tensorrt {torch_tensorrt.__version__}")
