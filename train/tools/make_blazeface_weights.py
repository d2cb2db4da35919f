"""Convert the shipped BlazeFace ``.tflite`` files into safetensors for ``realtime.detect.blazeface_torch``.

    python -m train.tools.make_blazeface_weights [--src assets/blazeface] [--out assets/blazeface] [--models short full]

Needs the ``tflite`` package (``pip install -e '.[convert]'``): the TensorFlow Lite flatbuffer
schema compiled to Python (over Google's ``flatbuffers`` runtime), a pure-Python reader with no
TensorFlow behind it; the runtime never needs it, which is why this lives under ``train/``.

How: the graph's ops are read in order. Every constant a convolution uses is traced back through
its DEQUANTIZE op to the stored tensor and dequantised (float16 here; int8/uint8 with per-tensor or
per-channel scales would work too). The graph's convolutions (regular and depthwise) are paired
in order with the torch network's ``nn.Conv2d`` modules (registration order = the graph's op
order), each pair checked for kind, kernel, stride, channels and padding; the ops between them
(ReLU, residual ADD, channel PAD, 2x2 MAX_POOL, half-pixel RESIZE_BILINEAR, RESHAPE,
CONCATENATION) are checked to be what the torch modules do, and any other op (PReLU included) or
a fused activation is refused. Layouts: TFLite's convolution kernels are (O, KH, KW, I) and
depthwise ones (1, KH, KW, C); torch wants (O, I, KH, KW) and (C, 1, KH, KW). Finally the
converted network runs on random inputs next to OpenCV's dnn on the ``.tflite`` and the
conversion fails unless the raw outputs agree. Tensors are written in the source's precision
(float16 stays float16, so the file holds the original numbers exactly), atomically.
"""
from __future__ import annotations

import json
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save

from realtime.core.assets import BLAZEFACE_DIR
from realtime.core.atomic import atomic_path, sha256
from realtime.core.cliargs import Parser
from realtime.core.errors import UserError, exit_status
from realtime.core.outpaths import Output, prepare_outputs
from realtime.detect.blazeface_torch import (
    NETWORKS,
    SameConv2d,
    weights_metadata,
    weights_path_for,
)
from realtime.detect.detector import MODELS, BlazeFaceDetector

ALLOWED_OPS = {"DEQUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "RELU", "ADD", "PAD", "MAX_POOL_2D",
               "RESIZE_BILINEAR", "RESHAPE", "CONCATENATION"}
# raw outputs (regressors in input pixels, logits) may differ by float32 summation order only
CHECK_ATOL = 2e-3


@dataclass
class ConvOp:
    """One convolution of the graph, weights already in torch layout."""

    name: str
    depthwise: bool
    weight: np.ndarray  # (O, I, KH, KW) float32; (C, 1, KH, KW) for depthwise
    bias: np.ndarray
    stride: int
    same: bool  # TensorFlow "SAME" padding (else "VALID")
    half: bool  # stored as float16 in the .tflite


def _import_tflite():
    try:
        import tflite
    except ImportError:
        raise UserError("the converter needs the 'tflite' package: pip install -e '.[convert]'") from None
    return tflite


