"""``python -m train.tools.score_detector``: the numbers behind docs/detection.md, end to end on the bundled clip
and the 300-W fixture tree (synthetic faces in the exact 300-W file formats)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cli_errors import one_error_line
from train.tools.score_detector import count_summary, duplicate_pairs, main

FIXTURE_300W = Path(__file__).parent / "fixtures" / "300w"


def test_duplicate_pairs_counts_one_face_found_twice():
    boxes = np.array([[0, 0, 40, 40], [4, 2, 44, 42], [100, 100, 140, 140]], np.float32)
    assert duplicate_pairs(boxes) == 1
    assert duplicate_pairs(boxes[[0, 2]]) == 0
    summary = count_summary([0, 1, 1, 2], duplicates=1)
    assert summary["histogram"] == [1, 2, 1] and summary["at_least"] == {1: 0.75, 2: 0.25}


def test_the_cli_scores_the_clip_and_the_crops_per_threshold(tmp_path, capsys):
    from realtime.core.assets import DEMO_CLIP

    out = tmp_path / "scores.json"
    assert main(["--detector", "short", "--thresholds", "0.5,0.9999", "--clip", str(DEMO_CLIP),
                 "--faces300w", str(FIXTURE_300W), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["detection"]
    assert [r["threshold"] for r in rows] == [0.5, 0.9999]
    clip = rows[0]["clips"][str(DEMO_CLIP)]
    assert sum(clip["histogram"]) == 300  # one count per frame
    assert clip["at_least"]["1"] >= 0.99  # the astronaut is found in (nearly) every frame at 0.5
    assert rows[1]["clips"][str(DEMO_CLIP)]["at_least"].get("1", 0.0) < clip["at_least"]["1"]  # a near-1 threshold finds less
    crops = rows[0]["faces300w"]["as_is"]
    assert crops["faces"] >= 2 and 0 <= crops["found"] <= crops["faces"]
    assert "threshold 0.50" in capsys.readouterr().out


def test_bad_values_are_one_line_errors(tmp_path, capsys):
    for argv in (["--thresholds", "1.5"], ["--nms-iou", "0"], ["--clip", str(tmp_path / "nope.mp4")],
                 ["--json", str(tmp_path / "x.txt")], ["--detector", "huge"]):
        assert main([*argv, "--faces300w", "none"]) == 2, argv
        one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []
