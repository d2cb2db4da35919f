"""Models, decoders, weights and checkpoints."""
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from realtime.models.decode import argmax_decode, soft_argmax, spatial_softmax
from realtime.models.denoise import Denoiser, DenoiserConfig, jitter_points, joint_decode, one_hot_maps
from realtime.core.errors import UserError
from realtime.models.model import ModelConfig, build_model
from realtime.models.presets import PRESETS, make_config
from realtime.models.weights import load_model, save_weights
from train.engine.checkpoint import load_checkpoint, save_checkpoint
from train.objectives.losses import softargmax_l2, spatial_cross_entropy

# Parameter counts from PAPERS.md (counted from the authors' code).
PAPER_COUNTS = {"rcn_mtfl": 227_141, "rcn_300w": 1_095_492, "sumnet_mtfl": 142_850}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def gaussian_logits(centres, size=80, sigma=1.5):
    """(K, 2) sub-pixel centres -> (1, K, size, size) log-Gaussian maps."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")
    maps = [-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2) for cx, cy in centres]
    return torch.stack(maps)[None]


def test_soft_argmax_matches_brute_force_reference():
    rng = np.random.default_rng(0)
    centres = rng.uniform(10, 70, size=(6, 2))
    logits = gaussian_logits(centres)
    points, scores = soft_argmax(logits, beta=1.0)
    # brute force: explicit double loop over every pixel
    probs = spatial_softmax(logits)[0].numpy()
    for k in range(len(centres)):
        x = sum(probs[k, i, j] * j for i in range(80) for j in range(80))
        y = sum(probs[k, i, j] * i for i in range(80) for j in range(80))
        assert abs(points[0, k, 0].item() - x) < 1e-4 and abs(points[0, k, 1].item() - y) < 1e-4  # float32
        assert scores[0, k].item() == pytest.approx(probs[k].max())
    # and the true sub-pixel peak is recovered
    assert np.abs(points[0].numpy() - centres).max() < 0.05


def test_soft_argmax_gradient():
    logits = (torch.randn(1, 2, 6, 7, dtype=torch.float64) * 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: soft_argmax(t, beta=1.7)[0], (logits,))


def test_argmax_decode_returns_peak_pixel():
    logits = torch.full((2, 3, 80, 80), -10.0)
    peaks = [(3, 70), (41, 5), (79, 79)]
    for k, (x, y) in enumerate(peaks):
        logits[:, k, y, x] = 10.0
    points, scores = argmax_decode(logits)
    assert points[0].tolist() == [[float(x), float(y)] for x, y in peaks]
    assert (scores > 0.5).all()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_forward_backward_every_parameter_gets_gradient(preset):
    model = build_model(make_config(preset, upsample="learned"))
    x = torch.rand(2, 1, 80, 80)
    logits = model(x)
    assert logits.shape == (2, model.config.num_points, 80, 80)
    logits.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not missing


@pytest.mark.parametrize("preset,count", sorted(PAPER_COUNTS.items()))
def test_parameter_counts_match_paper(preset, count):
    assert abs(n_params(build_model(make_config(preset))) - count) <= 0.02 * count
    assert n_params(build_model(make_config(preset))) == count  # in fact exact


def test_rcnplus_is_the_2018_proxy_size_with_points_from_the_data():
    """PAPERS.md §2.2: RCN+ (FPENet proxy) has ~0.51 M parameters for 19 or 68 points."""
    model = build_model(make_config("rcnplus"))
    assert n_params(model) == 509_828 and model.config.decoder == "softargmax"
    assert abs(n_params(build_model(make_config("rcnplus", num_points=19))) - 510_000) <= 0.02 * 510_000
    assert make_config("rcnplus", num_points=5).layout is None  # 68-point layout dropped


def test_learned_upsampling_adds_one_kernel_per_upsampling():
    assert n_params(build_model(make_config("rcn_300w", upsample="learned"))) == 1_095_492 + 36


@pytest.mark.parametrize("branches", [4, 5, 6, 7])
@pytest.mark.parametrize("preset", ["rcn_mtfl", "sumnet_mtfl"])
def test_branch_counts_rgb_and_kernels(preset, branches):
    config = make_config(preset, branches=branches, in_channels=3, branch_kernel=5, num_points=7, width_mult=0.5)
    model = build_model(config)
    assert model(torch.rand(1, 3, 80, 80)).shape == (1, 7, 80, 80)
    assert config.num_branches == branches


def _perturb_and_compare(model, params, x):
    before = model(x).detach().clone()
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn_like(p))
    return (model(x) - before).abs().max().item()


def test_sumnet_mask_removes_branch():
    torch.manual_seed(0)
    model = build_model(make_config("sumnet_mtfl", branches=4, branch_mask=(1, 0, 0, 1))).eval()
    x = torch.rand(2, 1, 80, 80)
    # branches are stored fine -> coarse, the mask is written coarse -> fine
    assert _perturb_and_compare(model, model.branches[1].parameters(), x) == 0.0
    assert _perturb_and_compare(model, model.branches[0].parameters(), x) > 0.0


def test_rcn_mask_finest_only_ignores_coarse_trunk():
    torch.manual_seed(0)
    model = build_model(make_config("rcn_mtfl", branches=4, branch_mask=(0, 0, 0, 1))).eval()
    x = torch.rand(2, 1, 80, 80)
    assert _perturb_and_compare(model, list(model.trunk[1].parameters()) + list(model.trunk[3].parameters()), x) == 0.0
    coarse_only = build_model(make_config("rcn_mtfl", branches=4, branch_mask=(1, 0, 0, 0))).eval()
    # the finest skip is masked: the output no longer sees fine detail that leaves coarse levels alone
    assert _perturb_and_compare(coarse_only, coarse_only.trunk[3].parameters(), x) > 0.0


def test_bad_configs_raise_user_error():
    with pytest.raises(UserError):
        make_config("nope")
    with pytest.raises(UserError):
        make_config("rcn_mtfl", branches=9)
    with pytest.raises(UserError):
        make_config("rcn_mtfl", branch_mask=(1, 0))
    with pytest.raises(UserError):
        make_config("rcn_mtfl", branch_mask=(0, 0, 0, 0, 0))


def test_denoiser_paper_size_and_joint_inference():
    big = Denoiser(DenoiserConfig())  # 45x45, K = 68
    assert abs(n_params(big) - 25.4e6) / 25.4e6 < 0.02
    small = Denoiser(DenoiserConfig(num_points=5, kernel=5, layout="mtfl5"))
    pts = torch.tensor([[[10.2, 20.7], [50.0, 50.0], [0.0, 79.0], [30.0, 31.0], [79.4, 3.0]]])
    maps = one_hot_maps(pts, 80)
    assert maps.sum().item() == 5 and maps[0, 0, 21, 10] == 1
    noisy, moved = jitter_points(pts.repeat(4, 1, 1), 2, 80, torch.Generator().manual_seed(1))
    assert moved.sum(1).tolist() == [2, 2, 2, 2]
    assert torch.equal(noisy[~moved], pts.repeat(4, 1, 1)[~moved])
    # a denoiser that outputs zeros leaves RCN's answer unchanged
    for p in small.parameters():
        torch.nn.init.zeros_(p)
    logits = gaussian_logits(pts[0].numpy().tolist()).float()
    joint, _ = joint_decode(logits, small, "argmax")
    assert torch.equal(joint, argmax_decode(logits)[0])


def test_losses():
    logits = torch.zeros(1, 1, 4, 4)
    points = torch.tensor([[[1.0, 2.0]]])
    mask = torch.ones(1, 1, dtype=torch.bool)
    assert spatial_cross_entropy(logits, points, mask).item() == pytest.approx(math.log(16))
    assert spatial_cross_entropy(logits, points, ~mask).item() == 0.0
    peak = gaussian_logits([(7.3, 8.6)], size=16, sigma=1.5).float()
    assert softargmax_l2(peak, torch.tensor([[[7.3, 8.6]]]), mask, 1.0).item() < 1e-7
    # 0.8 px off in x on a 16 px map: (0.8 / 16)^2
    assert softargmax_l2(peak, torch.tensor([[[8.1, 8.6]]]), mask, 1.0).item() == pytest.approx(0.0025, rel=1e-3)


def test_weights_round_trip_and_strict_loading(tmp_path):
    model = build_model(make_config("rcn_mtfl", branches=4, upsample="learned")).eval()
    path = tmp_path / "m.safetensors"
    save_weights(model, path, {"note": "test"})
    again = load_model(path)
    x = torch.rand(2, 1, 80, 80)
    assert torch.equal(model(x), again(x))
    assert again.config == model.config
    # a tensor missing -> strict load refuses
    from safetensors.torch import load_file
    from safetensors import safe_open
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(UserError, match="do not match"):
        load_model(tmp_path / "missing.safetensors")
    # a config that does not match the tensors
    meta2 = dict(meta, config=make_config("rcn_mtfl").to_json())
    save_file(load_file(str(path)), str(tmp_path / "mismatch.safetensors"), metadata=meta2)
    with pytest.raises(UserError, match="do not match"):
        load_model(tmp_path / "mismatch.safetensors")
    (tmp_path / "corrupt.safetensors").write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError):
        load_model(tmp_path / "corrupt.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(UserError, match="not one of ours"):
        load_model(tmp_path / "foreign.safetensors")
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "absent.safetensors")


def test_config_json_round_trip():
    config = make_config("sumnet_mtfl", branches=6, branch_mask=(1, 1, 0, 0, 1, 1))
    assert ModelConfig.from_json(config.to_json()) == config


def test_checkpoint_round_trip_weights_only(tmp_path):
    model = build_model(make_config("rcn_mtfl", branches=4))
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(1, 1, 80, 80)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c.pt", model, opt, 7, {"a": 1}, {"best": 0.5})
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt["step"] == 7 and ckpt["fit_config"] == {"a": 1} and ckpt["state"]["best"] == 0.5
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in ckpt["model"].items())
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(UserError):
        load_checkpoint(tmp_path / "bad.pt")


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    import os
    from realtime.core.atomic import write_text_atomic
    write_text_atomic(tmp_path / "a.txt", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_an_atomic_folder_replaces_the_old_one_only_when_finished(tmp_path):
    from realtime.core.atomic import atomic_folder
    out = tmp_path / "set"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(out) as scratch:
            (scratch / "new.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert [p.name for p in out.iterdir()] == ["old.txt"] and sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    with atomic_folder(out) as scratch:
        assert list(scratch.iterdir()) == []
        (scratch / "new.txt").write_text("done")
    assert [p.name for p in out.iterdir()] == ["new.txt"] and sorted(p.name for p in tmp_path.iterdir()) == ["set"]
