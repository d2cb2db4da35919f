"""Clip scoring (``realtime/clipscore.py``): NME and still-segment jitter against the clip's truth."""
from __future__ import annotations

import json

import numpy as np
import pytest

from realtime import clipscore
from realtime.core.assets import DEMO_TRUTH as TRUTH, SYNTH_5
from realtime.core.errors import UserError


def make_truth(n: int = 40, still: tuple[int, int] = (0, 20)) -> clipscore.ClipTruth:
    rng = np.random.default_rng(0)
    base = rng.uniform(100, 200, (68, 2))
    base[36], base[45] = (120, 150), (180, 150)  # outer eye corners 60 px apart
    drift = np.zeros((n, 1, 2))
    drift[still[1]:, 0, 0] = np.arange(n - still[1]) * 2.0  # moves after the still segment
    return clipscore.ClipTruth(base[None] + drift, still, "ibug68")


def test_perfect_predictions_score_zero():
    truth = make_truth()
    s = clipscore.score(list(truth.points), truth)
    assert s["found"] == 1.0 and s["nme_pct"] == 0.0 and s["jitter_pct"] == pytest.approx(0.0, abs=1e-9)


def test_offset_is_nme_not_jitter_and_noise_is_jitter():
    truth = make_truth()
    shifted = [p + (3.0, 0.0) for p in truth.points]  # 3 px of 60 px = 5%
    s = clipscore.score(shifted, truth)
    assert s["nme_pct"] == pytest.approx(5.0) and s["jitter_pct"] == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(1)
    noisy = [p + rng.normal(0, 0.6, p.shape) for p in truth.points]  # per-axis 0.6 px: RMS 0.85 px
    s = clipscore.score(noisy, truth)
    assert s["jitter_pct"] == pytest.approx(100 * 0.6 * np.sqrt(2) / 60, rel=0.1)


def test_missed_frames_count_against_found_only():
    truth = make_truth()
    preds = list(truth.points)
    preds[5] = preds[30] = None
    s = clipscore.score(preds, truth)
    assert s["found"] == pytest.approx(38 / 40) and s["nme_pct"] == 0.0 and s["still_frames"] == 19


def test_nearest_face_picks_the_true_one():
    truth = make_truth().points[0]
    other = truth + 300.0
    assert clipscore.nearest_face([other, truth + 1.0], truth) is not other
    assert clipscore.nearest_face([], truth) is None


def test_frame_count_mismatch_is_an_error():
    truth = make_truth()
    with pytest.raises(UserError, match="40"):
        clipscore.score(list(truth.points)[:-1], truth)


def test_bundled_truth_loads():
    truth = clipscore.ClipTruth.load(TRUTH)
    assert truth.points.shape == (300, 68, 2) and truth.still == (0, 60) and truth.layout == "ibug68"


def test_bad_truth_and_5_point_model_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"frames": []}))
    assert clipscore.main(["--truth", str(bad)]) == 2
    assert clipscore.main(["--clip", str(tmp_path / "none.mp4")]) == 2
    assert clipscore.main(["--weights", str(SYNTH_5)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert "not a clip truth" in lines[0] and "not found" in lines[1] and "68" in lines[2]
