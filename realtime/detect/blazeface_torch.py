"""BlazeFace (MediaPipe's short- and full-range face detectors) in PyTorch, and a detector on it.

The networks reproduce the shipped ``.tflite`` graphs layer for layer (``train/tools/make_blazeface_weights.py``
reads those graphs, checks them against these modules and writes the weights; see
``assets/README.md``). Outputs are the tflite graph's: ``regressors`` (B, A, 16) and
``classificators`` (B, A, 1) logits, anchors in MediaPipe's order, so ``realtime.detect.detector``'s
anchors, decoding and weighted NMS apply unchanged.

TensorFlow specifics reproduced here: "SAME" padding is asymmetric on stride-2 convolutions (the
extra row/column goes at the bottom/right), residual branches of blocks that widen are zero-padded
in channels, and the full-range model's 2x bilinear upsampling uses half-pixel centres (PyTorch's
``align_corners=False``).

- short range: a 5x5 stride-2 stem and 16 "BlazeBlocks" (depthwise 3x3 + pointwise 1x1, residual,
  max-pooled on stride 2); heads on the 16x16 (2 anchors per cell) and 8x8 (6 per cell) maps.
- full range: a 3x3 stride-2 stem, 15 bottleneck blocks (depthwise, 1x1 down, ReLU, depthwise,
  1x1 up) down to 6x6, a top-down path (1x1 laterals + upsampling, then 2, 2 and 1 bottlenecks)
  back to 48x48, one anchor per cell there.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from realtime.core.assets import BLAZEFACE_DIR
from realtime.detect.blazeface import BlazeFaceBase
from realtime.core.errors import UserError
from realtime.models.weights import torch_device

FORMAT = "blazeface-weights/1"


def weights_path_for(model: str) -> Path:
    """The shipped converted weights of ``model`` ("short" or "full")."""
    return BLAZEFACE_DIR / f"face_detection_{model}_range.safetensors"


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding: symmetric for odd kernels at stride 1;
    on stride 2 the total padding max((ceil(n / 2) - 1) * 2 + k - n, 0) is split with the
    larger half at the bottom/right."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, padding=kernel // 2 if stride == 1 else 0, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        k, s = self.kernel_size[0], self.stride[0]
        pads = []
        for n in (x.shape[-1], x.shape[-2]):  # F.pad order: last dim first
            total = max((-(-n // s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def depthwise(channels: int, stride: int = 1) -> SameConv2d:
    return SameConv2d(channels, channels, 3, stride, groups=channels)


def pointwise(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


def _skip(x: torch.Tensor, stride: int, cout: int) -> torch.Tensor:
    """The residual branch: 2x2 max-pooled on stride 2, zero-padded to ``cout`` channels."""
    if stride == 2:
        x = F.max_pool2d(x, 2)
    return F.pad(x, (0, 0, 0, 0, 0, cout - x.shape[1])) if cout > x.shape[1] else x


class BlazeBlock(nn.Module):
    """Short range: relu(pointwise(depthwise(x)) + skip(x))."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.stride, self.cout = stride, cout
        self.dw, self.pw = depthwise(cin, stride), pointwise(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pw(self.dw(x)) + _skip(x, self.stride, self.cout))


class Bottleneck(nn.Module):
    """Full range: relu(up(dw2(relu(down(dw1(x))))) + skip(x))."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.stride, self.cout = stride, cout
        self.dw1, self.down = depthwise(cin, stride), pointwise(cin, mid)
        self.dw2, self.up = depthwise(mid), pointwise(mid, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.dw2(F.relu(self.down(self.dw1(x)))))
        return F.relu(y + _skip(x, self.stride, self.cout))


def _flatten(x: torch.Tensor, per_anchor: int) -> torch.Tensor:
    """(B, C, H, W) head output -> (B, H * W * C / per_anchor, per_anchor), NHWC order as in tflite."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, per_anchor)


