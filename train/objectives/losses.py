"""Training losses of the two papers.

2016 (RCN): spatial cross-entropy per keypoint map against the rounded target pixel, summed over
keypoints and averaged over the batch, plus a plain L2 penalty on weights with separate
coefficients for the trunk and the branches (biases are not decayed).
2018 (RCN+): squared error of soft-argmax coordinates, in units of the crop size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from realtime.models.decode import soft_argmax


def target_index(points: torch.Tensor, size: int) -> torch.Tensor:
    """(B, K, 2) crop-pixel points -> (B, K) flat index of the nearest pixel, clipped inside."""
    idx = points.round().long().clamp(0, size - 1)
    return idx[..., 1] * size + idx[..., 0]


def spatial_cross_entropy(logits: torch.Tensor, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) logits, (B, K, 2) targets, (B, K) bool mask -> scalar: the sum over visible
    keypoints of -log P(target pixel), averaged over the batch."""
    b, k, h, w = logits.shape
    flat = logits.float().reshape(b * k, h * w)
    target = target_index(points, w).reshape(-1)
    ce = F.cross_entropy(flat, target, reduction="none").reshape(b, k)
    return (ce * mask).sum() / b


def map_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) student and teacher logits -> scalar: KL(teacher || student) of each keypoint's
    spatial softmax, summed over keypoints and averaged over the batch (the scale of
    ``spatial_cross_entropy``, whose one-hot target it generalises: Hinton et al.'s soft targets,
    at temperature 1, over the map's pixels)."""
    b, k, h, w = student.shape
    log_s = F.log_softmax(student.float().reshape(b * k, h * w), dim=1)
    log_t = F.log_softmax(teacher.float().reshape(b * k, h * w), dim=1)
    return (log_t.exp() * (log_t - log_s)).sum() / b


def softargmax_l2(logits: torch.Tensor, points: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean over visible keypoints of the squared distance between soft-argmax and target,
    with coordinates divided by the crop size (so 0.01 is a 1%-of-crop RMS error squared)."""
    size = logits.shape[-1]
    pred, _ = soft_argmax(logits, beta)
    sq = ((pred - points) / size).pow(2).sum(-1)
    return (sq * mask).sum() / mask.sum().clamp_min(1)


def l2_penalty(groups: list[tuple[float, list[torch.nn.Parameter]]]) -> torch.Tensor:
    """sum_g coef_g * sum ||W||^2 over each group's parameters (the code's L2_coef terms)."""
    total = torch.zeros(())
    for coef, params in groups:
        if coef and params:
            total = total + coef * sum(p.float().pow(2).sum() for p in params)
    return total
