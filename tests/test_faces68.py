"""The bundled-model recipe (``train/recipes/faces68_recipe.py``, ``python -m train.faces68``): configuration,
report, error paths."""
from __future__ import annotations

import shlex
from unittest import mock

import pytest

from train import faces68
from train.engine.runs import command_line
from train.recipes import faces68_recipe as recipe68


def test_recipe_is_valid_and_its_printed_command_rebuilds_it(tmp_path):
    cfg = recipe68.recipe(tmp_path / "300w", tmp_path / "run", 3000, recipe68.DEFAULT_INIT)
    cfg.validate()
    assert cfg.preset == "rcnplus" and cfg.width_mult == 0.5 and cfg.augment == "heavy" and cfg.lr_schedule == "cosine"
    assert cfg.data.endswith(":train?part=fit") and cfg.val.endswith(":train?part=val")
    assert cfg.init == str(recipe68.DEFAULT_INIT)
    argv = shlex.split(command_line(cfg))[3:]  # drop "python -m train"
    import train.__main__ as cli

    with mock.patch("train.__main__.fit", return_value={"step": 0, "seconds": 0, "best_val_nme": 0, "best_step": 0}) as fit:
        cli.main(argv)
    assert fit.call_args.args[0] == cfg


def test_render_reports_every_number():
    row = {"n": 21, "mean_pct": 4.5, "median_pct": 4.0, "failure@0.08_pct": 4.8, "failure@0.10_pct": 1.2}
    clip = {"found": 1.0, "nme_pct": 3.2, "nme_median_pct": 3.0, "jitter_pct": 0.21, "frames": 300, "still_frames": 60}
    timed = lambda ms, dev: {"b1": ms, "b8": ms - 0.25, "nme_pct": 3.9, "max_dev_px": dev}  # noqa: E731
    speed = {"threads": 2, "backends": {"eager": timed(5.0, 0.0), "onnxruntime": timed(1.5, 0.0004)}}
    both = {"outer_eye": row, "eye_centres": row}
    results = {"hardware": "cpu", "train_seconds": 3600, "heldout": both, "train": both, "init_heldout": both,
               "clip": {"raw": clip, "smoothed": clip}, "speed": speed, "pose_head_mae_deg": {"yaw": 5.25, "roll": 1.0},
               "counts": {"fit": 1086, "val": 121, "val_photos": 85}}
    text = recipe68.render(results, "python -m train.faces68", "python -m train fit --preset rcnplus")
    assert "| this model, hold-out | 21 | 4.50 (4.50) | 4.00 | 4.8 | 1.2 |" in text
    assert "| `--init` model, hold-out | 21 |" in text and "yaw 5.2 deg, roll 1.0 deg" in text
    assert "| smoothed | 100.0% | 3.20% | 3.00% | 0.210% |" in text
    assert "1086 faces to train on and a hold-out of 121 faces from 85 photos" in text and "60 min" in text
    assert "research and non-commercial use only" in text
    assert "| onnxruntime | 1.50 | 1.25 | 3.90% | 0.000 px |" in text


def test_speed_times_every_available_fp32_backend(tmp_path):
    from realtime.models.model import build_model
    from realtime.models.presets import make_config
    from realtime.models.weights import save_weights

    path = tmp_path / "m.safetensors"
    save_weights(build_model(make_config("rcnplus", width_mult=0.25, num_points=5, layout="mtfl5")), path)
    out = recipe68.speed(path, "synth:test?n=8", seconds=0.01)["backends"]
    assert out["eager"]["max_dev_px"] == 0.0 and set(out) <= set(recipe68.SPEED_BACKENDS)
    assert all(row["b1"] > 0 and row["b8"] > 0 and row["nme_pct"] > 0 for row in out.values())


