"""``python -m train adapt``: ELT fine-tuning on unlabelled footage, drift guards, before/after
report, atomic output, resume, and bad input."""
import json

import numpy as np
import pytest
import torch

from realtime.core.assets import DEMO_CLIP, SYNTH_5
from realtime.models.weights import load_model, weights_info
from train.__main__ import main
from train.engine.adapt import AdaptConfig, adapt, crops_from_footage, equivariance_error_px, is_dataset_spec

WEIGHTS = str(SYNTH_5)
FRAMES = "synth:test?n=40&seed=11"


def test_adapt_on_dataset_crops_writes_weights_and_a_before_after_report(tmp_path, capsys):
    out = tmp_path / "adapted.safetensors"
    rc = main(["adapt", WEIGHTS, "--frames", FRAMES, "-o", str(out), "--check", FRAMES, "--steps", "6",
               "--batch-size", "4", "--json", str(tmp_path / "r.json")])
    assert rc == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["crops"] == 40 and report["held_out"] == 4
    for side in ("before", "after"):
        assert report[side]["equivariance_px"] > 0 and 0 < report[side]["check_nme"] < 1
    assert 0 < report["relative_drift"] < 0.01
    info = weights_info(out)
    assert info["adapted_from"] == WEIGHTS and info["adapt_config"]["steps"] == 6
    start, adapted = load_model(WEIGHTS), load_model(out)
    assert any(not torch.equal(a, b) for a, b in zip(start.state_dict().values(), adapted.state_dict().values()))
    assert "before ->" in capsys.readouterr().out
    assert not (tmp_path / "adapted.safetensors.resume.pt").exists()


def test_the_anchor_holds_the_weights_near_the_start(tmp_path):
    free = adapt(WEIGHTS, FRAMES, tmp_path / "free.safetensors", AdaptConfig(steps=8, batch_size=4, lr=1e-3, anchor_weight=0), log=lambda *_: None)
    held = adapt(WEIGHTS, FRAMES, tmp_path / "held.safetensors", AdaptConfig(steps=8, batch_size=4, lr=1e-3, anchor_weight=1e5), log=lambda *_: None)
    assert held["relative_drift"] < 0.5 * free["relative_drift"]


def test_an_interrupted_adaptation_resumes_to_the_same_weights(tmp_path, monkeypatch):
    """Ctrl-C in the middle of update 5 (a real SIGINT, through the training loop's stop path,
    ``train.engine.loop``): the update finishes, the checkpoint is written in the loop's format, and a
    resumed run ends with exactly the weights of an uninterrupted one."""
    import os
    import signal

    from train.engine.checkpoint import load_checkpoint

    cfg = AdaptConfig(steps=8, batch_size=4)
    adapt(WEIGHTS, FRAMES, tmp_path / "a.safetensors", cfg, log=lambda *_: None)
    calls = {"n": 0}
    real_step = torch.optim.Adam.step

    def interrupting_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", interrupting_step)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # CI may start us with SIGINT ignored
    try:
        with pytest.raises(KeyboardInterrupt):
            adapt(WEIGHTS, FRAMES, tmp_path / "b.safetensors", cfg, log=lambda *_: None)
    finally:
        signal.signal(signal.SIGINT, previous)
    resume = tmp_path / "b.safetensors.resume.pt"
    assert resume.is_file() and (tmp_path / "b.safetensors.resume.crops.npy").is_file()
    assert not (tmp_path / "b.safetensors").exists() and load_checkpoint(resume)["step"] == 5
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    adapt(WEIGHTS, FRAMES, tmp_path / "b.safetensors", cfg, resume=True, log=lambda *_: None)
    a, b = load_model(tmp_path / "a.safetensors"), load_model(tmp_path / "b.safetensors")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    assert not resume.exists() and not (tmp_path / "b.safetensors.resume.crops.npy").exists()


