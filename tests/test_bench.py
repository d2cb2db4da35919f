"""``python -m realtime.bench --quick``: runs end to end and prints/writes its numbers (speed is
never asserted: it depends on the machine and its load)."""
from __future__ import annotations

import json

import pytest

from realtime import bench
from realtime.core.assets import SYNTH_5
from cli_errors import one_error_line

pytest.importorskip("av")
WEIGHTS = str(SYNTH_5)


def test_quick_bench_writes_json_markdown_and_plot(tmp_path, capsys):
    out = tmp_path / "b"
    code = bench.main(["--quick", "--weights", WEIGHTS, "--backends", "eager,channels_last", "--backend", "eager",
                       "--parts", "landmarks,pipeline,live", "-o", str(out)])
    assert code == 0
    results = json.loads((out / "bench.json").read_text())
    for name in ("eager", "channels_last"):
        rows = results["landmarks"][name]["batches"]
        assert set(rows) == {"1", "8"} and all(r["faces_per_s"] > 0 for r in rows.values())
    p = results["pipeline"]
    assert p["frames"] >= 60 and p["fps"] > 0 and p["stages_ms"]["landmarks_ms"]["n"] == p["frames"]
    live = results["live"]
    assert live["processed"] > 0 and live["processed"] + live["dropped"] <= live["decoded"] + 1
    assert live["latency_ms"]["p50"] > 0
    text = (out / "bench.md").read_text()
    assert "## a. Landmark network alone" in text and "## d. Live mode" in text
    assert "weights `assets/rcn_mtfl_synth.safetensors`" in text  # repository-relative in committed tables
    assert (out / "bench.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "[landmarks] eager" in printed and "[pipeline]" in printed and "[live]" in printed


def test_dlib_part_reports_a_5_point_model_as_unscorable(tmp_path):
    pytest.importorskip("dlib")
    out = tmp_path / "b"
    assert bench.main(["--quick", "--weights", WEIGHTS, "--backend", "eager", "--parts", "dlib", "-o", str(out)]) == 0
    d = json.loads((out / "bench.json").read_text())["dlib"]
    assert "68 points" in d["ours"]["skipped"] and d["dlib"]["fps"] > 0 and d["speed_ratio"] > 0


def test_preset_times_a_random_network_of_that_preset(tmp_path):
    out = tmp_path / "b"
    assert bench.main(["--quick", "--weights", WEIGHTS, "--preset", "rcnplus", "--backends", "eager",
                       "--parts", "landmarks", "-o", str(out)]) == 0
    results = json.loads((out / "bench.json").read_text())
    text = (out / "bench.md").read_text()
    assert results["landmark_model"] == "rcnplus" and "Network: `rcnplus`" in text
    assert "random `rcnplus` weights for part a (speed only)." in text
    assert "pipeline" not in results


def test_streams_part_times_n_copies_of_the_clip_at_once(tmp_path):
    out = tmp_path / "b"
    assert bench.main(["--quick", "--backend", "eager", "--parts", "streams", "--streams", "1,2", "--pool", "on",
                       "-o", str(out)]) == 0
    streams = json.loads((out / "bench.json").read_text())["streams"]
    assert streams["pool_landmarks"] is True and set(streams["runs"]) == {"1", "2"}
    two = streams["runs"]["2"]
    assert two["streams"] == 2 and two["frames"] >= 2 * 60 and two["fps"] > 0 and two["latency_ms"]["p50"] > 0
    assert "## f. Several streams at once" in (out / "bench.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--weights", "nope.safetensors"], "weights not found"),
    (["--parts", "landmarks,warp"], "unknown part"),
    (["--batches", "1,x"], "--batches"),
    (["--parts", "streams", "--streams", "0"], "--streams"),
])
def test_bad_arguments_are_one_line_errors(argv, message, tmp_path, capsys):
    assert bench.main([*argv, "-o", str(tmp_path / "b")]) == 2
    assert message in one_error_line(capsys)
