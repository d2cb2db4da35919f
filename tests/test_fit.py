"""Training runs end to end: loss falls, exact resume, export, CLI errors."""
import csv
import re
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cli_errors import default_signals

from realtime.models.weights import load_model
from train.engine.checkpoint import load_checkpoint
from train.engine.fit_config import FitConfig
from train.engine.export import export
from train.engine.fit import fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RCN_CACHE", str(tmp_path / "cache"))


def _cfg(out, **kw):
    base = dict(preset="rcn_mtfl", data="synth:train?n=96&seed=3", val="synth:val?n=32&seed=3", out=str(out),
                optimizer="adam", lr=2e-3, batch_size=16, steps=6, eval_every=3, branches=4, width_mult=0.5)
    base.update(kw)
    return FitConfig(**base)


def _losses(run):
    with open(run / "log.csv") as f:
        return [float(r["train_loss"]) for r in csv.DictReader(f)]


def test_short_run_lowers_the_loss(tmp_path):
    cfg = _cfg(tmp_path / "run", steps=60, eval_every=20, loss="ce", rotation=0, occluder=False)
    summary = fit(cfg, progress=False)
    losses = _losses(tmp_path / "run")
    assert summary["step"] == 60
    # measured: 41.3, 34.5, 30.9, 26.4, 26.3, 23.5 (spatial cross-entropy, 5 maps of 6400 pixels)
    assert sum(losses[-2:]) / 2 < 0.75 * sum(losses[:2]) / 2
    for name in ("config.json", "log.csv", "curves.png", "last.pt", "best.pt", "best.safetensors"):
        assert (tmp_path / "run" / name).is_file()


def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path):
    fit(_cfg(tmp_path / "a"), progress=False)
    fit(_cfg(tmp_path / "b"), stop_after=4, progress=False)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 4
    fit(_cfg(tmp_path / "b"), resume=True, progress=False)
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")


def test_resume_refuses_changed_settings(tmp_path):
    fit(_cfg(tmp_path / "a", steps=3), progress=False)
    from realtime.core.errors import UserError
    with pytest.raises(UserError, match="settings differ"):
        fit(_cfg(tmp_path / "a", steps=6, lr=1e-2), resume=True, progress=False)
    with pytest.raises(UserError, match="already holds a run"):
        fit(_cfg(tmp_path / "a"), progress=False)


