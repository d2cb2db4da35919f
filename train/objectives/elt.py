"""ELT, the 2018 paper's equivariant landmark transformation loss.

For each crop I a random similarity transform T (rotation, zoom and translation about the crop
centre; optionally a mirror, with the layout's keypoint permutation) is drawn; the model's
landmarks on T(I) are compared with T applied to its landmarks on I:

    ELT = mean over (image, keypoint) of |L_k(T(I)) - T(L(I))_k|^2 / S^2

in the units of the soft-argmax landmark loss (coordinates divided by the crop side S). Points that
T carries out of the crop are masked (their position in T(I) is not defined by the image).
T(I) is sampled bilinearly with zero fill.

Which side carries the gradient (``target``). The default, ``"detached"``, treats T(L(I)) as a
fixed target (stop-gradient) and trains only the prediction on T(I). The reasons: L(I) is the view
the model is tested on (an ordinary crop, no zero-filled corners, no extra rotation), so it is the
better of the two estimates and should teach the warped view rather than be pulled towards it;
with gradient on both sides the loss can also be lowered by moving the untransformed prediction
towards transform-invariant points (e.g. the crop centre, which rotation and zoom leave fixed), a
drift that the stop-gradient removes; and the forward pass on I then runs without a graph, which
is cheaper. ``"both"`` (the paper's symmetric equation, as written) is kept for comparison.

Ranges default to NVIDIA's TAO proxy of the paper (rotation +-20 degrees, translation +-10 px on
80 px, zoom 0.8-1.2, no mirror); the paper's own are not known.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from realtime.core.errors import UserError

TARGETS = ("detached", "both")


@dataclass(frozen=True)
class EltConfig:
    """Transform ranges, drawn uniformly per image. ``translate`` is a fraction of the crop side
    (0.125 = 10 px on 80), x and y independently; zoom is in [1 - zoom, 1 + zoom]."""

    rotation_deg: float = 20.0
    translate: float = 0.125
    zoom: float = 0.2
    mirror_prob: float = 0.0
    target: str = "detached"

    def __post_init__(self) -> None:
        if not (0 <= self.rotation_deg <= 180 and 0 <= self.translate <= 1 and 0 <= self.zoom < 1
                and 0 <= self.mirror_prob <= 1):
            raise UserError("ELT ranges: rotation 0-180 degrees, translate 0-1 of the crop, zoom in [0, 1), mirror in [0, 1]")
        if self.target not in TARGETS:
            raise UserError(f"ELT target must be one of {TARGETS}, got {self.target!r}")


def draw_transforms(batch: int, size: int, config: EltConfig,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random transforms: ``matrices`` (B, 2, 3) mapping crop pixels (x, y) of I to those of T(I)
    (pixel centres at integers), and ``mirrored`` (B,) bool. Draws from ``generator`` (default:
    torch's global generator, which training checkpoints save and restore)."""
    u = torch.rand(batch, 5, generator=generator, dtype=torch.float64)
    angle = (2 * u[:, 0] - 1) * math.radians(config.rotation_deg)
    zoom = 1 + (2 * u[:, 1] - 1) * config.zoom
    shift = (2 * u[:, 2:4] - 1) * config.translate * size
    mirrored = u[:, 4] < config.mirror_prob
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    flip = torch.where(mirrored, -1.0, 1.0).to(torch.float64)
    linear = torch.stack([torch.stack([cos * flip, -sin], -1), torch.stack([sin * flip, cos], -1)], -2)
    centre = torch.full((batch, 2), (size - 1) / 2, dtype=torch.float64)
    offset = centre + shift - (linear @ centre[..., None])[..., 0]
    return torch.cat([linear, offset[..., None]], dim=-1).float(), mirrored


def transform_points(points: torch.Tensor, matrices: torch.Tensor, mirrored: torch.Tensor,
                     perm: tuple[int, ...] | None) -> torch.Tensor:
    """(B, K, 2) crop pixels -> (B, K, 2) under ``matrices`` (B, 2, 3); where ``mirrored``, the
    points are relabelled with ``perm`` (point k of T(I) is point perm[k] of I)."""
    moved = points @ matrices[:, :, :2].transpose(1, 2) + matrices[:, None, :, 2]
    if perm is None or not bool(mirrored.any()):
        return moved
    return torch.where(mirrored[:, None, None], moved[:, list(perm)], moved)


def warp_images(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) -> T(images), (B, C, S, S): bilinear, zero outside the source crop."""
    b, _, h, w = images.shape
    linear, offset = matrices[:, :, :2], matrices[:, :, 2]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    target = torch.stack([xs, ys], dim=-1).reshape(1, h * w, 2).to(images.device)
    source = (target - offset[:, None, :]) @ torch.linalg.inv(linear).transpose(1, 2)
    scale = torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)], device=images.device)
    grid = (source * scale - 1.0).reshape(b, h, w, 2)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


def elt_residuals(predict: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, config: EltConfig,
                  perm: tuple[int, ...] | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """L(T(I)) - T(L(I)) in crop pixels, (B, K, 2), and the (B, K) mask of points that T keeps
    inside the crop, for one random T per image (arguments as ``elt_loss``)."""
    size = images.shape[-1]
    matrices, mirrored = draw_transforms(images.shape[0], size, config, generator)
    matrices, mirrored = matrices.to(images.device), mirrored.to(images.device)
    if config.mirror_prob > 0 and perm is None:
        raise UserError("ELT with mirroring needs the layout's keypoint permutation")
    if config.target == "detached":
        with torch.no_grad():
            before = predict(images)
    else:
        before = predict(images)
    target = transform_points(before.float(), matrices, mirrored, perm)
    after = predict(warp_images(images, matrices)).float()
    inside = ((target >= -0.5) & (target < size - 0.5)).all(dim=-1)
    return after - target, inside


def elt_loss(predict: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, config: EltConfig,
             perm: tuple[int, ...] | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """ELT for a batch. ``predict`` maps (B, C, S, S) crops to (B, K, 2) landmarks in crop pixels,
    differentiably (e.g. the model's soft-argmax); ``perm`` is the layout's mirror permutation
    (needed only when ``config.mirror_prob`` > 0). Returns a scalar (0 if every point left the crop)."""
    residuals, inside = elt_residuals(predict, images, config, perm, generator)
    sq = (residuals / images.shape[-1]).pow(2).sum(-1)
    return (sq * inside).sum() / inside.sum().clamp_min(1)
