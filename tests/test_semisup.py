"""Semi-supervised training (2018): attribute loss through the landmarks, ELT, label regimes, fit."""
import csv
import json
import math

from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.models.attributes import AttributeConfig, AttributeNet
from realtime.models.decode import soft_argmax
from realtime.core.errors import UserError
from realtime.models.model import build_model
from realtime.models.presets import make_config
from realtime.models.weights import load_attribute_head, load_model, save_weights
from train.__main__ import main
from train.objectives.attribute_loss import attribute_loss, head_config, label_columns
from train.engine.checkpoint import load_checkpoint
from train.engine.fit_config import FitConfig
from train.data.datasets import open_dataset
from train.objectives.elt import EltConfig, draw_transforms, elt_loss, transform_points, warp_images
from train.engine.fit import fit
from train.data.loader import LandmarkDataset, attribute_table
from train.objectives.regimes import Pools, Subsets, choose_subsets

SIZE = 80


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RCN_CACHE", str(tmp_path / "cache"))


def tiny_model(num_points=5):
    torch.manual_seed(0)
    return build_model(make_config("rcnplus", num_points=num_points, width_mult=0.25, branches=3))


# --- sequential multitasking ---------------------------------------------------------------------

def synth_head(num_points=5):
    kinds = {"cls": "class:3", "orientation": "angle", "width": "scalar"}
    labels = np.array([[0, 10.0, 3.0], [2, -170.0, 5.0], [1, np.nan, np.nan]], dtype=np.float32)
    config = head_config(kinds, ["cls", "orientation", "width"], labels, num_points, SIZE, (32, 32), 0.0, "centred")
    return AttributeNet(config)


def test_attribute_loss_trains_the_landmark_network_without_landmark_labels():
    model, head = tiny_model(), synth_head()
    images = torch.rand(4, 1, SIZE, SIZE)
    labels = torch.tensor([[0, 30.0, 4.0], [1, -90.0, np.nan], [2, np.nan, 3.0], [np.nan, 175.0, 5.0]])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-3)
    points = soft_argmax(model(images), beta=1.0)[0]  # no landmark label is used anywhere
    loss = attribute_loss(head, points, labels)
    loss.backward()
    trunk_grad = sum(p.grad.abs().sum().item() for p in model.trunk_parameters())
    assert loss.item() > 0 and trunk_grad > 0
    optimizer.step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert any(n.startswith("trunk.0") for n in changed) and len(changed) == len(before)


def test_angle_loss_respects_wrap_around_and_missing_labels_are_masked():
    head = AttributeNet(AttributeConfig(5, SIZE, ("a",), ("angle",), hidden=(4,), dropout=0.0))
    with torch.no_grad():
        head.mlp[-1].weight.zero_()
        head.mlp[-1].bias.copy_(torch.tensor([math.cos(math.radians(359)), math.sin(math.radians(359))]))
    points = torch.rand(3, 5, 2) * SIZE
    near = attribute_loss(head, points, torch.tensor([[1.0], [1.0], [float("nan")]]))
    far = attribute_loss(head, points, torch.tensor([[179.0], [179.0], [float("nan")]]))
    assert near.item() == pytest.approx(1 - math.cos(math.radians(2)), abs=1e-6)
    assert far.item() == pytest.approx(2.0, abs=1e-5)  # 359 vs 179: opposite
    assert attribute_loss(head, points, torch.full((3, 1), float("nan"))).item() == 0.0
    assert head.predict(points)["a"][0].item() == pytest.approx(-1.0, abs=1e-4)


def test_class_labels_out_of_range_and_no_attributes_are_user_errors():
    with pytest.raises(UserError, match="outside the integers"):
        head_config({"c": "class:2"}, ["c"], np.array([[0.0], [2.0]]), 5, SIZE, (8,), 0.0, "centred")
    with pytest.raises(UserError, match="no"):
        head_config({}, [], np.zeros((2, 0)), 5, SIZE, (8,), 0.0, "centred")


