"""Video as the camera saw it: display rotations read, applied and written back (docs/rotation.md).

Small clips are generated here with PyAV, which writes the MP4 display matrix the way phones do
(the pixels stored turned, the turn beside them). OpenCV's ``VideoCapture``, which applies the
display rotation by default (``CAP_PROP_ORIENTATION_AUTO``), is the independent reference for what
a player shows.
"""
from __future__ import annotations

import importlib.util
import itertools
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from conftest import write_clip
from realtime.core.assets import DEMO_TRUTH
from realtime.geometry.crops import transform_points
from realtime.geometry.orientation import Orientation, turn_image
from realtime.core.errors import UserError
from realtime.io.capture import VideoFileSource, open_source
from realtime.io.video_out import VideoWriter
from realtime.pipeline.cliptruth import ClipTruth, score
from realtime.video import main as video_main

cv2.setNumThreads(1)
torch.set_num_threads(1)  # as the other pipeline tests: two threads on a shared 2-core machine stall
REPO = Path(__file__).resolve().parents[1]
ALL = [Orientation(q, m) for q in range(4) for m in (False, True)]
FRAMES = 12  # of the bundled clip, for the end-to-end runs


def pattern(width: int = 64, height: int = 48) -> np.ndarray:
    """An RGB picture that looks different under each of the eight turns and mirrors: coloured
    blocks in three corners, 8 px wide so that H.264 keeps them."""
    image = np.full((height, width, 3), 30, np.uint8)
    image[:16, :16] = (250, 30, 30)
    image[:16, -16:] = (30, 250, 30)
    image[-16:, :16] = (30, 30, 250)
    return image


def test_orientation_maps_pixels_and_points_alike_and_round_trips_the_display_matrix():
    image = np.arange(7 * 12 * 3, dtype=np.uint8).reshape(7, 12, 3)
    ys, xs = np.mgrid[0:7, 0:12]
    for o in ALL:
        shown = o.apply(image)
        assert shown.shape[:2] == o.shown_size(12, 7)[::-1]
        at = np.round(transform_points(np.stack([xs.ravel(), ys.ravel()], 1), o.matrix(12, 7))).astype(int)
        assert np.array_equal(shown[at[:, 1], at[:, 0]], image.reshape(-1, 3)), o
        assert Orientation.from_display_matrix(o.display_matrix()) == o
        assert np.array_equal(o.inverse().apply(shown), image)
    for a, b in itertools.product(ALL, repeat=2):
        assert np.array_equal(b.apply(a.apply(image)), a.then(b).apply(image)), (a, b)
    assert np.array_equal(turn_image(image, 1), np.rot90(image, 1))  # counter-clockwise, as displayed
    assert Orientation.clockwise(90) == Orientation(3) and Orientation.clockwise(270).rotation_deg == 90


def test_a_display_matrix_at_a_free_angle_is_taken_to_its_nearest_quarter_turn(caplog):
    c, s = (round(v * 65536) for v in (np.cos(np.radians(80)), np.sin(np.radians(80))))
    with caplog.at_level(logging.WARNING):
        assert Orientation.from_display_matrix([c, -s, 0, s, c, 0, 0, 0, 1 << 30]) == Orientation(1)
    assert "not a quarter turn" in caplog.text
    assert Orientation.from_display_matrix([0] * 9) == Orientation()  # a degenerate matrix: none


@pytest.mark.parametrize("shown", ALL, ids=str)
def test_files_are_read_as_players_show_them_and_as_stored_on_request(tmp_path, shown):
    """Each of the eight display matrices PyAV can write: frames come out as shown (OpenCV agrees
    for the four turns; it ignores mirrors), ``keep_stored`` gives the stored pixels, and both
    say what the file asks for."""
    upright = pattern()
    clip = write_clip(tmp_path / "c.mp4", [shown.inverse().apply(upright)] * 3, display=shown, crf=10)
    with VideoFileSource(clip) as source:
        frames = list(source)
    assert source.display == shown and len(frames) == 3
    assert all(f.orientation == shown for f in frames)
    assert frames[0].image.shape == upright.shape and np.abs(frames[0].image.astype(int) - upright).mean() < 3
    if not shown.mirrored:
        ok, seen = cv2.VideoCapture(str(clip)).read()
        assert ok and np.abs(seen[:, :, ::-1].astype(int) - frames[0].image).mean() < 1
    with open_source(str(clip), keep_stored=True) as source:
        stored = list(source)
    assert source.display == shown and stored[0].orientation == Orientation()
    assert np.abs(stored[0].image.astype(int) - shown.inverse().apply(upright)).mean() < 3


