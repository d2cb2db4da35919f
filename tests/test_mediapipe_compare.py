"""The MediaPipe comparator: the shared-point mapping, the bench's part e (skipped with its reason
without mediapipe, run when it is installed) and ``python -m train.compare`` on 300-W faces."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from realtime import bench
from realtime.compare import mediapipe_mesh as mpm
from realtime.core.assets import DEMO_TRUTH
from train import compare
from cli_errors import one_error_line

needs_mediapipe = pytest.mark.skipif(mpm.missing_reason() is not None, reason=str(mpm.missing_reason()))


def test_shared_points_are_the_documented_pairs_and_score_zero_on_the_truth():
    assert list(zip(mpm.IBUG_INDICES, mpm.MESH_INDICES)) == [(36, 33), (39, 133), (42, 362), (45, 263),
                                                              (48, 61), (54, 291), (30, 4)]
    for i, m, _ in mpm.SHARED_POINTS:
        assert f"{i} -> {m} " in mpm.__doc__  # the docstring's table says the same
    truth = np.random.default_rng(0).uniform(0, 100, (68, 2))
    assert mpm.nme7(mpm.shared_from_ibug(truth), truth) == 0.0
    moved = mpm.shared_from_ibug(truth) + (3.0, 4.0)  # 5 px off everywhere
    iod = np.linalg.norm(truth[36] - truth[45])
    assert mpm.nme7(moved, truth) == pytest.approx(5.0 / iod)
    s = mpm.score7([moved, None], np.stack([truth, truth]))
    assert s["found"] == 0.5 and s["nme_pct"] == pytest.approx(500.0 / iod)


def _hide_mediapipe(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real(name, *a))


def test_bench_part_skips_with_the_reason_without_mediapipe(tmp_path, monkeypatch, capsys):
    pytest.importorskip("av")
    _hide_mediapipe(monkeypatch)
    out = tmp_path / "b"
    assert bench.main(["--quick", "--backend", "eager", "--parts", "mediapipe", "-o", str(out)]) == 0
    m = json.loads((out / "bench.json").read_text())["mediapipe"]
    assert m == {"skipped": f"mediapipe is not installed ({mpm.INSTALL})"}
    assert "pip install --no-deps mediapipe==0.10.21" in m["skipped"]
    assert f"Skipped: {m['skipped']}." in (out / "bench.md").read_text()
    assert "[mediapipe] skipped: mediapipe is not installed" in capsys.readouterr().out


@needs_mediapipe
def test_bench_part_runs_mediapipe_beside_ours(tmp_path):
    pytest.importorskip("av")
    out = tmp_path / "b"
    assert bench.main(["--quick", "--backend", "eager", "--parts", "mediapipe", "-o", str(out)]) == 0
    m = json.loads((out / "bench.json").read_text())["mediapipe"]
    assert m["mediapipe"]["fps"] > 0 and m["mediapipe"]["found"] > 0.9 and m["mediapipe"]["nme_pct"] < 10
    assert m["ours"]["nme_pct"] < 10 and m["speed_ratio"] > 0 and m["settings"]["static_image_mode"] is False
    assert m["points"]["mesh468"] == mpm.MESH_INDICES.tolist()
    assert "## e. Against MediaPipe" in (out / "bench.md").read_text()


def _grey_faces(folder: Path, count: int) -> str:
    """``count`` plain grey pictures labelled with the bundled clip's first true face: no detector
    finds a face there, the true box is still defined."""
    import cv2

    truth = np.array(json.loads(DEMO_TRUTH.read_text())["frames"][0]["points"])
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"grey_{i}.png"), np.full((480, 640, 3), 128, np.uint8))
        (folder / f"grey_{i}.pts").write_text("version: 1\nn_points: 68\n{\n" + "".join(
            f"{x + 1:.3f} {y + 1:.3f}\n" for x, y in truth) + "}\n")
    return f"folder:{folder}?layout=ibug68"


def test_compare_counts_faces_not_found_and_skips_mediapipe_without_it(tmp_path, monkeypatch):
    _hide_mediapipe(monkeypatch)
    out = tmp_path / "c"
    data = _grey_faces(tmp_path / "grey", 2)
    assert compare.main(["--data", data, "-o", str(out)]) == 0
    doc = json.loads((out / "compare.json").read_text())
    s = doc["summary"]["systems"]
    assert s["mediapipe"] == {"skipped": f"mediapipe is not installed ({mpm.INSTALL})"}
    assert s["ours"]["faces"] == doc["summary"]["faces"] == 2 and s["ours"]["not_found"] == 2
    assert s["ours_true_box"]["not_found"] == 0  # no detector there
    assert "| ours (BlazeFace + landmarks) |" in (out / "compare.md").read_text()


@needs_mediapipe
def test_compare_on_300w_faces(tmp_path, shared_300w):
    out = tmp_path / "c"
    assert compare.main(["--data", f"folder:{shared_300w}?layout=ibug68", "--limit", "4", "-o", str(out)]) == 0
    s = json.loads((out / "compare.json").read_text())["summary"]["systems"]
    for name in ("ours", "mediapipe", "ours_true_box"):
        assert s[name]["faces"] == 4 and s[name]["not_found"] <= 1 and s[name]["nme_pct"] < 15


@pytest.mark.parametrize("argv, message", [
    (["--weights", "nope.safetensors"], "weights not found"),
    (["--data", "folder:/no/such/dir?layout=ibug68"], "not found"),
    (["--limit", "0"], "--limit"),
])
def test_compare_bad_arguments_are_one_line_errors(argv, message, tmp_path, capsys):
    assert compare.main([*argv, "-o", str(tmp_path / "c")]) == 2
    assert message in one_error_line(capsys)