def test_report_only_without_weights_is_one_line(tmp_path, capsys):
    code = faces68.main(["--report-only", "--ship", str(tmp_path / "none.safetensors"), "--data", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not found" in err[0]


@pytest.mark.skipif(not recipe68.DEFAULT_SHIP.is_file(), reason="the bundled model is not built yet")
def test_bundled_weights_are_the_recipes_model():
    from realtime.models.weights import load_model, weights_info

    model = load_model(recipe68.DEFAULT_SHIP)
    assert model.config.num_points == 68 and model.config.layout == "ibug68"
    info = weights_info(recipe68.DEFAULT_SHIP)
    cfg = info["fit_config"]
    assert cfg["data"].startswith("300w:") and cfg["data"].endswith("?part=fit") and cfg["augment"] == "heavy"
    assert "non-commercial" in info["licence"] and info["track_min_confidence"] > 0


def test_bad_paths_are_one_line_errors(tmp_path, capsys):
    assert faces68.main(["--data", str(tmp_path / "no300w"), "--out", str(tmp_path / "run")]) == 2
    assert "300-W folder not found" in capsys.readouterr().err
    assert faces68.main(["--init", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "run")]) == 2
    assert "--init weights not found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_ship_now_without_a_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "300w").mkdir()
    code = faces68.main(["--ship-now", "--data", str(tmp_path / "300w"), "--out", str(tmp_path / "run"),
                         "--ship", str(tmp_path / "m.safetensors"), "--docs", str(tmp_path / "docs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--ship-now needs a run's checkpoint" in err[0]


def test_shipping_over_the_runs_init_keeps_a_copy_to_measure_it_against(tmp_path):
    init = tmp_path / "bundled.safetensors"
    init.write_bytes(b"previous weights")
    cfg = recipe68.recipe(tmp_path / "300w", tmp_path / "run", 3000, init)
    kept = faces68.keep_init(cfg, init)
    assert kept.init == str(tmp_path / "run" / "init.safetensors") and kept.out == cfg.out
    assert (tmp_path / "run" / "init.safetensors").read_bytes() == b"previous weights"
    init.write_bytes(b"shipped weights")  # a second --ship-now keeps the first copy: the run's real start
    assert faces68.keep_init(cfg, init).init == kept.init
    assert (tmp_path / "run" / "init.safetensors").read_bytes() == b"previous weights"
    assert faces68.keep_init(cfg, tmp_path / "elsewhere.safetensors") is cfg


@pytest.mark.parametrize("saved, rows", [((250, 400.0), 1), ((100, 10.0), 0)])
def test_a_chunk_stopped_by_a_signal_still_gets_its_progress_row(tmp_path, saved, rows):
    """SIGTERM or Ctrl-C in a --minutes chunk: the loop saved the updates it finished; the chunk's
    row covers them (none when the checkpoint holds nothing new), then the stop reaches the
    command line as usual (exit 130)."""
    (tmp_path / "300w").mkdir()
    reported = []
    with mock.patch.object(faces68, "run_or_resume", side_effect=KeyboardInterrupt), \
            mock.patch.object(faces68, "saved_progress", side_effect=[(100, 10.0), saved]), \
            mock.patch.object(faces68, "chunk_report", side_effect=lambda a, c, s: reported.append(s)):
        code = faces68.main(["--data", str(tmp_path / "300w"), "--out", str(tmp_path / "run"), "--init", "none",
                             "--minutes", "5", "--progress", str(tmp_path / "progress.md")])
    assert code == 130
    assert reported == [{"step": 250, "start_step": 100, "seconds": 400.0, "start_seconds": 10.0}][:rows]


def test_saved_progress_reads_the_runs_checkpoint(tmp_path):
    from train.engine import runs

    assert runs.saved_progress(tmp_path) == (0, 0.0)
    with mock.patch.object(runs, "load_checkpoint", return_value={"step": 7, "state": {"seconds": 12.5}}):
        (tmp_path / "last.pt").write_bytes(b"")
        assert runs.saved_progress(tmp_path) == (7, 12.5)


def test_run_or_resume_reads_the_checkpoint_only_when_not_handed_its_progress(tmp_path):
    from train.engine import runs

    cfg = recipe68.recipe(tmp_path / "300w", tmp_path / "run", 3000, None)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"")
    fitted = {"step": 3000, "seconds": 99.0}
    with mock.patch.object(runs, "fit", return_value=fitted) as fit, \
            mock.patch.object(runs, "load_checkpoint", return_value={"step": 1000, "state": {"seconds": 5.0}}) as load:
        assert runs.run_or_resume(cfg, start=(1000, 5.0)) == {**fitted, "start_step": 1000}
        assert load.call_count == 0 and fit.call_args.kwargs["resume"] is True
        assert runs.run_or_resume(cfg) == {**fitted, "start_step": 1000}
        assert load.call_count == 1
        assert runs.run_or_resume(cfg, start=(3000, 7.0)) == {"step": 3000, "start_step": 3000, "seconds": 7.0,
                                                              "skipped": True}
        assert fit.call_count == 2