@pytest.fixture(scope="module")
def phone_runs(tmp_path_factory, clip_frames):
    """``realtime.video`` on the first frames of the bundled clip stored as phones store them: as
    is, upside down with a 180-degree display rotation, and sideways with a -90 (and a mirrored
    90) one, each shown upright; and the sideways one again with --keep-stored-orientation.
    -> {name: (display orientation, records, annotated video path)}."""
    folder = tmp_path_factory.mktemp("phone")
    frames = clip_frames(*range(FRAMES))
    cases = {"plain": Orientation(), "r180": Orientation(2), "r-90": Orientation(3), "mirror90": Orientation(1, True)}
    runs = {}
    for name, shown in [*cases.items(), ("r-90 stored", cases["r-90"])]:
        clip = folder / f"{name.split()[0]}.mp4"
        if not clip.exists():
            write_clip(clip, [shown.inverse().apply(f) for f in frames], display=None if shown.is_identity else shown, crf=12)
        out, marks = (folder / "out" / f"{name.replace(' ', '_')}{suffix}" for suffix in (".mp4", ".jsonl"))
        extra = ["--keep-stored-orientation"] if name.endswith("stored") else []
        assert video_main([str(clip), "-o", str(out), "--landmarks", str(marks), *extra]) == 0
        records = [json.loads(line) for line in marks.read_text().splitlines()]
        runs[name] = (shown, records, out)
    return runs


def nme(records: list[dict], to_shown: np.ndarray | None = None) -> float:
    """The 68-point NME (``cliptruth.score``, %) of each record's first face against the clip's truth;
    ``to_shown`` maps stored-frame points into the shown frame first."""
    truth = ClipTruth.load(DEMO_TRUTH)
    truth = ClipTruth(truth.points[:len(records)], truth.still, truth.layout)
    points = [np.array(r["faces"][0]["points"], np.float64) if r["faces"] else None for r in records]
    if to_shown is not None:
        points = [None if p is None else transform_points(p, to_shown) for p in points]
    return score(points, truth)["nme_pct"]


def first_frame(path) -> tuple[np.ndarray, int]:
    """The first frame of a video as stored, and the rotation its display matrix asks for."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24"), frame.rotation


@pytest.mark.parametrize("name", ["r180", "r-90", "mirror90"])
def test_phone_video_is_processed_and_written_upright(phone_runs, name):
    """Records in the shown frame (its size and turn in each), landmarks as good as on the plain
    clip (the issue's target: NME within 1.1x), the annotated video upright with no rotation tag."""
    shown, records, out = phone_runs[name]
    _, plain_records, plain_out = phone_runs["plain"]
    assert len(records) == FRAMES and all(len(r["faces"]) == 1 for r in records)
    assert {(r["width"], r["height"], r["rotation_deg"], r["mirrored"]) for r in records} == \
        {(640, 480, shown.rotation_deg, shown.mirrored)}
    assert nme(records) <= 1.1 * nme(plain_records), (nme(records), nme(plain_records))
    written, rotation = first_frame(out)
    reference, _ = first_frame(plain_out)
    assert rotation == 0 and written.shape == reference.shape == (480, 640, 3)
    assert np.abs(written.astype(int) - reference).mean() < 4  # the same upright picture, overlay and all
    assert np.abs(written.astype(int) - turn_image(reference, 2)).mean() > 20  # (which an upside-down one is not)


def test_keep_stored_orientation_keeps_pixels_records_and_the_rotation_tag(phone_runs):
    """--keep-stored-orientation: records in the stored (portrait) frame, the annotated video in
    the stored pixels carrying the input's display rotation, so it still plays upright; its
    points, turned by that rotation, land on the truth about as well."""
    shown, records, out = phone_runs["r-90 stored"]
    _, plain_records, _ = phone_runs["plain"]
    assert {(r["width"], r["height"], r["rotation_deg"], r["mirrored"]) for r in records} == {(480, 640, 0, False)}
    written, rotation = first_frame(out)
    assert written.shape == (640, 480, 3) and rotation == -90
    assert nme(records, to_shown=shown.matrix(480, 640)) <= 1.2 * nme(plain_records)


def test_a_pyav_that_cannot_write_a_display_matrix_is_one_clear_error(tmp_path, monkeypatch):
    """PyAV's lower bound predates Stream.set_display_matrix: asked to tag its output (only
    --keep-stored-orientation on a turned input does), the writer says so before writing anything."""
    monkeypatch.setattr(av.video.stream, "VideoStream", type("OldVideoStream", (), {}))
    with pytest.raises(UserError, match="set_display_matrix"):
        VideoWriter(tmp_path / "out.mp4", display=Orientation(1))
    assert list(tmp_path.iterdir()) == []
    VideoWriter(tmp_path / "upright.mp4").abort()  # an upright output needs no tag


def test_the_rotation_check_tool_runs_every_case(tmp_path):
    """``tools/rotation_check.py`` (the numbers in docs/rotation.md) on the first frames: every case
    scored, the metadata cases' annotated videos upright, the upside-down picture lost without the
    turned search and found with it."""
    spec = importlib.util.spec_from_file_location("rotation_check", REPO / "tools" / "rotation_check.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--frames", "8", "--out", str(tmp_path / "clips"), "--json", str(tmp_path / "r.json")]) == 0
    cases = json.loads((tmp_path / "r.json").read_text())["cases"]
    assert set(cases) == {*tool.CASES, "pixels_90_no_search", "pixels_180_no_search", "pixels_270_no_search"}
    assert all(c["found"] == 1.0 for c in cases.values())
    for name in ("meta_180", "meta_-90"):
        assert cases[name]["out_size"] == [640, 480] and cases[name]["out_rotation"] == 0
        assert cases[name]["nme7_ratio"] <= 1.1
    assert cases["pixels_180"]["nme7_ratio"] <= 1.2 < cases["pixels_180_no_search"]["nme7_ratio"]
