"""Inference backends behind one interface.

    backend = make_backend("openvino", model, "cpu", decoder="softargmax", beta=1.0, batch_size=8)
    points, scores = backend(x)      # x (B, C, S, S) float32 in [0, 1] -> (B, K, 2) crop px, (B, K)

``available_backends(device)`` maps every name to None (runs here) or the reason it cannot;
``make_backend("auto", ...)`` times the available ones and keeps the fastest whose landmarks
stay within 0.1 crop pixel of fp32 eager's (``auto.py``). Names:

- ``eager``: fp32 torch, the reference. ``channels_last``: fp32, NHWC memory format.
- ``bf16``: bfloat16 autocast (CPUs with AMX or AVX512-BF16; CUDA). ``fp16``: float16 autocast, CUDA.
- ``compile``: torch.compile per batch bucket, eager again (with a warning) if it fails.
- ``cudagraphs``: fp32 CUDA graphs captured per batch bucket (1, 2, 4, ... 64).
- ``onnxruntime``: the model + decoder exported to ONNX once (cached by content), CPU or CUDA provider.
- ``openvino`` / ``openvino_bf16``: the same ONNX file on OpenVINO's CPU plugin, f32 / bf16 precision hint.
- ``tensorrt``: torch-tensorrt on CUDA (written against its documented API; not installable here).
- ``onnxruntime_int8`` / ``openvino_int8``: int8 convolutions, calibrated on the bundled clip's
  crops, by ONNX Runtime's quantizer / NNCF (``quantized.py``).

The reduced-precision ones (bf16, fp16, openvino_bf16; int8 more so) move landmarks by more
than 0.1 px on the trained models here (bf16 0.17-0.36 px, int8 up to 4.6 px), so ``auto``
does not pick them; name them to trade that for speed.
"""
from realtime.backends.base import PARITY_TOLERANCE_PX, Backend, bucket, cache_dir, example_batch, model_digest
from realtime.backends.build import make_backend
from realtime.backends.registry import BACKENDS, REDUCED_PRECISION, available_backends

__all__ = [
    "BACKENDS", "PARITY_TOLERANCE_PX", "REDUCED_PRECISION", "Backend", "available_backends", "bucket", "cache_dir",
    "example_batch", "make_backend", "model_digest",
]
