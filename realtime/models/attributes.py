"""The 2018 paper's sequential-multitasking head: attributes predicted from landmarks alone.

An ``AttributeNet`` sees only the K predicted landmarks (B, K, 2), in crop pixels, and predicts
several attributes at once: classes (``"class:<n>"``, n logits), angles (``"angle"``, degrees,
predicted as a (cos, sin) pair so that 359 and 1 degree are neighbours) and plain numbers
(``"scalar"``, one standardised output). Because its only input is the landmarks, an attribute
loss back-propagated through it (and the soft-argmax) trains the landmark network on images that
have attribute labels but no landmark labels (the 2018 paper's sequential multitasking).

Sizes (the paper's are not known, §2.4 "NOT RETRIEVED"): 2K inputs, ``hidden`` fully connected
layers (default two of 256) each followed by ReLU and dropout (default 0.25: the input is only
2K numbers, and heavier dropout mostly adds noise to the gradient that reaches the landmarks),
then one linear layer holding every attribute's outputs side by side.

Inputs (``inputs``): ``"centred"`` (default) subtracts the landmarks' mean and divides by their
RMS distance from it, so the head is blind to where the face sits in the crop and how large it
is (pose, expression and shape classes do not depend on either); ``"crop"`` maps the crop to
[-1, 1] and keeps position and size.

torch only, no I/O; shipped weights may carry a head (``realtime.models.weights``).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import torch
from torch import nn

from realtime.core.errors import UserError

INPUTS = ("centred", "crop")


def output_width(kind: str) -> int:
    """Outputs one attribute of ``kind`` takes: n for ``class:<n>``, 2 for ``angle``, 1 for ``scalar``."""
    if kind == "angle":
        return 2
    if kind == "scalar":
        return 1
    head, _, count = kind.partition(":")
    if head == "class" and count.isdigit() and int(count) >= 2:
        return int(count)
    raise UserError(f"unknown attribute kind {kind!r}; expected 'class:<n>' (n >= 2), 'angle' or 'scalar'")


@dataclass(frozen=True)
class AttributeConfig:
    """Everything needed to rebuild an attribute head; stored (as JSON) with shipped weights.

    ``names``/``kinds`` list the attributes in output order. ``offsets``/``scales`` map a scalar
    output back to the data's units (value = offset + scale * output); 0 and 1 for other kinds.
    """

    num_points: int
    input_size: int
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    hidden: tuple[int, ...] = (256, 256)
    dropout: float = 0.25
    inputs: str = "centred"
    offsets: tuple[float, ...] = ()
    scales: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        validate(self)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(output_width(k) for k in self.kinds)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "AttributeConfig":
        raw = json.loads(text)
        names = {f.name for f in dataclasses.fields(AttributeConfig)}
        if not isinstance(raw, dict) or set(raw) - names:
            raise UserError(f"attribute head config has unknown fields {sorted(set(raw) - names)}")
        for key in ("names", "kinds", "hidden", "offsets", "scales"):
            if key in raw:
                raw[key] = tuple(raw[key])
        return AttributeConfig(**raw)


def validate(config: AttributeConfig) -> None:
    """Raise UserError when an attribute head cannot be built."""
    n = len(config.names)
    if n == 0 or len(config.kinds) != n or len(set(config.names)) != n:
        raise UserError("an attribute head needs one kind per attribute name and at least one attribute")
    for kind in config.kinds:
        output_width(kind)
    if config.num_points < 1 or config.input_size < 2 or any(h < 1 for h in config.hidden):
        raise UserError("attribute head: num_points >= 1, input_size >= 2 and hidden sizes >= 1")
    if not 0.0 <= config.dropout < 1.0 or config.inputs not in INPUTS:
        raise UserError(f"attribute head: dropout in [0, 1) and inputs one of {INPUTS}")
    if len(config.offsets) not in (0, n) or len(config.scales) not in (0, n):
        raise UserError("attribute head: offsets and scales need one entry per attribute")


def normalise_points(points: torch.Tensor, inputs: str, input_size: int) -> torch.Tensor:
    """(B, K, 2) crop pixels -> (B, 2K) head inputs (see the module docstring)."""
    if inputs == "crop":
        flat = points * (2.0 / (input_size - 1)) - 1.0
    else:
        centred = points - points.mean(dim=1, keepdim=True)
        radius = centred.pow(2).sum(-1).mean(-1).add(1e-6).sqrt()
        flat = centred / radius[:, None, None]
    return flat.reshape(points.shape[0], -1)


class AttributeNet(nn.Module):
    """(B, K, 2) landmarks in crop pixels -> (B, D) raw outputs, D = sum of ``config.widths``."""

    def __init__(self, config: AttributeConfig):
        super().__init__()
        validate(config)
        self.config = config
        layers: list[nn.Module] = []
        width = 2 * config.num_points
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, sum(config.widths)))
        self.mlp = nn.Sequential(*layers)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.mlp(normalise_points(points.float(), self.config.inputs, self.config.input_size))

    def split(self, outputs: torch.Tensor) -> list[torch.Tensor]:
        """(B, D) -> one (B, width) slice per attribute, in ``config.names`` order."""
        return list(torch.split(outputs, list(self.config.widths), dim=-1))

    @torch.no_grad()
    def predict(self, points: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, K, 2) -> name -> (B,) float values in the data's units: the most likely class id,
        the angle in degrees in (-180, 180], or the scalar value."""
        was_training = self.training
        self.eval()
        parts = self.split(self(points))
        self.train(was_training)
        result: dict[str, torch.Tensor] = {}
        for i, (name, kind, out) in enumerate(zip(self.config.names, self.config.kinds, parts)):
            if kind == "angle":
                result[name] = torch.atan2(out[:, 1], out[:, 0]) * (180.0 / math.pi)
            elif kind == "scalar":
                offset = self.config.offsets[i] if self.config.offsets else 0.0
                scale = self.config.scales[i] if self.config.scales else 1.0
                result[name] = offset + scale * out[:, 0]
            else:
                result[name] = out.argmax(dim=-1).float()
        return result