def test_footage_crops_come_from_the_detector_and_tracker(tmp_path):
    skimage = pytest.importorskip("skimage")
    import cv2

    face = skimage.data.astronaut()
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        shifted = np.roll(face, 4 * i, axis=1)
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(shifted, cv2.COLOR_RGB2BGR))
    crops = crops_from_footage(WEIGHTS, str(folder), AdaptConfig())
    assert crops.shape == (4, 80, 80, 1) and crops.dtype == np.uint8
    assert crops.std() > 10  # real image content, not padding
    model = load_model(WEIGHTS)
    assert np.isfinite(equivariance_error_px(model, crops, AdaptConfig().elt()))


def test_dataset_specs_and_paths_are_told_apart(tmp_path):
    assert is_dataset_spec("synth:test") and is_dataset_spec("folder:/x/y") and is_dataset_spec("synth")
    assert not is_dataset_spec("clip.mp4") and not is_dataset_spec(str(tmp_path))


@pytest.mark.parametrize("args, message", [
    (["missing.safetensors", "--frames", FRAMES], "weights file not found"),
    ([WEIGHTS, "--frames", "missing.mp4"], "not found"),
    ([WEIGHTS, "--frames", FRAMES, "--lr", "-1"], "--lr"),
])
def test_bad_input_is_a_one_line_error_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "x.safetensors"
    assert main(["adapt", *args, "-o", str(out), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_footage_without_faces_is_a_clear_error(tmp_path, capsys):
    import cv2

    folder = tmp_path / "noise"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    assert main(["adapt", WEIGHTS, "--frames", str(folder), "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "no faces found" in capsys.readouterr().err


def test_adapt_runs_on_the_bundled_clip(tmp_path, capsys):
    pytest.importorskip("av")
    out = tmp_path / "clip.safetensors"
    assert main(["adapt", WEIGHTS, "--frames", str(DEMO_CLIP), "-o", str(out), "--max-crops", "20", "--steps", "2"]) == 0
    assert f"20 face crops from {DEMO_CLIP}" in capsys.readouterr().out
    assert load_model(out).config.num_points == 5


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")])])
def test_adapt_and_evaluate_run_on_the_asked_device(tmp_path, device):
    """The model, its updates and the measurements on ``device``; the weights written are the same
    kind of file; on CUDA the before-adaptation measurements agree with the CPU's."""
    cfg = AdaptConfig(steps=3, batch_size=4)
    report = adapt(WEIGHTS, FRAMES, tmp_path / "a.safetensors", cfg, check=FRAMES, log=lambda *_: None, device=device)
    reference = adapt(WEIGHTS, FRAMES, tmp_path / "b.safetensors", cfg, check=FRAMES, log=lambda *_: None)
    assert report["before"]["check_nme"] == pytest.approx(reference["before"]["check_nme"], rel=1e-3)
    assert report["before"]["equivariance_px"] == pytest.approx(reference["before"]["equivariance_px"], rel=1e-3)
    assert next(iter(load_model(tmp_path / "a.safetensors").state_dict().values())).device.type == "cpu"
    from train.evaluation.evaluate import run_evaluate

    text = run_evaluate([str(tmp_path / "a.safetensors")], [FRAMES], ["eye_centres"], None, None, None, None, None,
                        False, device=device)
    assert "eye_centres" in text


def test_every_adapt_setting_has_a_flag_whose_default_is_the_configs():
    """AdaptConfig is the one source of adapt's defaults: the parser reads them from it, and
    every field can be set from the command line."""
    from dataclasses import asdict

    from train.__main__ import build_parser

    args = build_parser().parse_args(["adapt", "w.safetensors", "--frames", "x.mp4", "-o", "o.safetensors"])
    assert {k: getattr(args, k) for k in asdict(AdaptConfig())} == asdict(AdaptConfig())
    args = build_parser().parse_args(["adapt", "w.safetensors", "--frames", "x.mp4", "-o", "o.safetensors",
                                      "--elt-rotation", "10", "--max-crops", "50"])
    assert args.elt_rotation == 10 and args.max_crops == 50
