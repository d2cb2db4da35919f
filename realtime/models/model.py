"""Recombinator Networks (Honari et al., CVPR 2016) and the SumNet baseline, in torch only.

Both models map a face crop (B, C, S, S), float in [0, 1], to one pre-softmax map per keypoint,
(B, K, S, S). Normalisation (per-image z-score or the paper's local contrast normalisation) runs
inside the model, so a weights file fully describes what its input must be.

Levels are counted from the finest (level 0, S x S) to the coarsest. A *branch* is one level's
contribution: SumNet sums one output per branch; RCN concatenates each level's pre-pool trunk
features with the upsampled coarser path. ``branch_mask`` (written coarse -> fine, as the paper's
tables) switches branches off: a masked SumNet branch leaves the sum; a masked RCN branch feeds
zeros instead of its features (its skip, or for the coarsest level the whole coarse path).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from realtime.models.decode import decode
from realtime.core.errors import UserError

Convs = tuple[tuple[int, int], ...]  # (out_channels, kernel) per conv, each followed by ReLU


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a landmark model; stored in every weights file.

    ``trunk[i]`` is the encoder width at level i (finest first; one level per branch).
    ``branch[i]`` lists level i's branch convs (ReLU after each). ``out_kernel`` is the kernel of
    the final linear conv to K maps (RCN: once, at the finest level; SumNet: in every branch).
    ``separable`` counts the finest levels whose branch convs wider than 1x1 are depthwise-separable
    (``SeparableConv``): on an 80 px RCN+ at half width, 0 -> 2 cuts the multiply-adds from 208 M
    to 81 M, most of them in the finest level's first conv (docs/results_faces68.md).
    ``trunk_separable`` counts the trunk (encoder) convs made depthwise-separable likewise, from
    level 1 (the second finest) down: the first level's conv reads the input's one or three
    channels, which a depthwise filter cannot mix. On that network level 1's dense 3x3 trunk conv
    (32 to 32 channels at 40 x 40) is 12% of ONNX Runtime's time; 1 makes it separable.
    """

    arch: str
    num_points: int
    trunk: tuple[int, ...]
    branch: tuple[Convs, ...]
    out_kernel: int = 3
    trunk_kernel: int = 3
    in_channels: int = 1
    input_size: int = 80
    upsample: str = "nearest"
    normalise: str = "zscore"
    decoder: str = "softargmax"
    beta: float = 1.0
    branch_mask: tuple[int, ...] | None = None
    layout: str | None = None
    preset: str = ""
    separable: int = 0
    trunk_separable: int = 0

    @property
    def num_branches(self) -> int:
        return len(self.trunk)

    def mask_fine_first(self) -> tuple[int, ...]:
        if self.branch_mask is None:
            return (1,) * self.num_branches
        return tuple(reversed(self.branch_mask))

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        if not fields["trunk_separable"]:  # absent when 0: older files and their hashes read as before
            del fields["trunk_separable"]
        return json.dumps(fields, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "ModelConfig":
        raw = json.loads(text)
        raw["trunk"] = tuple(raw["trunk"])
        raw["branch"] = tuple(tuple(tuple(c) for c in convs) for convs in raw["branch"])
        if raw.get("branch_mask") is not None:
            raw["branch_mask"] = tuple(raw["branch_mask"])
        names = {f.name for f in dataclasses.fields(ModelConfig)}
        unknown = set(raw) - names
        if unknown:
            raise UserError(f"model config has unknown fields {sorted(unknown)}")
        config = ModelConfig(**raw)
        validate(config)
        return config


def validate(config: ModelConfig) -> None:
    """Raise UserError when a configuration cannot be built."""
    if config.arch not in ARCHS:
        raise UserError(f"unknown architecture {config.arch!r}; known: {', '.join(sorted(ARCHS))}")
    if not 2 <= config.num_branches <= 7 or len(config.branch) != config.num_branches:
        raise UserError(f"need 2-7 branches with one branch spec each, got {config.num_branches}")
    if config.num_points < 1 or config.in_channels not in (1, 3):
        raise UserError("num_points must be >= 1 and in_channels 1 (grey) or 3 (RGB)")
    if config.upsample not in ("nearest", "learned") or config.normalise not in ("zscore", "lcn", "none"):
        raise UserError(f"bad upsample {config.upsample!r} or normalise {config.normalise!r}")
    if not 0 <= config.separable <= config.num_branches:
        raise UserError(f"separable levels must be 0-{config.num_branches}, got {config.separable}")
    if not 0 <= config.trunk_separable <= config.num_branches - 1:
        raise UserError(f"separable trunk levels must be 0-{config.num_branches - 1}, got {config.trunk_separable}")
    if config.input_size < 2 ** min(config.num_branches - 1, 4):
        raise UserError(f"input size {config.input_size} too small for {config.num_branches} branches")
    mask = config.branch_mask
    if mask is not None and (len(mask) != config.num_branches or set(mask) - {0, 1} or not any(mask)):
        raise UserError(f"branch mask {mask} must have {config.num_branches} entries of 0/1, at least one 1")


def _conv(cin: int, cout: int, k: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    nn.init.xavier_uniform_(conv.weight)  # Glorot-uniform, biases 0, as the 2016 code
    nn.init.zeros_(conv.bias)
    return conv


class SeparableConv(nn.Module):
    """A k x k conv factorised as one k x k filter per input channel (depthwise, no bias) followed by
    a 1x1 conv to ``cout`` (MobileNet's depthwise-separable conv): cin*(k*k + cout) multiply-adds a
    pixel instead of cin*k*k*cout. ``train.engine.factorise`` initialises one from a trained full conv."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, k, padding=k // 2, groups=cin, bias=False)
        self.pointwise = _conv(cin, cout, 1)
        nn.init.xavier_uniform_(self.depthwise.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _stack(cin: int, convs: Convs, separable: bool = False) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for cout, k in convs:
        conv = SeparableConv(cin, cout, k) if separable and k > 1 else _conv(cin, cout, k)
        layers += [conv, nn.ReLU(inplace=True)]
        cin = cout
    return nn.Sequential(*layers), cin


def _pool(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pool; 3x3 stride 2 on odd sizes (5 -> 2, as the code's extra 2x2 branch)."""
    k = 2 if x.shape[-1] % 2 == 0 else 3
    return F.max_pool2d(x, kernel_size=k, stride=2)


class Normalise(nn.Module):
    """Per-image z-score, or the 2016 code's local contrast normalisation (9x9 Gaussian, sigma 1.59)."""

    def __init__(self, mode: str, channels: int):
        super().__init__()
        self.mode = mode
        coords = torch.arange(9, dtype=torch.float32) - 4
        g = torch.exp(-coords**2 / (2 * 1.591**2))
        kernel = (g[:, None] * g[None, :]) / (g.sum() ** 2)
        self.register_buffer("kernel", kernel.expand(channels, 1, 9, 9).clone(), persistent=False)

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (4, 4, 4, 4), mode="replicate"), self.kernel, groups=x.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return x
        if self.mode == "zscore":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = x.std(dim=(1, 2, 3), keepdim=True)
            return (x - mean) / (std + 1e-5)
        v = x - self._blur(x)
        std = self._blur(v * v).clamp_min(0).sqrt()
        floor = std.mean(dim=(1, 2, 3), keepdim=True)
        return (v / torch.maximum(std, floor).clamp_min(1e-5) + 2.5) / 5


class Upsample(nn.Module):
    """Nearest upsampling to the skip's size, or (``learned``) one 3x3 transposed-conv kernel
    shared across channels, stride 2, Glorot init (the code's ``--learn_upsampling``). Odd target
    sizes (2 -> 5) always use nearest."""

    def __init__(self, learned: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, 1, 3, 3)) if learned else None
        if self.weight is not None:
            nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.weight is None or size != (2 * x.shape[-2], 2 * x.shape[-1]):
            return F.interpolate(x, size=size, mode="nearest")
        b, c, h, w = x.shape
        y = F.conv_transpose2d(x.reshape(b * c, 1, h, w), self.weight, stride=2, padding=1, output_padding=1)
        return y.reshape(b, c, *size)


