"""Output stage alone: H.264 writer round trip, audio copy, atomic files, landmarks files, overlay."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

av = pytest.importorskip("av")

from realtime.core.packet import FaceResult, FramePacket, HeadPose
from realtime.io.video_out import LandmarksWriter, VideoWriter, draw_overlay, fit_into, pad_even
from test_pipeline_capture import make_clip

cv2.setNumThreads(1)


def packet(i: int, faces: int = 1, width: int = 64, height: int = 48) -> FramePacket:
    image = np.full((height, width, 3), 30, np.uint8)
    found = [FaceResult(7, [10, 10, 40, 40], [[20, 20], [30, 20], [25, 28], [20, 34], [30, 34]],
                        [0.9, 0.8, 0.7, 0.6, 0.5], pose=HeadPose(10.0, -5.0, 3.0))] * faces
    return FramePacket(i, i / 25, image, found, {"process_ms": 1.5})


def decoded(path):
    with av.open(str(path)) as container:
        frames = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
        kinds = sorted(s.type for s in container.streams)
    return frames, kinds


def test_h264_round_trip_keeps_every_frame_its_time_and_pads_odd_sizes(tmp_path):
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, rate_hz=25)
    times = [0.0, 0.04, 0.08, 0.2, 0.24]  # a gap, as after dropped frames
    for i, t in enumerate(times):
        writer.write(np.full((121, 161, 3), 40 * i, np.uint8), t)
    assert not out.exists()  # written beside it, renamed on close
    writer.close()
    frames, kinds = decoded(out)
    assert kinds == ["video"] and len(frames) == len(times)
    np.testing.assert_allclose([t for t, _ in frames], times, atol=1e-3)
    assert frames[0][1].shape == (122, 162, 3)
    assert abs(int(frames[3][1].mean()) - 120) <= 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_colours_survive_the_yuv_conversion(tmp_path):
    """Saturated blocks come back with their colour: U and V in their planes, limited range as
    decoders assume (the writer converts to yuv420p with OpenCV before the encoder)."""
    colours = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (240, 240, 240), (16, 16, 16), (200, 180, 20)]
    image = np.zeros((96, 32 * len(colours), 3), np.uint8)
    for i, rgb in enumerate(colours):
        image[:, 32 * i:32 * (i + 1)] = rgb
    out = tmp_path / "colours.mp4"
    writer = VideoWriter(out)
    writer.write(image, 0.0)
    writer.close()
    (_, back), = decoded(out)[0]
    for i, rgb in enumerate(colours):  # block centres, away from chroma edges
        np.testing.assert_allclose(back[40:56, 32 * i + 8:32 * i + 24].reshape(-1, 3).mean(0), rgb, atol=6)


def test_tiny_frames_and_audio_copied_from_the_input(tmp_path):
    source = make_clip(tmp_path / "in.mp4", frames=10, width=32, height=24, audio=True)
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, audio_from=source)
    for i in range(10):
        writer.write(np.zeros((1, 1, 3), np.uint8), i / 25)
    writer.close()
    frames, kinds = decoded(out)
    assert kinds == ["audio", "video"] and len(frames) == 10 and frames[0][1].shape == (2, 2, 3)


def test_abort_leaves_nothing(tmp_path):
    writer = VideoWriter(tmp_path / "out.mp4")
    writer.write(np.zeros((16, 16, 3), np.uint8), 0.0)
    writer.abort()
    landmarks = LandmarksWriter(tmp_path / "out.jsonl")
    landmarks.write(packet(0))
    landmarks.abort()
    assert list(tmp_path.iterdir()) == []


def test_jsonl_is_complete_so_far_while_written_then_renamed(tmp_path):
    out = tmp_path / "marks.jsonl"
    writer = LandmarksWriter(out)
    for i in range(3):
        writer.write(packet(i, faces=i % 2))
    partial = [json.loads(line) for line in (tmp_path / "marks.jsonl.partial").read_text().splitlines()]
    assert [r["frame_id"] for r in partial] == [0, 1, 2] and not out.exists()
    writer.close()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["faces"]) for r in records] == [0, 1, 0]
    assert records[1]["faces"][0]["pose"]["yaw_deg"] == 10.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marks.jsonl"]


def test_csv_has_a_header_and_a_row_per_frame_even_without_faces(tmp_path):
    out = tmp_path / "marks.csv"
    writer = LandmarksWriter(out, "csv", num_points=5)
    for i in range(3):
        writer.write(packet(i, faces=i % 2))
    writer.close()
    rows = list(csv.reader(out.open()))
    assert rows[0][:8] == ["frame_id", "t_capture", "source", "width", "height", "rotation_deg", "mirrored",
                           "track_id"] and len(rows[0]) == 15 + 15
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]


def test_overlay_draws_on_a_copy():
    p = packet(0)
    drawn = draw_overlay(p.image, p)
    assert (p.image == 30).all() and (drawn != 30).any()
    assert (draw_overlay(p.image, packet(0, faces=0)) == p.image).all()
    assert (draw_overlay(p.image, p, draw_points=False, draw_boxes=False, draw_ids=False, draw_pose=False)
            == p.image).all()


def test_even_padding_and_letterbox():
    assert pad_even(np.zeros((3, 5, 3), np.uint8)).shape == (4, 6, 3)
    boxed = fit_into(np.full((10, 40, 3), 255, np.uint8), 20, 20)
    assert boxed.shape == (20, 20, 3) and boxed[0, 0].sum() == 0 and boxed[10, 10].sum() > 0
