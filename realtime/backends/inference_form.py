"""The network rewritten for the exported runtimes: the same function, cheaper graph.

An RCN level convolves the concatenation of a trunk feature map and the upsampled coarser path,
``conv(cat([a, b]))``. Exported as written, ONNX Runtime's CPU provider (NCHWc blocked layout)
converts both inputs out of its layout, concatenates in plain NCHW and converts back: on the
bundled 68-point model the Concat and the layout reorders around it took 9% of the network's
time (ONNX Runtime's profiler, one thread, batch 1). A convolution is linear in its input
channels, so the same conv is ``conv_a(a) + conv_b(b)`` with the weights split at the channel
boundary (the bias kept once); a depthwise-separable conv splits likewise, each part's depthwise
filters feeding its part of the pointwise weights. ONNX Runtime fuses the second conv's add
(and the ReLU after it) into the convolution, so the Concat and its reorders disappear. The 0/1
branch mask (``ModelConfig.branch_mask``) is folded into the trunk part's weights. Nearest
upsampling by exactly 2 is exported with a constant scale rather than a size computed from the
input's shape, which ONNX Runtime also runs in its blocked layout.

``inference_form(model)`` returns a module with the model's outputs (equal up to float
rounding: the parity tests hold the exported backends to 0.001 px of eager on the original) and
shares no state with it. Models other than RCN are returned as they are. ``FORM`` names the
rewrite in the exported file's name, so a changed rewrite exports again.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from realtime.models.model import RCN, SeparableConv

FORM = 2  # bump when the exported graph changes (the rewrite, the decoder): exported files are keyed by it


class _SplitFirst(nn.Module):
    """``layer(cat([a * mask, b]))`` for a Conv2d or SeparableConv ``layer``, as two convs summed."""

    def __init__(self, layer: nn.Module, channels_a: int, mask: float) -> None:
        super().__init__()
        conv = layer.pointwise if isinstance(layer, SeparableConv) else layer
        if isinstance(layer, SeparableConv):
            dw = layer.depthwise.weight.detach()
            self.depthwise_a = _conv_like(layer.depthwise, dw[:channels_a] * mask, None, groups=channels_a)
            self.depthwise_b = _conv_like(layer.depthwise, dw[channels_a:], None, groups=dw.shape[0] - channels_a)
        else:
            self.depthwise_a = self.depthwise_b = None
        weight = conv.weight.detach()
        scale_a = 1.0 if isinstance(layer, SeparableConv) else mask  # the mask sits in the depthwise part there
        bias = None if conv.bias is None else conv.bias.detach()
        self.conv_a = _conv_like(conv, weight[:, :channels_a] * scale_a, bias)
        self.conv_b = _conv_like(conv, weight[:, channels_a:], None)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.depthwise_a is not None:
            a, b = self.depthwise_a(a), self.depthwise_b(b)
        return self.conv_b(b) + self.conv_a(a)


def _conv_like(conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None, groups: int = 1) -> nn.Conv2d:
    """A Conv2d with ``conv``'s kernel, stride and padding and the given weights."""
    out = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=groups, bias=bias is not None)
    with torch.no_grad():
        out.weight.copy_(weight)
        if bias is not None:
            out.bias.copy_(bias)
    return out.to(weight.device, weight.dtype)


class SplitRCN(nn.Module):
    """An RCN's forward with each level's concatenation split into summed convs (module docstring)."""

    def __init__(self, model: RCN) -> None:
        super().__init__()
        model = copy.deepcopy(model).eval()
        self.config = model.config
        self.normalise, self.trunk, self.ups, self.head = model.normalise, model.trunk, model.ups, model.head
        mask = [float(m) for m in model.mask]
        self.coarse, self.coarse_mask = model.branches[-1], mask[-1]
        firsts, rests = [], []
        for level in range(len(model.branches) - 1):
            branch = model.branches[level]
            firsts.append(_SplitFirst(branch[0], int(model.config.trunk[level]), mask[level]))
            rests.append(nn.Sequential(*list(branch)[1:]))
        self.firsts, self.rests = nn.ModuleList(firsts), nn.ModuleList(rests)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return RCN.encode(self, x)  # the trunk is unchanged

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encode(x)
        path = self.coarse(feats[-1])
        if self.coarse_mask != 1.0:
            path = path * self.coarse_mask
        for level in range(len(feats) - 2, -1, -1):
            size = tuple(feats[level].shape[-2:])
            if self.ups[level].weight is None and size == (2 * path.shape[-2], 2 * path.shape[-1]):
                # a constant scale, not a size computed from shapes: ONNX Runtime then keeps the
                # upsampling in its blocked layout (a Resize by sizes cost a reorder out and back)
                up = F.interpolate(path, scale_factor=2.0, mode="nearest")
            else:
                up = self.ups[level](path, size)
            path = self.rests[level](self.firsts[level](feats[level], up))
        return self.head(path)


def inference_form(model: nn.Module) -> nn.Module:
    """``model`` rewritten for export (module docstring); a copy, the original is untouched."""
    if isinstance(model, RCN):
        return SplitRCN(model)
    return model