FIX = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("spec,kinds", [
    (f"aflw:{FIX}/aflw/aflw.sqlite", {"pitch": "angle", "roll": "angle", "yaw": "angle"}),
    (f"mtfl:{FIX}/mtfl:train", {"gender": "class:2", "glasses": "class:2", "pose": "class:5", "smile": "class:2"}),
    ("synth:train?n=4&seed=3", {"cls": "class:3", "orientation": "angle"}),
])
def test_every_reader_with_attributes_gets_a_head_and_a_finite_loss(spec, kinds):
    data = open_dataset(spec)
    ds = LandmarkDataset(data)
    table = attribute_table(data, ds.attribute_names)
    k = data.samples[0].points.shape[0]
    config = head_config(data.attribute_kinds, ds.attribute_names, table, k, SIZE, (16,), 0.0, "centred")
    assert dict(zip(config.names, config.kinds)) == kinds
    items = [ds[i] for i in range(min(len(ds), 4))]
    labels = torch.stack([it["attrs"] for it in items])[:, label_columns(ds.attribute_names, config)]
    points = torch.stack([it["points"] for it in items]).requires_grad_()
    loss = attribute_loss(AttributeNet(config), points, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(points.grad).all()


def test_weights_carry_an_attribute_head_and_stay_strict(tmp_path):
    model, head = tiny_model(), synth_head()
    save_weights(model, tmp_path / "with.safetensors", attribute_head=head)
    save_weights(model, tmp_path / "without.safetensors")
    loaded = load_model(tmp_path / "with.safetensors")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())
    again = load_attribute_head(tmp_path / "with.safetensors")
    assert again.config == head.config
    assert all(torch.equal(v, head.state_dict()[k]) for k, v in again.state_dict().items())
    assert load_attribute_head(tmp_path / "without.safetensors") is None


# --- ELT -----------------------------------------------------------------------------------------

def blob_images(centres, size=SIZE, sigma=2.0):
    """(B, K, 2) centres -> (B, K, S, S): one Gaussian blob per channel."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    dx = xs[None, None] - centres[..., 0, None, None]
    dy = ys[None, None] - centres[..., 1, None, None]
    return torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))


def blob_finder(images):
    """An equivariant 'model': each channel's centre of mass (soft-argmax of log intensity)."""
    return soft_argmax(torch.log(images.clamp_min(1e-30)))[0]


def left_right_finder(images):
    """Two blobs; point 0 is the one on the image left (so mirroring swaps their labels)."""
    found = blob_finder(images)
    left = found[:, 0, 0] <= found[:, 1, 0]
    return torch.where(left[:, None, None], found, found[:, [1, 0]])


def test_elt_is_zero_for_an_equivariant_predictor_and_positive_for_a_broken_one():
    gen = torch.Generator().manual_seed(1)
    centres = torch.rand(8, 3, 2, generator=gen) * 30 + 25
    images = blob_images(centres)
    config = EltConfig()
    good = elt_loss(blob_finder, images, config, generator=torch.Generator().manual_seed(2))
    constant = lambda x: torch.full((x.shape[0], 3, 2), 30.0)  # noqa: E731
    bad = elt_loss(constant, images, config, generator=torch.Generator().manual_seed(2))
    assert good.item() < 1e-7  # RMS error below 0.03% of the crop (~0.03 px)
    assert bad.item() > 100 * good.item() and bad.item() > 1e-3


def test_elt_mirror_uses_the_keypoint_permutation():
    centres = torch.tensor([[[28.0, 40.0], [52.0, 38.0]]]).repeat(6, 1, 1)
    images = blob_images(centres)  # two channels: which blob is "left" is decided by position
    config = EltConfig(mirror_prob=1.0, translate=0.05, rotation_deg=10)
    with_perm = elt_loss(left_right_finder, images, config, perm=(1, 0), generator=torch.Generator().manual_seed(3))
    without = elt_loss(left_right_finder, images, config, perm=(0, 1), generator=torch.Generator().manual_seed(3))
    assert with_perm.item() < 1e-5 < 1e-2 < without.item()


