"""The backends that stay in torch: eager, channels_last, bf16, fp16, compile, cudagraphs.

Each builder takes the fp32 model (already on ``device``), the decoder and beta, and the batch
size the caller expects (compile and cudagraphs build for its bucket at once, so a failure
shows at start-up, not on the first face). Builders that change the model (memory format)
work on a copy; eager runs the caller's own module.
"""
from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from realtime.backends.base import Backend, Decoded, bucket, bucketed, chunked, example_batch, native_bf16

log = logging.getLogger(__name__)
CL = torch.channels_last


def eager(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
    """The fp32 reference: the module as it is."""
    return Backend("eager", device, Decoded(model, decoder, beta))


def channels_last(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
    """fp32 with NHWC activations and weights (oneDNN's and cuDNN's preferred layout)."""
    net = Decoded(copy.deepcopy(model).to(memory_format=CL), decoder, beta)
    return Backend("channels_last", device, lambda x: net(x.contiguous(memory_format=CL)))


def _autocast(name: str, dtype: torch.dtype):
    def build(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
        net = Decoded(copy.deepcopy(model).to(memory_format=CL), decoder, beta, autocast=dtype)
        hardware = f", {native_bf16()}" if device.type == "cpu" else ""
        return Backend(name, device, lambda x: net(x.contiguous(memory_format=CL)),
                       note=f"{str(dtype).removeprefix('torch.')} autocast, channels_last{hardware}")
    build.__doc__ = f"The network under {dtype} autocast (decoder in fp32), channels_last."
    return build


bf16 = _autocast("bf16", torch.bfloat16)
fp16 = _autocast("fp16", torch.float16)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def compiled(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
    """``torch.compile`` (inductor, static shapes per batch bucket); compiled here for the
    caller's bucket. Any failure, now or on a later bucket, logs a warning and the backend goes
    on in eager mode for good (its ``note`` says why)."""
    net = Decoded(model, decoder, beta)
    backend = Backend("compile", device, net)

    def fall_back(exc: BaseException) -> None:
        reason = _first_line(exc)
        log.warning("torch.compile failed (%s); falling back to eager", reason)
        backend._run, backend.note = net, f"fell back to eager: {reason}"

    try:
        fast = torch.compile(net, dynamic=False)
    except Exception as exc:  # torch.compile itself refuses (an unsupported Python, say)
        fall_back(exc)
        return backend

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return bucketed(fast, x)
        except Exception as exc:  # inductor errors come in many types
            fall_back(exc)
            return net(x)

    backend._run = run
    backend(example_batch(model, bucket(batch_size), device))  # compile now
    return backend


def cudagraphs(model: nn.Module, device: torch.device, decoder: str, beta: float, batch_size: int) -> Backend:
    """fp32 replayed from CUDA graphs, one per batch bucket (1, 2, 4, ... 64), each captured on
    first use; a batch is copied into its bucket's static input, the padding rows repeat the
    last crop, and the outputs are copied out of the static buffers."""
    net = Decoded(model, decoder, beta)
    graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]] = {}

    def capture(size: int):
        static_in = example_batch(model, size, device)
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):  # warm-up off the capture, as the CUDA graphs docs ask
            for _ in range(3):
                net(static_in)
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = net(static_in)
        return graph, static_in, static_out

    def one(chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, size = chunk.shape[0], bucket(chunk.shape[0])
        if size not in graphs:
            graphs[size] = capture(size)
        graph, static_in, (points, scores) = graphs[size]
        static_in[:n].copy_(chunk)
        static_in[n:].copy_(chunk[-1:].expand(size - n, *chunk.shape[1:]))
        graph.replay()
        return points[:n].clone(), scores[:n].clone()

    backend = Backend("cudagraphs", device, lambda x: chunked(one, x))
    backend(example_batch(model, bucket(batch_size), device))  # capture the expected bucket now
    return backend
