"""Depthwise-separable branches (ModelConfig.separable) and their start from a full-conv model."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from realtime.core.errors import UserError
from realtime.models.model import ModelConfig, SeparableConv, build_model, multiply_adds
from realtime.models.presets import make_config
from train.engine.factorise import factorisable, factorise_into, rank1


def _small(separable: int = 0) -> ModelConfig:
    return make_config("rcnplus", num_points=5, width_mult=0.25, separable=separable)


def _assert_acts_as_rank1(conv: torch.nn.Conv2d, separable: SeparableConv) -> None:
    """``separable`` computes the rank-1 version (``rank1``) of the full conv ``conv``."""
    x = torch.randn(1, conv.in_channels, 20, 20)
    depthwise, pointwise = rank1(conv.weight)
    expected = F.conv2d(F.conv2d(x, depthwise, padding=1, groups=conv.in_channels), pointwise, conv.bias)
    assert torch.allclose(separable(x), expected, atol=1e-5)


def test_rank1_is_exact_on_a_rank1_kernel_and_the_best_one_otherwise():
    torch.manual_seed(0)
    p, d = torch.randn(6, 4), torch.randn(4, 3, 3)
    weight = p[:, :, None, None] * d[None]  # W[o, c] = P[o, c] D[c]: exactly separable
    depthwise, pointwise = rank1(weight)
    x = torch.randn(2, 4, 9, 9)
    full = F.conv2d(x, weight, padding=1)
    factored = F.conv2d(F.conv2d(x, depthwise, padding=1, groups=4), pointwise)
    assert torch.allclose(full, factored, atol=1e-4)
    noisy = weight + 0.3 * torch.randn_like(weight)
    depthwise, pointwise = rank1(noisy)
    approx = pointwise[:, :, 0, 0, None, None] * depthwise[:, 0][None]
    # Eckart-Young: no other rank-1 product per input channel is closer (the exact one included)
    assert (noisy - approx).norm() <= (noisy - weight).norm() + 1e-5


def test_factorised_model_computes_the_rank1_convs_and_copies_everything_else():
    torch.manual_seed(1)
    dense = build_model(_small()).eval()
    slim = build_model(_small(separable=2)).eval()
    assert factorisable(dense, slim) and not factorisable(slim, dense)
    assert factorise_into(dense, slim) == 2
    assert isinstance(slim.branches[0][0], SeparableConv) and isinstance(slim.branches[1][0], SeparableConv)
    assert not isinstance(slim.branches[2][0], SeparableConv)
    kept = {k: v for k, v in dense.state_dict().items() if not k.startswith(("branches.0.0.", "branches.1.0."))}
    assert all(torch.equal(v, slim.state_dict()[k]) for k, v in kept.items())
    # the finest branch conv acts as its rank-1 version of the dense weight
    _assert_acts_as_rank1(dense.branches[0][0], slim.branches[0][0])


def test_factorise_refuses_other_changes():
    dense = build_model(_small())
    wider = build_model(dataclasses.replace(make_config("rcnplus", num_points=5, width_mult=0.5), separable=1))
    assert not factorisable(dense, wider)


def test_separable_levels_cut_multiply_adds_and_old_configs_read_as_dense():
    dense, slim = build_model(_small()), build_model(_small(separable=2))
    assert multiply_adds(slim) < 0.6 * multiply_adds(dense)
    first = dense.branches[0][0]  # the finest branch's first conv, counted by hand
    assert multiply_adds(dense) > 80 * 80 * first.in_channels * 9 * first.out_channels
    old = _small().to_json().replace(', "separable": 0', "")
    assert "separable" not in old and ModelConfig.from_json(old).separable == 0
    assert ModelConfig.from_json(_small(separable=2).to_json()).separable == 2
    with pytest.raises(UserError, match="separable levels must be 0-5"):
        build_model(dataclasses.replace(_small(), separable=6))


def test_trunk_separable_factorises_the_trunk_below_the_finest_level_and_extends_a_separable_model():
    torch.manual_seed(2)
    source = build_model(_small(separable=2)).eval()  # already separable: those convs are copied
    config = dataclasses.replace(_small(separable=3), trunk_separable=1)
    slim = build_model(config).eval()
    assert isinstance(slim.trunk[1][0], SeparableConv)
    assert not isinstance(slim.trunk[0][0], SeparableConv) and not isinstance(slim.trunk[2][0], SeparableConv)
    assert factorisable(source, slim) and not factorisable(slim, source)
    assert factorise_into(source, slim) == 2  # level 2's first branch conv and level 1's trunk conv
    factored = ("branches.2.0.", "trunk.1.0.")
    kept = {k: v for k, v in source.state_dict().items() if not k.startswith(factored)}
    assert all(torch.equal(v, slim.state_dict()[k]) for k, v in kept.items())
    _assert_acts_as_rank1(source.trunk[1][0], slim.trunk[1][0])
    assert multiply_adds(slim) < multiply_adds(source)


def test_trunk_separable_is_stored_only_when_set_and_checked():
    assert "trunk_separable" not in _small(separable=2).to_json()  # files and hashes of older models unchanged
    config = dataclasses.replace(_small(separable=3), trunk_separable=2)
    assert ModelConfig.from_json(config.to_json()) == config and '"trunk_separable": 2' in config.to_json()
    with pytest.raises(UserError, match="separable trunk levels must be 0-4"):
        build_model(dataclasses.replace(_small(), trunk_separable=5))
