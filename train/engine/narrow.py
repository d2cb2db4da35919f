"""Start a narrower RCN from a trained one (``train fit --level-widths`` with an ``--init`` of full width).

Why: most of the bundled network's arithmetic sits at its finest level (80x80: the 1x1 convs and the
68 logit maps read from 32 channels), and its parameters at the coarse ones, so fewer channels at the
fine levels cut inference time by a third with 9% fewer parameters (docs/bench/speed.md). Starting
such a student from the trained network keeps what the coarse levels learned whole.

How: every conv of a narrowed level keeps the output channels whose filters have the largest L1
norms (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017), in their original order, and
every consumer of those channels keeps the matching input channels: the next trunk conv, the
branch's next conv, the finer level's branch (which reads this level's path after its own trunk
features) and the logits conv. Depthwise filters follow their input channels. Levels whose width is
unchanged are copied as they are. Training then recovers what the dropped channels carried.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from realtime.models.model import RCN, SeparableConv


def narrowable(source: nn.Module, model: nn.Module) -> bool:
    """True when both are RCNs and ``model`` is ``source``'s architecture with some levels' channel
    counts lowered and nothing else changed."""
    if not isinstance(source, RCN) or not isinstance(model, RCN):
        return False
    a, b = source.config, model.config
    if a == b or len(a.trunk) != len(b.trunk) or len(a.branch) != len(b.branch):
        return False
    same_shape = all(len(x) == len(y) and all(kx == ky for (_, kx), (_, ky) in zip(x, y))
                     for x, y in zip(a.branch, b.branch))
    narrower = all(cb <= ca for ca, cb in zip(a.trunk, b.trunk)) and all(
        cy <= cx for x, y in zip(a.branch, b.branch) for (cx, _), (cy, _) in zip(x, y))
    return same_shape and narrower and dataclasses.replace(a, trunk=b.trunk, branch=b.branch) == b


def _strongest(weight: torch.Tensor, n: int) -> torch.Tensor:
    """Indices, in order, of the ``n`` output filters of ``weight`` (cout, ...) with the largest L1 norms."""
    norms = weight.abs().flatten(1).sum(1)
    return torch.sort(torch.topk(norms, n).indices).values


def _copy_conv(src: nn.Conv2d, dst: nn.Conv2d, inputs: torch.Tensor) -> torch.Tensor:
    """``dst`` gets ``src``'s strongest output filters over the input channels ``inputs``; returns
    the output channels kept."""
    weight = src.weight[:, inputs]
    outputs = _strongest(weight, dst.out_channels)
    dst.weight.copy_(weight[outputs])
    if src.bias is not None:
        dst.bias.copy_(src.bias[outputs])
    return outputs


def _copy_layer(src: nn.Module, dst: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    if isinstance(src, SeparableConv):  # depthwise filters follow their input channels
        dst.depthwise.weight.copy_(src.depthwise.weight[inputs])
        return _copy_conv(src.pointwise, dst.pointwise, inputs)
    return _copy_conv(src, dst, inputs)


@torch.no_grad()
def narrow_into(source: RCN, model: RCN) -> int:
    """Load ``source``'s weights into the narrower ``model`` (module docstring); returns how many
    convs lost channels."""
    before = {name: p.shape for name, p in source.state_dict().items()}
    model.normalise.load_state_dict(source.normalise.state_dict())
    kept_trunk, inputs = [], torch.arange(source.config.in_channels)
    for src, dst in zip(source.trunk, model.trunk):
        inputs = _copy_conv(src[0], dst[0], inputs)
        kept_trunk.append(inputs)
    path = None  # the path channels kept at the level below (coarser)
    for level in range(len(source.branches) - 1, -1, -1):
        inputs = kept_trunk[level] if path is None else torch.cat([kept_trunk[level], path + source.config.trunk[level]])
        src_layers = [m for m in source.branches[level] if not isinstance(m, nn.ReLU)]
        dst_layers = [m for m in model.branches[level] if not isinstance(m, nn.ReLU)]
        for src, dst in zip(src_layers, dst_layers):
            inputs = _copy_layer(src, dst, inputs)
        path = inputs
    model.head.weight.copy_(source.head.weight[:, path])
    model.head.bias.copy_(source.head.bias)
    for src_up, dst_up in zip(source.ups, model.ups):  # learned upsampling: one kernel shared by all channels
        dst_up.load_state_dict(src_up.state_dict())
    after = model.state_dict()
    return sum(1 for name, shape in before.items() if name.endswith("weight") and after[name].shape != shape)