def test_a_run_may_switch_to_bf16_autocast_on_resume(tmp_path):
    """bf16 autocast changes the arithmetic of the passes, not the run (weights, optimiser and schedule
    stay fp32), so a long run's next chunk may take it; the updates then differ from fp32 ones."""
    fit(_cfg(tmp_path / "a", steps=3), progress=False)
    fit(_cfg(tmp_path / "b", steps=3), progress=False)
    fit(_cfg(tmp_path / "a", steps=6), resume=True, progress=False)
    fit(_cfg(tmp_path / "b", steps=6, bf16=True), resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 6
    assert b["fit_config"]["bf16"] and not a["fit_config"]["bf16"]
    assert all(value.dtype == torch.float32 for value in b["model"].values() if value.is_floating_point())
    assert any(not torch.equal(value, b["model"][key]) for key, value in a["model"].items())


def test_a_copied_run_folder_resumes_to_a_longer_schedule_exactly(tmp_path):
    """Copy a finished run elsewhere and extend it: the same weights as one uninterrupted longer run."""
    import shutil
    fit(_cfg(tmp_path / "long"), progress=False)
    fit(_cfg(tmp_path / "short", steps=3), progress=False)
    shutil.copytree(tmp_path / "short", tmp_path / "copy")
    fit(_cfg(tmp_path / "copy"), resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "long" / "last.pt"), load_checkpoint(tmp_path / "copy" / "last.pt")
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert json.loads((tmp_path / "copy" / "config.json").read_text())["out"] == str(tmp_path / "copy")


def test_export_round_trip(tmp_path):
    fit(_cfg(tmp_path / "a", steps=3, preset="sumnet_mtfl"), progress=False)
    export(tmp_path / "a" / "last.pt", tmp_path / "w.safetensors")
    model = load_model(tmp_path / "w.safetensors")
    ckpt = load_checkpoint(tmp_path / "a" / "last.pt")
    assert all(torch.equal(v, ckpt["model"][k]) for k, v in model.state_dict().items())


def test_denoiser_trains(tmp_path):
    cfg = _cfg(tmp_path / "d", preset="denoiser", denoiser_kernel=9, denoiser_moved=2, steps=4, eval_every=2)
    summary = fit(cfg, progress=False)
    assert summary["step"] == 4 and load_model(tmp_path / "d" / "best.safetensors").config.kernel == 9


def _cli(*args, env_cache):
    env = {"RCN_CACHE": str(env_cache), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


BAD = [
    ["fit", "--preset", "nope", "--data", "synth:train?n=8", "--out", "{tmp}/x", "--steps", "1"],
    ["fit", "--preset", "rcn_mtfl", "--data", "300w:/no/such/folder", "--out", "{tmp}/x"],
    ["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "{tmp}/x", "--batch-size", "0"],
    ["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "{tmp}/x", "--lr", "abc"],
    ["fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=8", "--out", "{tmp}/x", "--branch-mask", "1,2"],
    ["fit", "--preset", "rcn_mtfl", "--data", "bogus:thing", "--out", "{tmp}/x"],
    ["evaluate", "{tmp}/missing.safetensors", "--data", "synth:test?n=4"],
    ["evaluate", "{tmp}/garbage.safetensors", "--data", "synth:test?n=4"],
    ["evaluate", "{tmp}/garbage.safetensors", "--data", "synth:test?n=4", "--norm", "nonsense"],
    ["export", "{tmp}/garbage.safetensors", "-o", "{tmp}/out.safetensors"],
    ["frobnicate"],
]


@pytest.mark.parametrize("args", BAD, ids=[" ".join(a[:3]) for a in BAD])
def test_bad_input_gives_one_line_error(tmp_path, args):
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    result = _cli(*[a.format(tmp=tmp_path) for a in args], env_cache=tmp_path / "cache")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not (tmp_path / "out.safetensors").exists()


def test_corrupt_image_in_dataset_gives_one_line_error(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    (faces / "a.png").write_bytes(b"not a png at all")
    (faces / "a.json").write_text('{"points": [[10, 10], [20, 10], [15, 15], [11, 20], [19, 20]], "layout": "mtfl5"}')
    result = _cli("fit", "--preset", "rcn_mtfl", "--data", f"folder:{faces}", "--val-fraction", "0",
                  "--out", str(tmp_path / "run"), "--steps", "1", env_cache=tmp_path / "cache")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: cannot decode image") and str(faces / "a.png") in result.stderr


def test_ctrl_c_saves_a_consistent_checkpoint_and_resume_finishes(tmp_path):
    import signal
    import time

    env = {"RCN_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "train", "fit", "--preset", "rcn_mtfl", "--data", "synth:train?n=64",
            "--val", "synth:val?n=16", "--out", str(tmp_path / "run"), "--steps", "100000", "--eval-every", "1000",
            "--batch-size", "8", "--branches", "4", "--width-mult", "0.25", "--optimizer", "adam", "--quiet"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)
    log = tmp_path / "run" / "log.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.is_file() and len(log.read_text().splitlines()) > 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err
    step = load_checkpoint(tmp_path / "run" / "last.pt")["step"]
    assert step >= 20
    args[args.index("100000")] = str(step + 5)
    done = subprocess.run(args + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == step + 5


def test_epochs_resolve_to_whole_passes_over_the_training_split(tmp_path):
    # 96 images, 10% held out -> 86 train -> 5 full batches of 16 per epoch
    summary = fit(_cfg(tmp_path / "e", val=None, val_fraction=0.1, epochs=2, eval_every=100), progress=False)
    assert summary["step"] == 10
    assert json.loads((tmp_path / "e" / "config.json").read_text())["steps"] == 10


def test_cosine_schedule_falls_from_lr_to_a_hundredth_and_resumes_exactly(tmp_path):
    cfg = _cfg(tmp_path / "a", lr_schedule="cosine", steps=6)
    assert cfg.lr_at(0) == pytest.approx(2e-3) and cfg.lr_at(3) == pytest.approx(2e-3 * 0.505)
    assert cfg.lr_at(6) == pytest.approx(2e-5) and _cfg(tmp_path, lr_schedule="constant").lr_at(5) == 2e-3
    fit(cfg, progress=False)
    fit(_cfg(tmp_path / "b", lr_schedule="cosine"), stop_after=4, progress=False)
    fit(_cfg(tmp_path / "b", lr_schedule="cosine"), resume=True, progress=False)
    a, b = (load_checkpoint(tmp_path / n / "last.pt") for n in "ab")
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())
    assert a["optimizer"]["param_groups"][0]["lr"] == pytest.approx(cfg.lr_at(5))


def test_init_starts_from_given_weights_and_refuses_another_architecture(tmp_path):
    from realtime.core.errors import UserError

    fit(_cfg(tmp_path / "a", steps=3), progress=False)
    export(tmp_path / "a" / "last.pt", tmp_path / "w.safetensors")
    start = load_model(tmp_path / "w.safetensors").state_dict()
    fit(_cfg(tmp_path / "b", steps=1, eval_every=1, lr=1e-12, init=str(tmp_path / "w.safetensors")), progress=False)
    tuned = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.allclose(v, tuned[k], atol=1e-6) for k, v in start.items())
    with pytest.raises(UserError, match=r"--init .*w\.safetensors is another architecture: it holds .*trunk widths \[8, 16.*differing: branch, trunk"):
        fit(_cfg(tmp_path / "c", steps=1, width_mult=1.0, init=str(tmp_path / "w.safetensors")), progress=False)


def test_init_without_separable_convs_is_factorised_into_them(tmp_path, capsys):
    fit(_cfg(tmp_path / "a", steps=2), progress=False)
    export(tmp_path / "a" / "last.pt", tmp_path / "w.safetensors")
    fit(_cfg(tmp_path / "b", steps=1, eval_every=1, separable=2, init=str(tmp_path / "w.safetensors")), progress=False)
    assert re.search(r"[1-9] conv\(s\) factorised into depthwise-separable ones", capsys.readouterr().out)
    tuned = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert "branches.0.0.depthwise.weight" in tuned and "branches.0.0.weight" not in tuned
    export(tmp_path / "b" / "last.pt", tmp_path / "s.safetensors")
    assert load_model(tmp_path / "s.safetensors").config.separable == 2
    # and that model's trunk below the finest level on top (train fit --trunk-separable 1)
    fit(_cfg(tmp_path / "c", steps=1, eval_every=1, separable=2, trunk_separable=1,
             init=str(tmp_path / "s.safetensors")), progress=False)
    assert re.search(r"\b1 conv\(s\) factorised", capsys.readouterr().out)
    export(tmp_path / "c" / "last.pt", tmp_path / "t.safetensors")
    config = load_model(tmp_path / "t.safetensors").config
    assert (config.separable, config.trunk_separable) == (2, 1)


def test_grey_init_starts_an_rgb_run_that_answers_a_grey_picture_as_before(tmp_path):
    from realtime.models.model import build_model
    from train.engine.fit import convert_input_channels, init_from

    fit(_cfg(tmp_path / "a", steps=2), progress=False)
    export(tmp_path / "a" / "last.pt", tmp_path / "grey.safetensors")
    grey = load_model(tmp_path / "grey.safetensors").eval()
    rgb = build_model(replace(grey.config, in_channels=3)).eval()
    init_from(rgb, str(tmp_path / "grey.safetensors"))
    x = torch.rand(2, 1, grey.config.input_size, grey.config.input_size)
    with torch.no_grad():  # grey = luma-weighted sum of the channels, and the z-score of (g, g, g) is g's
        assert torch.allclose(grey(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-3)
    back = build_model(grey.config)
    back.load_state_dict(convert_input_channels(rgb.state_dict(), back))
    assert all(torch.allclose(v, back.state_dict()[k], atol=1e-6) for k, v in grey.state_dict().items())
    fit(_cfg(tmp_path / "b", steps=1, eval_every=1, rgb=True, init=str(tmp_path / "grey.safetensors")), progress=False)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["model"]["trunk.0.0.weight"].shape[1] == 3


def test_ce_plus_softargmax_loss_is_the_sum_of_both(tmp_path):
    from train.engine.fit import _batches, _prepare
    from train.engine.speed import LoopSettings

    cfg = _cfg(tmp_path / "a", loss="ce+softargmax", softargmax_weight=1e3)
    trainer, _, _ = _prepare(cfg, tmp_path / "a", False, torch.device("cpu"), LoopSettings(workers=0))
    with _batches(trainer, 0, 0) as batches:
        _, batch = next(batches)
    both = trainer._landmark_loss(batch)
    ce = trainer.__class__(**{**trainer.__dict__, "cfg": replace(cfg, loss="ce")})._landmark_loss(batch)
    l2 = trainer.__class__(**{**trainer.__dict__, "cfg": replace(cfg, loss="softargmax")})._landmark_loss(batch)
    assert both.item() == pytest.approx(ce.item() + 1e3 * l2.item(), rel=1e-5)
    import shutil
    shutil.rmtree(tmp_path / "a", ignore_errors=True)
    assert fit(cfg, progress=False)["step"] == 6
    with pytest.raises(Exception, match="loss must be one of ce, softargmax, ce\\+softargmax"):
        replace(cfg, loss="l1").validate()


def test_map_distillation_is_zero_for_the_teachers_own_maps_and_ce_for_a_one_hot_teacher():
    from train.objectives.losses import map_distillation, spatial_cross_entropy

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    assert map_distillation(logits, logits).abs() < 1e-5
    assert map_distillation(logits, torch.randn(2, 3, 8, 8)) > 0.1
    points = torch.tensor([[[1.0, 2.0], [5.0, 5.0], [7.0, 0.0]]] * 2)
    one_hot = torch.full((2, 3, 8, 8), -1e4)
    for k, (x, y) in enumerate(points[0].long().tolist()):
        one_hot[:, k, y, x] = 0.0
    torch.testing.assert_close(map_distillation(logits, one_hot),
                               spatial_cross_entropy(logits, points, torch.ones(2, 3, dtype=torch.bool)))


def test_a_run_distilled_from_a_teacher_adds_the_maps_term_and_resumes(tmp_path):
    """``distil_from``: the teacher (any landmark network with the run's maps) is frozen, its KL term
    joins the loss (larger losses than the same run without it), and the setting is part of the run."""
    teacher_run = tmp_path / "teacher"
    fit(_cfg(teacher_run, steps=3, eval_every=3, loss="ce"), progress=False)
    teacher = teacher_run / "best.safetensors"
    before = load_model(teacher).state_dict()
    plain = _cfg(tmp_path / "plain", steps=3, eval_every=3, loss="ce", seed=5)
    fit(plain, progress=False)
    distilled = replace(plain, out=str(tmp_path / "distilled"), distil_from=str(teacher), distil_weight=2.0)
    fit(distilled, progress=False)
    assert _losses(tmp_path / "distilled")[0] > _losses(tmp_path / "plain")[0]
    after = load_model(teacher).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert FitConfig.from_dict(distilled.to_dict()).distil_from == str(teacher)
    with pytest.raises(Exception, match="distillation weight"):
        replace(distilled, distil_weight=-1.0).validate()


def test_distil_data_adds_a_batch_of_faces_seen_only_through_the_teachers_maps_and_resumes_exactly(tmp_path):
    """``distil_data``: each update also draws a batch of that dataset's faces (the "distil" pool),
    whose only term is the teacher's maps (logged as ``distil_loss``, weighted by ``distil_weight``);
    a resumed run equals an uninterrupted one; it needs a teacher."""
    teacher_run = tmp_path / "teacher"
    fit(_cfg(teacher_run, steps=3, eval_every=3, loss="ce"), progress=False)
    teacher = str(teacher_run / "best.safetensors")
    cfg = _cfg(tmp_path / "a", loss="ce", seed=5, distil_from=teacher, distil_weight=2.0,
               distil_data="synth:train?n=40&seed=9")
    cfg.validate()
    assert cfg.semi_supervised
    fit(cfg, progress=False)
    with open(tmp_path / "a" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(float(r["distil_loss"]) > 0 for r in rows)
    # the update's loss: the labelled batch's (its own distillation term included) + 2 x the distil batch's
    assert all(float(r["train_loss"]) > float(r["landmark_loss"]) + 2 * float(r["distil_loss"]) - 1e-3 for r in rows)
    fit(replace(cfg, out=str(tmp_path / "b")), stop_after=4, progress=False)
    fit(replace(cfg, out=str(tmp_path / "b")), resume=True, progress=False)
    a, b = (load_checkpoint(tmp_path / n / "last.pt") for n in "ab")
    assert a["step"] == b["step"] == 6
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert FitConfig.from_dict(cfg.to_dict()).distil_data == cfg.distil_data
    with pytest.raises(Exception, match="--distil-data needs --distil-from"):
        replace(cfg, distil_from=None).validate()
    with pytest.raises(Exception, match="distillation weight above 0"):
        replace(cfg, distil_weight=0.0).validate()


def test_the_distil_pool_draws_its_own_dataset_by_update_number():
    """The "distil" pool: every face of its own dataset is a member, batches follow the update
    number (the same update gives the same faces), and the other pools' seeds are unchanged."""
    import numpy as np
    from train.data.datasets import open_dataset
    from train.data.loader import LandmarkDataset
    from train.objectives.regimes import POOLS, Pools, choose_subsets

    assert POOLS[:3] == ("landmark", "attribute", "unlabelled")
    train = LandmarkDataset(open_dataset("synth:train?n=20&seed=1"))
    extra = LandmarkDataset(open_dataset("synth:train?n=50&seed=2"))
    subsets = choose_subsets(len(train), 1.0, 1.0, 0)
    pools = Pools(train, subsets, ("landmark", "distil"), 8, 0, lambda items: items, distil=extra)
    _, first = pools.indices("distil", 3)
    _, again = pools.indices("distil", 3)
    assert np.array_equal(first, again) and len(first) == 8 and first.max() < 50
    seen = np.concatenate([pools.indices("distil", s)[1] for s in range(6)])  # one pool-epoch: 6 batches of 8
    assert len(set(seen.tolist())) == 48
    with pytest.raises(ValueError, match="needs its dataset"):
        Pools(train, subsets, ("landmark", "distil"), 8, 0, lambda items: items)