def test_points_leaving_the_crop_are_masked_and_the_target_is_detached():
    matrices, mirrored = draw_transforms(2, SIZE, EltConfig(), torch.Generator().manual_seed(0))
    moved = transform_points(torch.tensor([[[-60.0, 40.0]], [[40.0, 40.0]]]), matrices, mirrored, None)
    assert not (moved[0] >= -0.5).all()
    shift = torch.zeros(2, requires_grad=True)
    calls = []

    def predict(x):
        calls.append(torch.is_grad_enabled())
        return blob_finder(x) + shift

    images = blob_images(torch.tensor([[[40.0, 40.0]]]))
    elt_loss(predict, images, EltConfig(rotation_deg=0, zoom=0, translate=0), generator=torch.Generator())
    assert calls == [False, True]
    calls.clear()
    elt_loss(predict, images, EltConfig(target="both"), generator=torch.Generator())
    assert calls == [True, True]
    assert warp_images(images, matrices[:1]).shape == images.shape


# --- label regimes -------------------------------------------------------------------------------

def test_subsets_are_deterministic_nested_and_saved(tmp_path):
    a = choose_subsets(1000, 0.05, 0.3, seed=4)
    assert a == choose_subsets(1000, 0.05, 0.3, seed=4)
    assert a.landmark != choose_subsets(1000, 0.05, 0.3, seed=5).landmark
    assert len(a.landmark) == 50 and len(a.attribute) == 300
    assert set(a.landmark) <= set(a.attribute)
    assert set(choose_subsets(1000, 0.01, 0.3, seed=4).landmark) <= set(a.landmark)  # 1% inside 5%
    assert len(choose_subsets(10, 0.01, 1.0, seed=0).landmark) == 1  # at least one image
    a.save(tmp_path / "subsets.json")
    assert Subsets.load(tmp_path / "subsets.json") == a
    with pytest.raises(UserError, match="landmark fraction"):
        choose_subsets(10, 0.5, 0.2, seed=0)


def test_pools_draw_by_step_and_keep_attribute_crops_upright():
    from train.data.augment import AugmentConfig
    from train.data.batches import collate as _collate

    ds = LandmarkDataset(open_dataset("synth:train?n=24&seed=3"), aug=AugmentConfig(), seed=1)
    subsets = choose_subsets(len(ds), 0.25, 0.5, seed=0)
    pools = Pools(ds, subsets, ("landmark", "attribute", "unlabelled"), 4, 9, _collate)
    first, again = pools.draw(5), pools.draw(5)
    for name in ("landmark", "attribute", "unlabelled"):
        assert torch.equal(first[name]["image"], again[name]["image"])
    assert set(first["landmark"]["index"].tolist()) <= set(subsets.landmark)
    assert set(first["attribute"]["index"].tolist()) <= set(subsets.attribute)
    assert pools.pools["attribute"][0].aug.rotation_deg == 0 and ds.aug.rotation_deg == 40
    assert pools.epoch(5) == 5 // (6 // 4)


# --- end to end ----------------------------------------------------------------------------------

def semi_cfg(out, **kw):
    base = dict(preset="rcnplus", data="synth:train?n=64&seed=3", val="synth:val?n=16&seed=3", out=str(out),
                loss="softargmax", optimizer="adam", lr=1e-3, batch_size=8, steps=4, eval_every=2, branches=3,
                width_mult=0.25, landmark_fraction=0.1, attribute_fraction=0.5, attribute_weight=1.0,
                elt_weight=1.0, attr_hidden=(32, 32), elt_mirror=0.5)
    base.update(kw)
    return FitConfig(**base)


def losses(run):
    with open(run / "log.csv") as f:
        return [(r["step"], r["train_loss"], r["val_nme"]) for r in csv.DictReader(f)]


