"""The Python API (``realtime.api``, ``from realtime import FaceLandmarker``): its doctests, its
inputs, its errors, and records equal to those of ``python -m realtime.video`` for the same frames."""
from __future__ import annotations

import doctest
import json
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

import realtime
import realtime.api
from realtime import FaceLandmarker, FramePacket, InputNotFoundError, UserError
from realtime.core.assets import ASTRONAUT_PTS, DEMO_CLIP, DEMO_PHOTO
from realtime.io.capture import VideoFileSource

av = pytest.importorskip("av")

cv2.setNumThreads(1)


@pytest.fixture(scope="module")
def landmarker() -> FaceLandmarker:
    return FaceLandmarker(backend="eager")


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "timings_ms"}


def test_the_doctests_run():
    pytest.importorskip("PIL")
    result = doctest.testmod(realtime.api, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 20 and result.failed == 0


def test_import_realtime_stays_cheap_and_the_api_loads_on_first_use():
    code = ("import sys, realtime; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert realtime.FaceLandmarker.__module__ == 'realtime.api'; assert 'torch' in sys.modules; "
            "assert 'FaceLandmarker' in dir(realtime)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        realtime.nope  # noqa: B018


def test_a_photo_from_a_path_an_rgb_or_bgr_array_and_grey(landmarker):
    faces = landmarker(DEMO_PHOTO)
    rgb = cv2.cvtColor(cv2.imread(str(DEMO_PHOTO)), cv2.COLOR_BGR2RGB)
    assert len(faces) == 1 and faces[0].track_id == 0 and faces[0].points.shape == (68, 2)
    for other in (landmarker(rgb), landmarker(np.ascontiguousarray(rgb[:, :, ::-1]), channels="bgr")):
        assert np.array_equal(other[0].points, faces[0].points) and np.array_equal(other[0].scores, faces[0].scores)
    swapped = landmarker(np.ascontiguousarray(rgb[:, :, ::-1]))  # BGR taken for RGB: found, but not the same
    assert len(swapped) == 1 and not np.array_equal(swapped[0].points, faces[0].points)
    grey = landmarker(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert len(grey) == 1 and np.abs(grey[0].points - faces[0].points).max() < 5
    again = landmarker(DEMO_PHOTO)  # a photo is a still: nothing carried over from the last call
    assert np.array_equal(again[0].points, faces[0].points) and again[0].track_id == 0


def test_the_photo_is_landmarked_to_within_a_few_percent_of_its_labels(landmarker):
    """The committed labels of the astronaut (``astronaut_68.pts``, 1-based): NME by the outer eye
    corners, as the model card measures it."""
    labels = np.array([line.split() for line in ASTRONAUT_PTS.read_text().splitlines()[3:71]], float) - 1
    points = landmarker(DEMO_PHOTO)[0].points
    nme = np.linalg.norm(points - labels, axis=1).mean() / np.linalg.norm(labels[36] - labels[45])
    assert nme < 0.05, nme
    face = landmarker(DEMO_PHOTO)[0].to_dict()
    assert face["points"] == np.round(points, 2).tolist() and set(face["pose"]) == {"yaw_deg", "pitch_deg", "roll_deg"}


def test_bad_input_and_options_raise_the_builtin_types(tmp_path, landmarker):
    assert issubclass(UserError, ValueError) and issubclass(InputNotFoundError, FileNotFoundError)
    assert issubclass(InputNotFoundError, UserError)
    with pytest.raises(FileNotFoundError, match="input not found"):
        landmarker(tmp_path / "missing.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read .*text.jpg as an image"):
        landmarker(tmp_path / "text.jpg")
    with pytest.raises(ValueError, match="channels must be one of rgb, bgr"):
        landmarker(np.zeros((8, 8, 3), np.uint8), channels="RGB")
    with pytest.raises(ValueError, match="expected an image path, a numpy array or a PIL image"):
        landmarker([[0, 0, 0]])
    with pytest.raises(ValueError, match="expected a grey, RGB or RGBA image"):
        landmarker(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(FileNotFoundError, match="weights not found"):
        FaceLandmarker(tmp_path / "none.safetensors")
    for options, message in [({"hfov": 0}, "hfov must be"), ({"focal_px": -1}, "focal_px must be"),
                             ({"min_confidence": 2}, "min_confidence must be"), ({"rate": 0}, "rate must be"),
                             ({"detector": "tiny"}, "unknown detector"), ({"pose_source": "imu"}, "unknown pose source"),
                             ({"backend": "warp"}, "backend")]:
        with pytest.raises(ValueError, match=message):
            FaceLandmarker(**options)


def test_track_gives_the_records_of_the_command_line_for_the_clip(tmp_path, landmarker):
    """Every frame of the bundled clip: the API's ``to_dict()`` equals the CLI's JSONL record
    (timings aside), with the same options (the landmark backend named on both: eager)."""
    from realtime.video import main

    out = tmp_path / "out.jsonl"
    assert main([str(DEMO_CLIP), "-o", str(tmp_path / "out.mp4"), "--landmarks", str(out), "--backend", "eager"]) == 0
    expected = [without_timings(r) for r in records(out)]
    got = [without_timings(packet.to_dict()) for packet in landmarker.track(DEMO_CLIP)]
    assert len(got) == len(expected) == 300 and got == expected
    assert {face["track_id"] for r in got for face in r["faces"]} == {0}  # one face, one id, all along


def test_track_over_a_folder_matches_the_command_line_and_skips_a_bad_still(tmp_path, landmarker, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = cv2.imread(str(DEMO_PHOTO))
    cv2.imwrite(str(folder / "a.png"), photo)
    (folder / "b.jpg").write_text("not an image")
    cv2.imwrite(str(folder / "c.png"), cv2.flip(photo, 1))
    from realtime.video import EXIT_SKIPPED, main

    out = tmp_path / "out.jsonl"
    assert main([str(folder), "-o", str(tmp_path / "out.mp4"), "--landmarks", str(out), "--backend", "eager"]) \
        == EXIT_SKIPPED
    with caplog.at_level("WARNING", logger="realtime.api"):
        packets = list(landmarker.track(folder))
    assert [without_timings(p.to_dict()) for p in packets] == [without_timings(r) for r in records(out)]
    assert [p.source for p in packets] == ["a.png", "b.jpg", "c.png"]
    assert packets[1].skipped.startswith("cannot read") and packets[1].faces == []
    assert "skipped b.jpg: cannot read" in caplog.text


def test_track_across_a_folder_of_frames_when_asked(tmp_path, landmarker):
    """``stills=False``: a folder's images are one video's frames, tracked (the box comes from the
    previous frame's points, not the detector); by default each image is detected afresh."""
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), cv2.imread(str(DEMO_PHOTO)))
    fresh = list(landmarker.track(tmp_path))
    tracked = list(landmarker.track(tmp_path, stills=False))
    assert all(p.faces[0].detection_score is not None for p in fresh)
    assert tracked[0].faces[0].detection_score is not None
    assert [p.faces[0].detection_score for p in tracked[1:]] == [None, None]
    assert {p.faces[0].track_id for p in tracked} == {0}


def test_a_live_source_runs_newest_frame_wins_and_is_released_when_the_loop_ends(landmarker, monkeypatch):
    """A camera is a live source (``LivePipeline``); played as live, the clip stands in for one.
    Leaving the loop early stops and joins the pipeline's threads and closes the source."""
    opened = []

    def live_clip(spec, **_):
        opened.append(VideoFileSource(DEMO_CLIP, as_live=True))
        return opened[-1]

    monkeypatch.setattr(realtime.api, "open_source", live_clip)
    stream = landmarker.track(0)
    packets: list[FramePacket] = []
    for packet in stream:
        packets.append(packet)
        if len(packets) == 10:
            break
    stream.close()
    ids = [p.frame_id for p in packets]
    assert ids == sorted(ids) and len(set(ids)) == 10
    # live, the detector runs beside the frames once a face is tracked (realtime.pipeline.detect_ahead);
    # the first frame, with nothing tracked yet, detects in its own frame
    assert all(len(p.faces) == 1 for p in packets)
    assert opened[0].container is None or opened[0].stop_event.is_set()
    assert not [t for t in threading.enumerate() if t.name in ("capture", "worker", "detector")]
