"""Sequential multitasking, the training side: build an attribute head for a dataset, and its loss.

The head (``realtime.models.attributes.AttributeNet``) sees only the soft-argmax landmarks, so
``attribute_loss`` back-propagates through the head, the soft-argmax and the whole landmark
network (the 2018 paper's sequential multitasking). Every attribute in ``LandmarkSet.attribute_kinds`` gets an output:

- ``class:<n>``: cross-entropy on n logits;
- ``angle`` (degrees): the head outputs (c, s); the loss is ``1 - cos(predicted - true)`` with the
  predicted angle atan2(s, c), i.e. 1 - (c cos t + s sin t) / |(c, s)|: 0 when right, 2 when
  opposite, smooth, and 359 degrees is as close to 1 as 3 is;
- ``scalar``: squared error of the standardised value (mean and spread of the labelled subset).

Labels are NaN where missing; missing labels are masked out. Each attribute's loss is the mean
over its labelled images in the batch, and the attribute loss is the sum over attributes.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from realtime.models.attributes import AttributeConfig, AttributeNet, output_width
from realtime.core.errors import UserError


def head_config(kinds: dict[str, str], names: list[str], labels: np.ndarray, num_points: int,
                input_size: int, hidden: tuple[int, ...], dropout: float, inputs: str) -> AttributeConfig:
    """The head for every attribute with a declared kind.

    ``names`` (A,) is the dataset's attribute order and ``labels`` (N, A) the labels the run may
    see (the attribute subset), NaN = missing; class labels must be integers 0..n-1.
    """
    chosen = [n for n in names if n in kinds]
    if not chosen:
        raise UserError("the attribute loss needs a dataset with attributes (e.g. synth, aflw, mtfl); this one has none")
    offsets, scales = [], []
    for name in chosen:
        column = labels[:, names.index(name)]
        seen = column[~np.isnan(column)]
        kind = kinds[name]
        width = output_width(kind)
        if kind.startswith("class:") and seen.size and (np.any(seen != np.round(seen)) or seen.min() < 0 or seen.max() >= width):
            raise UserError(f"attribute {name!r} is {kind} but has labels outside the integers 0..{width - 1}")
        scalar = kind == "scalar" and seen.size > 0
        offsets.append(float(seen.mean()) if scalar else 0.0)
        scales.append(float(max(seen.std(), 1e-6)) if scalar and seen.size > 1 else 1.0)
    return AttributeConfig(
        num_points=num_points, input_size=input_size, names=tuple(chosen), kinds=tuple(kinds[n] for n in chosen),
        hidden=tuple(hidden), dropout=dropout, inputs=inputs, offsets=tuple(offsets), scales=tuple(scales),
    )


def label_columns(dataset_names: list[str], config: AttributeConfig) -> list[int]:
    """Indices into a dataset item's ``attrs`` (dataset order) of the head's attributes."""
    return [dataset_names.index(name) for name in config.names]


def attribute_loss(head: AttributeNet, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, K, 2) predicted landmarks (crop pixels, with gradient) and (B, A) labels in the head's
    attribute order (NaN = missing) -> scalar: sum over attributes of the mean loss over the
    images labelled with that attribute (an attribute with no label in the batch adds 0)."""
    config = head.config
    total = points.new_zeros(())
    for i, (kind, out) in enumerate(zip(config.kinds, head.split(head(points)))):
        target = labels[:, i].float()
        seen = ~torch.isnan(target)
        if not bool(seen.any()):
            continue
        out, target = out[seen], target[seen]
        if kind == "angle":
            rad = target * (math.pi / 180.0)
            unit = out / out.norm(dim=-1, keepdim=True).clamp_min(1e-6)
            loss = (1.0 - unit[:, 0] * torch.cos(rad) - unit[:, 1] * torch.sin(rad)).mean()
        elif kind == "scalar":
            offset = config.offsets[i] if config.offsets else 0.0
            scale = config.scales[i] if config.scales else 1.0
            loss = (out[:, 0] - (target - offset) / scale).pow(2).mean()
        else:
            loss = F.cross_entropy(out, target.long())
        total = total + loss
    return total