def dequantize(raw: bytes, type_name: str, shape: tuple[int, ...], scale: np.ndarray | None = None,
               zero_point: np.ndarray | None = None, axis: int = 0) -> np.ndarray:
    """A stored constant -> float32 array of ``shape``. FLOAT32/FLOAT16 as stored; INT8/UINT8 as
    (q - zero_point) * scale, per tensor or per channel along ``axis``."""
    dtypes = {"FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8}
    if type_name not in dtypes:
        raise UserError(f"unsupported constant type {type_name}")
    values = np.frombuffer(raw, dtype=dtypes[type_name]).reshape(shape).astype(np.float32)
    if type_name in ("INT8", "UINT8"):
        if scale is None or len(scale) == 0:
            raise UserError("an integer constant without quantisation parameters")
        view = [1] * len(shape)
        if len(scale) > 1:
            view[axis] = len(scale)
        zero = np.zeros_like(scale) if zero_point is None or len(zero_point) == 0 else zero_point
        values = (values - zero.reshape(view).astype(np.float32)) * scale.reshape(view).astype(np.float32)
    return values


class Graph:
    """The first subgraph of a ``.tflite`` file: ops (name, inputs, outputs, options) in order."""

    def __init__(self, path: Path) -> None:
        tflite = _import_tflite()
        self.tflite = tflite
        self.model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
        self.graph = self.model.Subgraphs(0)
        op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
        self.type_names = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
        self.ops = []
        for i in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), str(code.BuiltinCode()))
            self.ops.append((name, list(op.InputsAsNumpy()), list(op.OutputsAsNumpy()), op))
        self.producer = {out: (name, ins) for name, ins, outs, _ in self.ops for out in outs}

    def tensor_name(self, index: int) -> str:
        return self.graph.Tensors(index).Name().decode()

    def constant(self, index: int) -> tuple[np.ndarray, str]:
        """The float32 value of a constant tensor (through a DEQUANTIZE op if there is one) and
        its stored type name."""
        name, ins = self.producer.get(index, (None, None))
        if name == "DEQUANTIZE":
            index = ins[0]
        elif name is not None:
            raise UserError(f"tensor {self.tensor_name(index)} is computed by {name}, not a constant")
        tensor = self.graph.Tensors(index)
        raw = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(raw, int):  # flatbuffers returns 0 for an empty vector
            raise UserError(f"tensor {self.tensor_name(index)} has no data in the file")
        quant = tensor.Quantization()
        scale = quant.ScaleAsNumpy() if quant is not None and quant.ScaleLength() else None
        zero = quant.ZeroPointAsNumpy() if quant is not None and quant.ZeroPointLength() else None
        axis = quant.QuantizedDimension() if quant is not None else 0
        type_name = self.type_names[tensor.Type()]
        shape = tuple(int(v) for v in tensor.ShapeAsNumpy())
        return dequantize(raw.tobytes(), type_name, shape, scale, zero, axis), type_name

    def options(self, op, kind):
        opts = kind()
        table = op.BuiltinOptions()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def convolutions(self) -> list[ConvOp]:
        """Every CONV_2D / DEPTHWISE_CONV_2D in graph order, after checking the other ops."""
        t, convs = self.tflite, []
        for name, ins, outs, op in self.ops:
            if name not in ALLOWED_OPS:
                raise UserError(f"op {name} ({self.tensor_name(outs[0])}) is not implemented by the torch port")
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                depthwise = name == "DEPTHWISE_CONV_2D"
                opts = self.options(op, t.DepthwiseConv2DOptions if depthwise else t.Conv2DOptions)
                self._expect(opts.FusedActivationFunction() == 0 and opts.StrideH() == opts.StrideW()
                             and opts.DilationHFactor() == opts.DilationWFactor() == 1, name, outs)
                if depthwise:
                    self._expect(opts.DepthMultiplier() == 1, name, outs)
                (weight, wtype), (bias, btype) = self.constant(ins[1]), self.constant(ins[2])
                weight = weight.transpose(3, 0, 1, 2) if depthwise else weight.transpose(0, 3, 1, 2)
                convs.append(ConvOp(self.tensor_name(outs[0]), depthwise, np.ascontiguousarray(weight), bias,
                                    opts.StrideH(), opts.Padding() == t.Padding.SAME,
                                    wtype == btype == "FLOAT16"))
            elif name == "ADD":
                self._expect(self.options(op, t.AddOptions).FusedActivationFunction() == 0, name, outs)
            elif name == "MAX_POOL_2D":
                opts = self.options(op, t.Pool2DOptions)
                self._expect((opts.FilterHeight(), opts.FilterWidth(), opts.StrideH(), opts.StrideW(),
                              opts.FusedActivationFunction()) == (2, 2, 2, 2, 0), name, outs)
            elif name == "RESIZE_BILINEAR":
                opts = self.options(op, t.ResizeBilinearOptions)
                self._expect(opts.HalfPixelCenters() and not opts.AlignCorners(), name, outs)
            elif name == "PAD":
                pads = self.constant(ins[1])[0] if ins[1] not in self.producer else None
                self._expect(pads is not None and pads.ndim == 2 and not pads[:3].any() and pads[3, 0] == 0,
                             name, outs)
        return convs

    def _expect(self, ok: bool, name: str, outs: list[int]) -> None:
        if not ok:
            raise UserError(f"{name} {self.tensor_name(outs[0])}: options the torch port does not reproduce")


