"""Start a depthwise-separable model from a trained one with full convs (``train fit --separable``,
``--trunk-separable``).

A k x k conv W (cout, cin, k, k) becomes a depthwise filter D (cin, k, k) and a 1x1 conv P (cout, cin)
with W[o, c] ~= P[o, c] * D[c]: for each input channel c that is the best rank-1 approximation of the
(cout, k*k) matrix W[:, c] (its leading singular pair; Eckart-Young), the low-rank conv factorisation
of Jaderberg et al. (BMVC 2014) restricted to MobileNet's form. The conv's bias moves to P; every
other weight is copied unchanged. Training then recovers what rank 1 loses.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from realtime.models.model import LandmarkNet, SeparableConv


def factorisable(source: nn.Module, model: nn.Module) -> bool:
    """True when ``model`` is ``source``'s architecture with more separable levels (branch or trunk,
    ``ModelConfig.separable`` and ``trunk_separable``) and nothing else changed."""
    a, b = getattr(source, "config", None), getattr(model, "config", None)
    if a is None or b is None or not hasattr(a, "separable") or not hasattr(b, "separable"):
        return False
    more = (a.separable, a.trunk_separable) != (b.separable, b.trunk_separable)
    return (more and a.separable <= b.separable and a.trunk_separable <= b.trunk_separable
            and dataclasses.replace(a, separable=b.separable, trunk_separable=b.trunk_separable) == b)


@torch.no_grad()
def rank1(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full conv weight (cout, cin, k, k) -> (depthwise (cin, 1, k, k), pointwise (cout, cin, 1, 1))."""
    cout, cin, kh, kw = weight.shape
    per_channel = weight.permute(1, 0, 2, 3).reshape(cin, cout, kh * kw).double()
    u, s, vh = torch.linalg.svd(per_channel, full_matrices=False)
    pointwise = (u[:, :, 0] * s[:, :1]).T  # (cout, cin)
    depthwise = vh[:, 0, :]  # (cin, k*k)
    return (depthwise.reshape(cin, 1, kh, kw).to(weight.dtype),
            pointwise.reshape(cout, cin, 1, 1).contiguous().to(weight.dtype))


@torch.no_grad()
def factorise_into(source: LandmarkNet, model: LandmarkNet) -> int:
    """Load ``source``'s weights into ``model``, factorising each full conv that ``model`` holds as a
    ``SeparableConv`` (those separable in both are copied); returns how many were factorised."""
    modules = dict(source.named_modules())
    state = source.state_dict()
    count = 0
    for name, module in model.named_modules():
        if isinstance(module, SeparableConv) and not isinstance(modules[name], SeparableConv):
            conv = modules[name]
            depthwise, pointwise = rank1(conv.weight)
            del state[f"{name}.weight"], state[f"{name}.bias"]
            state[f"{name}.depthwise.weight"] = depthwise
            state[f"{name}.pointwise.weight"] = pointwise
            state[f"{name}.pointwise.bias"] = conv.bias.detach().clone()
            count += 1
    model.load_state_dict(state, strict=True)
    return count
