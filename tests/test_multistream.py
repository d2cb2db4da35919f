"""Several inputs at once (``realtime.pipeline.runners.run_streams``, ``python -m realtime.video A B -o DIR``):
each stream keeps its own tracks and filters, the model calls are pooled across streams, and on a
CPU every record equals the one a single-input run writes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from realtime.core.assets import LANDMARKS_68
from realtime.io.capture import open_source
from realtime.core.packet import packet_to_json
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.pooling import process_together
from realtime.pipeline.processor import FrameProcessor
from realtime.pipeline.runners import run_file, run_streams
from realtime.video import main
from test_pipeline_capture import make_clip
from conftest import write_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory, clip_frames):
    """Two real-face clips that differ: 24 frames of the bundled clip, and 24 later frames mirrored."""
    folder = tmp_path_factory.mktemp("clips")
    a = write_clip(folder / "near.mp4", clip_frames(*range(24)))
    b = write_clip(folder / "far.mp4", [f[:, ::-1].copy() for f in clip_frames(*range(150, 174))])
    return a, b


def records(lines: list[str]) -> list[dict]:
    """The records without their timings (wall-clock measurements, different in every run)."""
    return [{k: v for k, v in json.loads(line).items() if k != "timings_ms"} for line in lines]


def shared_processors(n: int) -> list[FrameProcessor]:
    config = PipelineConfig(Path(LANDMARKS_68))
    first = FrameProcessor.from_config(config)
    return [first] + [FrameProcessor.from_config(config, first.landmarker, first.detector) for _ in range(n - 1)]


def test_cli_several_inputs_write_what_single_runs_write(tmp_path, clips):
    for clip in clips:
        assert main([str(clip), "-o", str(tmp_path / "one" / f"{clip.stem}.mp4"),
                     "--landmarks", str(tmp_path / "one" / f"{clip.stem}.jsonl")]) == 0
    assert main([*map(str, clips), "-o", str(tmp_path / "many")]) == 0
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["far.jsonl", "far.mp4", "near.jsonl", "near.mp4"]
    for clip in clips:
        single = records((tmp_path / "one" / f"{clip.stem}.jsonl").read_text().splitlines())
        together = records((tmp_path / "many" / f"{clip.stem}.jsonl").read_text().splitlines())
        assert len(single) == 24 and any(r["faces"] for r in single)
        assert together == single


def test_streams_of_different_lengths_and_kinds_each_get_every_frame(tmp_path, clips, clip_frames):
    import cv2

    folder = tmp_path / "stills"
    folder.mkdir()
    for i, frame in enumerate(clip_frames(0, 40, 80)):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    short = make_clip(tmp_path / "short.mp4", frames=5)
    assert main([str(clips[0]), str(folder), str(short), "-o", str(tmp_path / "out"), "--csv"]) == 0
    rows = {name: (tmp_path / "out" / f"{name}.csv").read_text().splitlines() for name in ("near", "stills", "short")}
    assert len({r.split(",")[0] for r in rows["near"][1:]}) == 24
    assert [r.split(",")[2] for r in rows["stills"][1:]] == ["0.png", "1.png", "2.png"]  # each still names its file
    assert len(rows["short"]) == 1 + 5


def test_one_detector_call_and_one_landmark_call_per_step_when_batched(clips):
    procs = shared_processors(2)
    landmarker, detector = procs[0].landmarker, procs[0].detector
    calls = {"detect": [], "landmarks": []}
    batch, detect_batch = landmarker.batch, detector.detect_batch
    landmarker.batch = lambda frames: calls["landmarks"].append(len(frames)) or batch(frames)
    detector.detect_batch = lambda images: calls["detect"].append(len(images)) or detect_batch(images)
    sources = [iter(open_source(str(c))) for c in clips]
    pairs = list(zip(*sources))[:6]
    single = shared_processors(2)
    for frames in pairs:
        before = {k: len(v) for k, v in calls.items()}
        turned = sum(p.turned_search.passes for p in procs)
        packets = process_together(procs, frames, batch_landmarks=True)
        # one batch for the upright passes, one more for the turned ones (faces at any roll) when any ran
        assert len(calls["detect"]) - before["detect"] <= 1 + (sum(p.turned_search.passes for p in procs) > turned)
        assert len(calls["landmarks"]) - before["landmarks"] in (1, 2)  # the second: refined crops of new faces
        for proc, frame, packet in zip(single, frames, packets):
            alone = proc(frame)
            assert [f.track_id for f in alone.faces] == [f.track_id for f in packet.faces]
            for a, b in zip(alone.faces, packet.faces):  # the batch may move points by ~1e-4 px
                assert np.abs(a.points - b.points).max() < 0.05
    assert calls["detect"][0] == 2 and max(calls["landmarks"]) == 2  # both streams in one call


def test_run_streams_api_matches_run_file_and_keeps_streams_apart(clips):
    alone = []
    for clip in clips:
        out: list[str] = []
        run_file(open_source(str(clip)), shared_processors(1)[0], lambda p: out.append(packet_to_json(p)))
        alone.append(records(out))
    together: list[list[str]] = [[], []]
    ended = []
    stats = run_streams([open_source(str(c)) for c in clips], shared_processors(2),
                        lambda i, p: together[i].append(packet_to_json(p)), lambda i, e: ended.append((i, e)))
    assert [records(t) for t in together] == alone
    assert sorted(ended) == [(0, None), (1, None)] and [s.processed for s in stats] == [24, 24]


def test_a_truncated_input_leaves_no_output_of_its_own_and_the_others_finish(tmp_path, clips, capsys):
    full = make_clip(tmp_path / "full.mp4", frames=24, faststart=True)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    code = main([str(clips[0]), str(bad), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: ") and sum(line.startswith("error") for line in err) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["near.jsonl", "near.mp4"]
    assert len((tmp_path / "out" / "near.jsonl").read_text().splitlines()) == 24


@pytest.mark.parametrize("extra, message", [
    (["--landmarks", "x.jsonl"], "--landmarks names one file"),
    (["-o", "taken.txt"], "is a file, not a folder"),
    ("same name", "would both write near.mp4"),
])
def test_bad_several_input_commands_are_one_line_errors(tmp_path, clips, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken.txt").write_text("mine\n")
    inputs = [str(c) for c in clips]
    if extra == "same name":
        (tmp_path / "other").mkdir()
        inputs.append(str(write_clip(tmp_path / "other" / "near.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2)))
        extra = []
    argv = [*inputs, *extra] if "-o" in extra else [*inputs, "-o", "out", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert (tmp_path / "taken.txt").read_text() == "mine\n" and not (tmp_path / "out").exists()


def test_cli_several_inputs_with_an_unreadable_still_skip_it_and_finish_the_rest(tmp_path, clips, capsys):
    """A folder among several inputs whose one file is not an image: its record says so, the rest
    of every input is written, and the exit status says that something was skipped (3)."""
    folder = tmp_path / "stills"
    folder.mkdir()
    cv2 = pytest.importorskip("cv2")
    cv2.imwrite(str(folder / "a.png"), np.full((48, 64, 3), 90, np.uint8))
    (folder / "b.jpg").write_text("not an image")
    assert main([str(clips[0]), str(folder), "-o", str(tmp_path / "many")]) == 3
    stills = records((tmp_path / "many" / "stills.jsonl").read_text().splitlines())
    assert [r["source"] for r in stills] == ["a.png", "b.jpg"] and "skipped" in stills[1] and "skipped" not in stills[0]
    assert len((tmp_path / "many" / "near.jsonl").read_text().splitlines()) == 24
    assert "warning: skipped b.jpg: cannot read" in capsys.readouterr().err