class BlazeFaceShort(nn.Module):
    """128x128 input -> regressors (B, 896, 16), logits (B, 896, 1)."""

    input_size = 128

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, 24, 5, 2)
        widths = [(24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2), (48, 56, 1),
                  (56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1)]
        self.to16 = nn.Sequential(*(BlazeBlock(*w) for w in widths))
        self.to8 = nn.Sequential(BlazeBlock(88, 96, 2), *(BlazeBlock(96, 96) for _ in range(4)))
        self.cls16, self.cls8 = pointwise(88, 2), pointwise(96, 6)  # named by grid size
        self.reg16, self.reg8 = pointwise(88, 32), pointwise(96, 96)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 128, 128) RGB in [-1, 1] -> (regressors, logits)."""
        f16 = self.to16(F.relu(self.stem(x)))
        f8 = self.to8(f16)
        logits = torch.cat([_flatten(self.cls16(f16), 1), _flatten(self.cls8(f8), 1)], dim=1)
        regressors = torch.cat([_flatten(self.reg16(f16), 16), _flatten(self.reg8(f8), 16)], dim=1)
        return regressors, logits


class TopDown(nn.Module):
    """One step of the full-range model's top-down path: relu(1x1(coarse)) upsampled 2x plus
    relu(1x1(lateral)), then ``blocks`` bottlenecks."""

    def __init__(self, coarse: int, lateral: int, width: int, blocks: int) -> None:
        super().__init__()
        self.reduce, self.lateral = pointwise(coarse, width), pointwise(lateral, width)
        self.blocks = nn.Sequential(*(Bottleneck(width, width // 2, width) for _ in range(blocks)))

    def forward(self, coarse: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(F.relu(self.reduce(coarse)), scale_factor=2, mode="bilinear", align_corners=False)
        return self.blocks(F.relu(self.lateral(lateral)) + up)


class BlazeFaceFull(nn.Module):
    """192x192 input -> regressors (B, 2304, 16), logits (B, 2304, 1)."""

    input_size = 192

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, 32, 3, 2)
        self.to48 = nn.Sequential(Bottleneck(32, 8, 32), Bottleneck(32, 8, 32), Bottleneck(32, 12, 48, 2),
                                  Bottleneck(48, 12, 48), Bottleneck(48, 16, 64))
        self.to24 = nn.Sequential(Bottleneck(64, 24, 96, 2), Bottleneck(96, 32, 128), Bottleneck(128, 32, 128))
        self.to12 = nn.Sequential(Bottleneck(128, 36, 144, 2), Bottleneck(144, 48, 192), Bottleneck(192, 64, 256))
        self.to6 = nn.Sequential(Bottleneck(256, 96, 384, 2), *(Bottleneck(384, 96, 384) for _ in range(3)))
        self.up12, self.up24, self.up48 = TopDown(384, 256, 96, 2), TopDown(96, 128, 64, 2), TopDown(64, 64, 48, 1)
        self.cls, self.reg = pointwise(48, 1), pointwise(48, 16)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, 192, 192) RGB in [-1, 1] -> (regressors, logits)."""
        c48 = self.to48(F.relu(self.stem(x)))
        c24 = self.to24(c48)
        c12 = self.to12(c24)
        p = self.up48(self.up24(self.up12(self.to6(c12), c12), c24), c48)
        return _flatten(self.reg(p), 16), _flatten(self.cls(p), 1)


NETWORKS: dict[str, type[nn.Module]] = {"short": BlazeFaceShort, "full": BlazeFaceFull}


def load_blazeface(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, str]:
    """Rebuild the network a converted ``.safetensors`` file describes, load it strictly (the file's
    float16 tensors become float32) -> (network in eval mode on ``device``, model name)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"BlazeFace weights not found: {path} (made by python -m train.tools.make_blazeface_weights; "
                        "see assets/README.md)")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"cannot read BlazeFace weights {path} ({exc})") from None
    model = metadata.get("model")
    if metadata.get("format") != FORMAT or model not in NETWORKS:
        raise UserError(f"{path} is not a converted BlazeFace file (no '{FORMAT}' metadata naming short or full)")
    net = NETWORKS[model]()
    try:
        net.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path}: tensors do not match the {model}-range network: {str(exc)[:300]}") from None
    return net.to(device).eval(), model


def weights_metadata(model: str, source_name: str, source_sha256: str) -> dict[str, str]:
    """The safetensors metadata of a converted file (what ``load_blazeface`` needs, and where it came from)."""
    return {"format": FORMAT, "model": model, "input_size": str(NETWORKS[model].input_size),
            "normalisation": "RGB letterboxed to a square, (v / 127.5) - 1, NCHW",
            "outputs": "regressors (B, A, 16), classificators (B, A, 1) logits; MediaPipe anchor order",
            "source": json.dumps({"file": source_name, "sha256": source_sha256,
                                  "licence": "Apache-2.0, Copyright The MediaPipe Authors"})}


class TorchBlazeFaceDetector(BlazeFaceBase):
    """``detector(image) -> Detections`` like ``realtime.detect.detector.BlazeFaceDetector``, on a torch
    device; ``detect_batch(images)`` runs several frames in one forward pass.

    Letterboxing stays on the host (cv2, as the OpenCV backend does, so both see the same input);
    the small uint8 canvases go to the device, the raw outputs (B, A, 17 floats) come back and are
    decoded by the shared numpy code. ``weights_path`` None takes the shipped converted file.
    """

    def __init__(self, model: str = "short", weights_path: str | Path | None = None, device: str = "cpu",
                 score_threshold: float | None = None, nms_iou: float = 0.3, max_faces: int = 16) -> None:
        super().__init__(model, score_threshold, nms_iou, max_faces)
        self.device = torch_device(device)
        path = Path(weights_path) if weights_path is not None else weights_path_for(model)
        self.net, file_model = load_blazeface(path, self.device)
        if file_model != model:
            raise UserError(f"{path} holds the {file_model}-range network, not {model}")
        if self.device.type == "cpu":  # measured here: 1.5x faster than NCHW on CPU (GPU left as is)
            self.net = self.net.to(memory_format=torch.channels_last)

    def _forward(self, canvases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, S, S, 3) uint8 RGB -> regressors (B, A, 16), logits (B, A), float64 on the host."""
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(canvases)).to(self.device, non_blocking=True)
            x = x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)  # NCHW view of NHWC memory: channels_last
            regressors, logits = self.net(x)
            out = torch.cat([regressors, logits], dim=2).cpu().double().numpy()
        return out[:, :, :16], out[:, :, 16]

    def warmup(self, batch_size: int = 1) -> None:
        """One throw-away forward pass (CUDA context, cuDNN algorithm choice)."""
        size = self.spec.input_size
        self._forward(np.zeros((batch_size, size, size, 3), np.uint8))

