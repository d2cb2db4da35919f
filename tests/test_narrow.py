"""Narrowing a trained RCN's levels (``train.engine.narrow``), and ``--level-widths`` end to end."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from realtime.core.errors import UserError
from realtime.models.model import build_model
from realtime.models.presets import make_config
from train.engine.narrow import narrow_into, narrowable


def config(widths=None, separable=2):
    return make_config("rcnplus", width_mult=0.5, separable=separable, level_widths=widths, decoder="softargmax")


@torch.no_grad()
def kill_channels(model, level: int, keep: int) -> None:
    """Zero every channel of ``level`` past the first ``keep`` (their filters, biases and the
    weights that read them stay zero), so they contribute nothing: a narrower network computes
    the same function."""
    conv = model.trunk[level][0]
    conv.weight[keep:] = 0
    conv.bias[keep:] = 0
    layers = [m for m in model.branches[level] if not isinstance(m, torch.nn.ReLU)]
    for layer in layers:
        last = layer.pointwise if hasattr(layer, "pointwise") else layer
        last.weight[keep:] = 0
        last.bias[keep:] = 0


@pytest.mark.parametrize("separable", [0, 2])
def test_a_network_whose_dropped_channels_are_dead_is_reproduced_exactly(separable):
    torch.manual_seed(0)
    source = build_model(config(separable=separable)).eval()
    kill_channels(source, 0, 16)
    kill_channels(source, 1, 24)
    student = build_model(config((16, 24, 32, 32, 32), separable)).eval()
    assert narrowable(source, student)
    assert narrow_into(source, student) > 0
    x = torch.rand(3, 1, 80, 80)
    with torch.no_grad():
        torch.testing.assert_close(student(x), source(x), atol=1e-5, rtol=1e-5)


def test_the_strongest_filters_are_kept_in_their_order():
    torch.manual_seed(1)
    source = build_model(config()).eval()
    with torch.no_grad():
        source.trunk[0][0].weight.mul_(0.01)
        source.trunk[0][0].weight[[3, 9, 30]] *= 1000  # clearly the strongest three
    student = build_model(config((3, 32, 32, 32, 32))).eval()
    narrow_into(source, student)
    torch.testing.assert_close(student.trunk[0][0].weight, source.trunk[0][0].weight[[3, 9, 30]])
    torch.testing.assert_close(student.trunk[1][0].weight, source.trunk[1][0].weight[:, [3, 9, 30]])


def test_only_narrower_levels_of_the_same_architecture_qualify():
    source = build_model(config())
    assert not narrowable(source, build_model(config()))  # nothing to narrow
    assert not narrowable(source, build_model(config((16, 32, 32, 32, 64))))  # wider
    assert not narrowable(source, build_model(config((16, 32, 32, 32, 32), separable=3)))  # another change
    wider_kernel = dataclasses.replace(config((16, 32, 32, 32, 32)), out_kernel=3)
    assert not narrowable(source, build_model(wider_kernel))
    with pytest.raises(UserError, match="level widths"):
        config((16, 32))


def test_fit_starts_a_narrower_run_from_full_width_weights(tmp_path):
    from realtime.models.weights import load_landmark_model, save_weights
    from train.engine.fit import build, init_from
    from train.engine.fit_config import FitConfig

    torch.manual_seed(2)
    source = build_model(config())
    save_weights(source, tmp_path / "full.safetensors")
    cfg = FitConfig(preset="rcnplus", data="synth:train", out=str(tmp_path / "run"), width_mult=0.5, separable=2,
                    level_widths=(16, 32, 32, 32, 32), loss="ce", decoder="softargmax")
    student = build(cfg, 68, "ibug68")
    init_from(student, str(tmp_path / "full.safetensors"))
    assert student.trunk[0][0].out_channels == 16 and student.head.in_channels == 16
    assert cfg.from_dict(cfg.to_dict()).level_widths == (16, 32, 32, 32, 32)
    assert load_landmark_model(tmp_path / "full.safetensors").config.trunk == (32,) * 5
