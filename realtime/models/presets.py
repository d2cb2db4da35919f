"""Named model configurations (minGPT's ``model_type`` idea) and their variants.

Presets reproduce the 2016 code's networks exactly (docs/models.md): ``rcn_mtfl`` (5 points,
227,141 parameters), ``rcn_300w`` (68 points, 1,095,492), ``sumnet_mtfl`` (142,850) and
``sumnet_300w``. ``rcnplus`` is the 2018 paper's RCN+ (after NVIDIA's FPENet
proxy): uniform 64-channel encoder/decoder, 3x3 + 1x1 convs per branch (the coarsest level's 3x3
trunk conv + 3x3 + 1x1 is the proxy's 5x5 trunk; the finest adds the proxy's extra 1x1 head conv),
a 1x1 output conv and the soft-argmax decoder; 509,828 parameters for 68 points (the keypoint
count normally comes from the dataset). ``make_config`` derives variants: keypoint count, branch count (2-7), width
multiplier, per-level channel counts (``level_widths``), branch kernel size, grey/RGB input,
nearest/learned upsampling, a branch mask.
"""
from __future__ import annotations

import dataclasses

from realtime.core.errors import UserError
from realtime.models.model import Convs, ModelConfig, validate

_MTFL_TRUNK = (16, 32, 48, 48, 48)

PRESETS: dict[str, ModelConfig] = {
    "rcn_mtfl": ModelConfig(
        arch="rcn", num_points=5, layout="mtfl5", trunk=_MTFL_TRUNK, out_kernel=3,
        branch=(((16, 3),), ((32, 3), (16, 3)), ((48, 3), (32, 3)), ((48, 3),), ((48, 3), (48, 3))),
    ),
    "rcn_300w": ModelConfig(
        arch="rcn", num_points=68, layout="ibug68", trunk=(64,) * 5, out_kernel=1,
        branch=(((64, 5), (64, 1), (64, 1)), ((64, 5), (64, 1)), ((64, 5), (64, 1)), ((64, 5),), ((64, 5), (64, 1))),
    ),
    "sumnet_mtfl": ModelConfig(
        arch="sumnet", num_points=5, layout="mtfl5", trunk=_MTFL_TRUNK, out_kernel=3,
        branch=tuple(((c, 3),) for c in _MTFL_TRUNK),
    ),
    "sumnet_300w": ModelConfig(
        arch="sumnet", num_points=68, layout="ibug68", trunk=(64,) * 5, out_kernel=3,
        branch=(((64, 3), (64, 3)),) + (((64, 3),),) * 4,
    ),
    "rcnplus": ModelConfig(
        arch="rcn", num_points=68, layout="ibug68", trunk=(64,) * 5, trunk_kernel=3, out_kernel=1,
        branch=(((64, 3), (64, 1), (64, 1)),) + (((64, 3), (64, 1)),) * 4, decoder="softargmax",
    ),
}


def _resize_branches(config: ModelConfig, n: int) -> tuple[tuple[int, ...], tuple[Convs, ...]]:
    """Trim or extend to ``n`` levels. New coarse levels repeat the coarsest trunk width; the
    coarsest level keeps its own branch spec and inner levels repeat the coarsest inner spec."""
    trunk = (config.trunk + (config.trunk[-1],) * n)[:n]
    inner = list(config.branch[:-1])
    inner += [inner[-1]] * (n - 1 - len(inner))
    return trunk, tuple(inner[: n - 1]) + (config.branch[-1],)


def _scale(convs: Convs, mult: float, kernel: int | None) -> Convs:
    return tuple((max(1, round(c * mult)), kernel if (kernel and k > 1) else k) for c, k in convs)


def make_config(
    preset: str,
    *,
    num_points: int | None = None,
    layout: str | None = None,
    branches: int | None = None,
    width_mult: float = 1.0,
    branch_kernel: int | None = None,
    in_channels: int | None = None,
    upsample: str | None = None,
    normalise: str | None = None,
    branch_mask: tuple[int, ...] | None = None,
    decoder: str | None = None,
    beta: float | None = None,
    separable: int = 0,
    level_widths: tuple[int, ...] | None = None,
    trunk_separable: int = 0,
) -> ModelConfig:
    """A preset with overrides; raises UserError for an unknown preset or an impossible variant."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
    if width_mult <= 0 or (branch_kernel is not None and (branch_kernel < 1 or branch_kernel % 2 == 0)):
        raise UserError("width multiplier must be > 0 and the branch kernel an odd size >= 1")
    config = PRESETS[preset]
    trunk, branch = config.trunk, config.branch
    if branches is not None and branches != config.num_branches:
        if not 2 <= branches <= 7:
            raise UserError(f"branch count must be 2-7, got {branches}")
        trunk, branch = _resize_branches(config, branches)
    trunk = tuple(max(1, round(c * width_mult)) for c in trunk)
    branch = tuple(_scale(convs, width_mult, branch_kernel) for convs in branch)
    if level_widths is not None:  # every conv of level i (trunk and branch) at level_widths[i] channels, finest first
        if len(level_widths) != len(trunk) or min(level_widths) < 1:
            raise UserError(f"level widths need {len(trunk)} channel counts of at least 1 (finest first), "
                            f"got {','.join(map(str, level_widths))}")
        trunk = tuple(level_widths)
        branch = tuple(tuple((w, k) for _, k in convs) for w, convs in zip(level_widths, branch))
    if config.arch == "sumnet":  # each SumNet branch starts at its trunk's width
        branch = tuple(((t, convs[0][1]),) + convs[1:] for t, convs in zip(trunk, branch))
    updates = dict(
        num_points=num_points, layout=layout, in_channels=in_channels, upsample=upsample,
        normalise=normalise, decoder=decoder, beta=beta,
    )
    config = dataclasses.replace(
        config, trunk=trunk, branch=branch, branch_mask=branch_mask, preset=preset, separable=separable,
        trunk_separable=trunk_separable,
        **{k: v for k, v in updates.items() if v is not None},
    )
    if num_points is not None and layout is None and num_points != PRESETS[preset].num_points:
        config = dataclasses.replace(config, layout=None)
    validate(config)
    return config