def convert(tflite_path: Path, model: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The torch network of ``model`` with the file's weights, and its state dict in storage precision."""
    convs = Graph(tflite_path).convolutions()
    net = NETWORKS[model]()
    modules = [(n, m) for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)]
    if len(modules) != len(convs):
        raise UserError(f"{tflite_path.name} has {len(convs)} convolutions, the {model}-range port {len(modules)}")
    stored = {}
    for (name, module), conv in zip(modules, convs):
        same_kind = (module.groups > 1) == conv.depthwise and module.stride[0] == conv.stride
        padding_ok = conv.same == isinstance(module, SameConv2d) or module.kernel_size == (1, 1)
        if not (same_kind and padding_ok and tuple(module.weight.shape) == conv.weight.shape):
            raise UserError(f"{conv.name} {conv.weight.shape} stride {conv.stride} does not fit {name} "
                            f"{tuple(module.weight.shape)} stride {module.stride[0]}")
        dtype = torch.float16 if conv.half else torch.float32
        stored[f"{name}.weight"] = torch.from_numpy(conv.weight).to(dtype)
        stored[f"{name}.bias"] = torch.from_numpy(conv.bias).to(dtype)
    net.load_state_dict({k: v.float() for k, v in stored.items()}, strict=True)
    return net.eval(), stored


def max_output_difference(net: torch.nn.Module, tflite_path: Path, model: str, samples: int = 3) -> float:
    """Largest |torch - OpenCV| over both raw outputs on random canvases (seeded)."""
    reference = BlazeFaceDetector(model, model_path=tflite_path)
    size = MODELS[model].input_size
    canvases = np.random.default_rng(0).integers(0, 256, (samples, size, size, 3), dtype=np.uint8)
    want_reg, want_logits = reference._forward(canvases)
    with torch.inference_mode():
        x = torch.from_numpy(canvases).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        reg, logits = net(x)
    return float(max(np.abs(reg.double().numpy() - want_reg).max(),
                     np.abs(logits[..., 0].double().numpy() - want_logits).max()))


def canonical_safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """``safetensors.torch.save`` with its JSON header's keys sorted: the library writes the metadata
    in hash-map order, which changes from run to run, and the file's sha256 should reproduce."""
    data = save(tensors, metadata=metadata)
    (length,) = struct.unpack("<Q", data[:8])
    header = json.dumps(json.loads(data[8:8 + length]), sort_keys=True, separators=(",", ":")).encode()
    if len(header) > length:
        raise RuntimeError("re-serialised safetensors header grew")
    return data[:8] + header.ljust(length, b" ") + data[8 + length:]


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m train.tools.make_blazeface_weights", description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, default=BLAZEFACE_DIR, help="folder holding the .tflite files")
    p.add_argument("--out", type=Path, default=BLAZEFACE_DIR, help="folder for the .safetensors files")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["short", "full"], help="which models")

    def run() -> int:
        args = p.parse_args(argv)
        prepare_outputs([Output(args.out, "--out", folder=True)])
        for model in args.models:
            source = args.src / MODELS[model].file_name
            if not source.is_file():
                raise UserError(f"{source} not found")
            net, stored = convert(source, model)
            diff = max_output_difference(net, source, model)
            if diff > CHECK_ATOL:
                raise UserError(f"{model}: converted outputs differ from OpenCV's by {diff:.3g} (> {CHECK_ATOL})")
            out = args.out / weights_path_for(model).name
            with atomic_path(out) as tmp:
                tmp.write_bytes(canonical_safetensors(stored, weights_metadata(model, source.name, sha256(source))))
            print(f"{model}: {out} ({out.stat().st_size} bytes, sha256 {sha256(out)}); "
                  f"max |torch - OpenCV| on raw outputs {diff:.2g}")
        return 0

    return exit_status(run)


if __name__ == "__main__":
    sys.exit(main())