def test_semi_supervised_run_saves_its_subsets_and_head_and_resumes_exactly(tmp_path):
    fit(semi_cfg(tmp_path / "a"), progress=False)
    fit(semi_cfg(tmp_path / "b"), stop_after=3, progress=False)
    fit(semi_cfg(tmp_path / "b"), resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 4
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["attribute_head"]["state"]:
        assert torch.equal(a["attribute_head"]["state"][key], b["attribute_head"]["state"][key]), key
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    with open(tmp_path / "a" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # each unweighted term is logged, and they add up to the weighted total (weights 1, no L2 term here)
        terms = [float(row[k]) for k in ("landmark_loss", "attribute_loss", "elt_loss")]
        assert all(t >= 0 for t in terms) and terms[1] > 0
        assert abs(sum(terms) - float(row["train_loss"])) < 1e-3 * max(1.0, float(row["train_loss"]))
    subsets = json.loads((tmp_path / "a" / "subsets.json").read_text())
    assert len(subsets["landmark"]) == 6 and len(subsets["attribute"]) == 32  # of 64 (--val given)
    head = load_attribute_head(tmp_path / "a" / "best.safetensors")
    assert head.config.names == ("cls", "orientation") and head.config.kinds == ("class:3", "angle")
    assert load_model(tmp_path / "a" / "best.safetensors").config.preset == "rcnplus"
    from train.engine.export import export
    export(tmp_path / "a" / "last.pt", tmp_path / "exported.safetensors")
    exported = load_attribute_head(tmp_path / "exported.safetensors")
    assert all(torch.equal(v, a["attribute_head"]["state"][k]) for k, v in exported.state_dict().items())


def test_cli_flags_reach_the_config_and_bad_values_are_one_line_errors(tmp_path, capsys):
    args = ["fit", "--preset", "rcnplus", "--data", "synth:train?n=32&seed=3", "--val", "synth:val?n=8&seed=3",
            "--out", str(tmp_path / "c"), "--steps", "1", "--batch-size", "4", "--width-mult", "0.25",
            "--branches", "3", "--loss", "softargmax", "--optimizer", "adam", "--quiet",
            "--landmark-fraction", "0.25", "--attribute-fraction", "0.5", "--subset-seed", "7",
            "--attribute-weight", "0.5", "--attr-hidden", "16,8", "--attr-dropout", "0.1", "--attr-inputs", "crop",
            "--elt-weight", "2", "--elt-rotation", "10", "--elt-translate", "0.1", "--elt-zoom", "0.1",
            "--elt-mirror", "0.5", "--elt-target", "both"]
    assert main(args) == 0
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert saved["landmark_fraction"] == 0.25 and saved["attribute_fraction"] == 0.5 and saved["subset_seed"] == 7
    assert saved["attr_hidden"] == [16, 8] and saved["attr_inputs"] == "crop" and saved["elt_target"] == "both"
    assert saved["elt_weight"] == 2 and saved["elt_mirror"] == 0.5 and saved["attribute_weight"] == 0.5
    assert json.loads((tmp_path / "c" / "subsets.json").read_text())["seed"] == 7
    capsys.readouterr()
    bad = [["--landmark-fraction", "1.5"], ["--landmark-fraction", "0.6", "--attribute-fraction", "0.5"],
           ["--attr-hidden", "0,4"], ["--elt-zoom", "1.5", "--elt-weight", "1"]]
    for extra in bad:
        assert main(args + ["--out", str(tmp_path / "bad")] + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err


def test_fit_with_no_landmark_labels_at_all_moves_the_trunk(tmp_path):
    from train.engine.fit import build

    cfg = semi_cfg(tmp_path / "z", landmark_fraction=0.0, elt_weight=0.0, steps=1, eval_every=1)
    fit(cfg, progress=False)
    torch.manual_seed(cfg.seed)
    start = build(cfg, 5, "mtfl5").state_dict()
    trained = load_checkpoint(tmp_path / "z" / "last.pt")["model"]
    assert json.loads((tmp_path / "z" / "subsets.json").read_text())["landmark"] == []
    assert not torch.equal(start["trunk.0.0.weight"], trained["trunk.0.0.weight"])
