"""The 2016 paper's denoising keypoint model and joint RCN + denoiser inference.

The denoiser sees only keypoint positions, as K one-hot maps, and learns their joint
distribution with very large kernels (45x45 in the paper, 25.4M parameters for K = 68), so that
distant keypoints can correct each other. At test time its pre-softmax maps are added to RCN's
(equivalent to multiplying the two distributions).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import torch
from torch import nn

from realtime.models.decode import decode
from realtime.core.errors import UserError


@dataclass(frozen=True)
class DenoiserConfig:
    num_points: int = 68
    kernel: int = 45
    channels: int = 64
    layers: int = 3
    input_size: int = 80
    layout: str | None = "ibug68"
    arch: str = "denoiser"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "DenoiserConfig":
        raw = json.loads(text)
        try:
            config = DenoiserConfig(**raw)
        except TypeError as exc:
            raise UserError(f"bad denoiser config: {exc}") from None
        if config.kernel < 1 or config.kernel % 2 == 0 or config.layers < 1:
            raise UserError("denoiser kernel must be odd and >= 1, with >= 1 layer")
        return config


class Denoiser(nn.Module):
    """(B, K, S, S) keypoint one-hot maps -> (B, K, S, S) pre-softmax maps."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        cin = config.num_points
        for _ in range(config.layers):
            conv = nn.Conv2d(cin, config.channels, config.kernel, padding=config.kernel // 2)
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU(inplace=True)]
            cin = config.channels
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, config.num_points, 1)

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(onehot))


def one_hot_maps(points: torch.Tensor, size: int) -> torch.Tensor:
    """(B, K, 2) crop-pixel points -> (B, K, size, size) maps holding a 1 at each rounded point."""
    b, k, _ = points.shape
    idx = points.round().long().clamp(0, size - 1)
    flat = idx[..., 1] * size + idx[..., 0]
    maps = torch.zeros(b, k, size * size, device=points.device)
    maps.scatter_(2, flat[..., None], 1.0)
    return maps.reshape(b, k, size, size)


def jitter_points(points: torch.Tensor, num_moved: int, size: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The denoiser's training noise: move ``num_moved`` random keypoints of each sample to
    uniformly random pixels. Returns the noisy points and the (B, K) bool mask of moved ones."""
    b, k, _ = points.shape
    order = torch.rand(b, k, generator=generator).argsort(dim=1)
    moved = torch.zeros(b, k, dtype=torch.bool)
    moved.scatter_(1, order[:, :num_moved], True)
    random_points = torch.randint(0, size, (b, k, 2), generator=generator).float()
    moved = moved.to(points.device)
    return torch.where(moved[..., None], random_points.to(points.device), points), moved


def joint_decode(rcn_logits: torch.Tensor, denoiser: Denoiser, method: str = "argmax", beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint inference (the code's ``--mult_probs``): feed RCN's argmax as one-hot maps to the
    denoiser, add both models' pre-softmax maps, decode."""
    size = rcn_logits.shape[-1]
    rcn_points, _ = decode(rcn_logits, "argmax")
    prior = denoiser(one_hot_maps(rcn_points, size))
    return decode(rcn_logits + prior, method, beta)