class LandmarkNet(nn.Module):
    """Shared trunk (encoder) of both architectures, and the decode helper."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        validate(config)
        self.config = config
        self.normalise = Normalise(config.normalise, config.in_channels)
        trunk, cin = [], config.in_channels
        for level, width in enumerate(config.trunk):
            k = config.trunk_kernel
            separable = 1 <= level <= config.trunk_separable and k > 1
            trunk.append(nn.Sequential(SeparableConv(cin, width, k) if separable else _conv(cin, width, k),
                                       nn.ReLU(inplace=True)))
            cin = width
        self.trunk = nn.ModuleList(trunk)
        self.register_buffer("mask", torch.tensor(config.mask_fine_first(), dtype=torch.float32), persistent=False)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, S, S) -> per-level pre-pool trunk features, finest first."""
        feats, h = [], self.normalise(x)
        for i, block in enumerate(self.trunk):
            h = block(h if i == 0 else _pool(h))
            feats.append(h)
        return feats

    def trunk_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.trunk.parameters() if p.ndim > 1]

    def branch_parameters(self) -> list[nn.Parameter]:
        """Weights (not biases) outside the trunk: the second L2 group of the 2016 recipe."""
        trunk = {id(p) for p in self.trunk.parameters()}
        return [p for n, p in self.named_parameters() if id(p) not in trunk and p.ndim > 1]

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, S, S) -> points (B, K, 2) in crop pixels and scores (B, K)."""
        return decode(self(x), self.config.decoder, self.config.beta)


class RCN(LandmarkNet):
    """Recombinator Network: coarse features are upsampled and concatenated with the next finer
    level's pre-pool trunk features, then convolved; one output at the finest level."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        n = config.num_branches
        branches: list[nn.Module] = [nn.Identity()] * n
        coarse, path_ch = _stack(config.trunk[-1], config.branch[-1], n - 1 < config.separable)
        branches[-1] = coarse
        for level in range(n - 2, -1, -1):
            branches[level], path_ch = _stack(config.trunk[level] + path_ch, config.branch[level],
                                              level < config.separable)
        self.branches = nn.ModuleList(branches)
        self.ups = nn.ModuleList(Upsample(config.upsample == "learned") for _ in range(n - 1))
        self.head = _conv(path_ch, config.num_points, config.out_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encode(x)
        n, m = len(feats), self.mask
        path = self.branches[-1](feats[-1]) * m[-1]
        for level in range(n - 2, -1, -1):
            up = self.ups[level](path, feats[level].shape[-2:])
            path = self.branches[level](torch.cat([feats[level] * m[level], up], dim=1))
        return self.head(path)


class SumNet(LandmarkNet):
    """The FCN/Hypercolumn-style baseline: every level has its own branch ending in K maps, which
    are upsampled (nearest) to the input size and summed with one learned weight per (branch,
    keypoint), initialised U[0, 1)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        heads = []
        for level, convs in enumerate(config.branch):
            stack, cout = _stack(config.trunk[level], convs, level < config.separable)
            heads.append(nn.Sequential(stack, _conv(cout, config.num_points, config.out_kernel)))
        self.branches = nn.ModuleList(heads)
        self.branch_weights = nn.Parameter(torch.rand(config.num_branches, config.num_points))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encode(x)
        size = feats[0].shape[-2:]
        out, keep = 0, self.config.mask_fine_first()  # the config's tuple, not the buffer: no host sync, exportable
        for level, (feat, branch) in enumerate(zip(feats, self.branches)):
            if not keep[level]:
                continue
            maps = F.interpolate(branch(feat), size=size, mode="nearest")
            out = out + maps * self.branch_weights[level][None, :, None, None]
        return out

    def branch_parameters(self) -> list[nn.Parameter]:
        return [p for p in super().branch_parameters() if p is not self.branch_weights]


ARCHS = {"rcn": RCN, "sumnet": SumNet}


def multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of the convolutions of one forward pass on one crop (what sets CPU speed here)."""
    config = model.config
    total = 0

    def count(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output[0].numel() * (module.in_channels // module.groups) * kh * kw

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            p = next(model.parameters())
            model(torch.zeros(1, config.in_channels, config.input_size, config.input_size, device=p.device, dtype=p.dtype))
    finally:
        for h in hooks:
            h.remove()
    return total


def build_model(config: ModelConfig) -> LandmarkNet:
    validate(config)
    return ARCHS[config.arch](config)
