"""``inference_form``: the exported graph computes what the model computes, without a Concat
feeding a convolution (realtime/backends/inference_form.py)."""
from __future__ import annotations

from importlib.util import find_spec

import pytest
import torch

from realtime.backends import exported
from realtime.backends.inference_form import SplitRCN, inference_form
from realtime.core.assets import LANDMARKS_68
from realtime.models.model import build_model
from realtime.models.presets import make_config
from realtime.models.weights import load_model

VARIANTS = {
    "bundled-like": dict(preset="rcnplus", width_mult=0.5, separable=2, num_points=68, layout="ibug68"),
    "masked, learned upsampling, LCN": dict(preset="rcn_300w", branch_mask=(1, 0, 1, 1, 1), upsample="learned",
                                            normalise="lcn"),
    "finest level masked, all separable": dict(preset="rcnplus", width_mult=0.25, separable=5,
                                               branch_mask=(1, 1, 1, 1, 0)),
    "separable trunk": dict(preset="rcnplus", width_mult=0.5, separable=3, trunk_separable=2, num_points=68,
                            layout="ibug68"),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_split_network_equals_the_model_and_leaves_it_untouched(variant):
    options = dict(VARIANTS[variant])
    torch.manual_seed(0)
    model = build_model(make_config(options.pop("preset"), **options)).eval()
    with torch.no_grad():  # trained-like weights: biases and masks must matter, not sit at zero
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    split = inference_form(model)
    assert isinstance(split, SplitRCN)
    x = torch.rand(3, int(model.config.in_channels), 80, 80)
    with torch.no_grad():
        want, got = model(x), split(x)
    assert got.shape == want.shape
    assert (got - want).abs().max() <= 1e-4 * want.abs().max()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_other_architectures_pass_through():
    model = build_model(make_config("sumnet_mtfl")).eval()
    assert inference_form(model) is model


def test_the_exported_bundled_model_has_no_concat_before_a_conv(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    if find_spec("onnxscript") is None and find_spec("onnxruntime") is None:
        pytest.skip("no ONNX exporter dependencies installed")
    monkeypatch.setenv("RCN_CACHE", str(tmp_path))
    graph = onnx.load(str(exported.onnx_file(load_model(LANDMARKS_68), "softargmax", 1.0))).graph
    concat_outputs = {out for node in graph.node if node.op_type == "Concat" for out in node.output}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    assert convs and not any(set(node.input) & concat_outputs for node in convs)
