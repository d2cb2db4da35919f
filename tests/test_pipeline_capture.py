"""Capture stage alone (no threads): video files through PyAV, images, folders, cameras, bad inputs.

``make_clip`` also serves the other ``test_pipeline_*`` files: a tiny H.264 clip encoded in
tmp_path with a moving face (the real photo from ../shared/data/faces when present, else a drawn
pattern with no face).
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

av = pytest.importorskip("av")

from realtime.io.capture import (CameraSource, CapturedFrame, FolderSource, ImageSource, VideoFileSource,
                              open_source, to_rgb)
from realtime.core.errors import UserError
from conftest import FACE_PHOTO

cv2.setNumThreads(1)


def clip_frame(i: int, width: int, height: int) -> np.ndarray:
    """Frame ``i`` of the test clip: a grey background, a moving bar, and the face photo (if
    available) scaled to 80% of the width, swaying sideways."""
    image = np.full((height, width, 3), 40, np.uint8)
    image[:, (3 * i) % width] = 255
    if FACE_PHOTO.is_file():
        face = cv2.cvtColor(cv2.imread(str(FACE_PHOTO)), cv2.COLOR_BGR2RGB)
        fw = int(width * 0.8)
        face = cv2.resize(face, (fw, min(height, int(fw * face.shape[0] / face.shape[1]))), interpolation=cv2.INTER_AREA)
        x = int(width * 0.1 + 3 * np.sin(i / 5) * width / 160)
        y = (height - face.shape[0]) // 2
        image[y:y + face.shape[0], x:x + face.shape[1]] = face
    else:
        cv2.circle(image, (width // 2 + i % 10, height // 2), height // 4, (200, 160, 140), -1)
    return image


def make_clip(path: Path, frames: int = 32, width: int = 160, height: int = 120, fps: int = 25,
              audio: bool = False, faststart: bool = False) -> Path:
    """Encode ``frames`` frames of ``clip_frame`` as H.264 at ``fps``; optionally a silent AAC track."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        sound = container.add_stream("aac", rate=16000) if audio else None
        for i in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(clip_frame(i, width, height), format="rgb24")))
        if sound is not None:
            for i in range(int(frames / fps * 16000 / 1024)):
                chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, i * 1024
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
        container.mux(stream.encode())
    return path


def test_video_file_frames_and_pts_timestamps(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=12, fps=25)
    with open_source(str(clip)) as source:
        assert isinstance(source, VideoFileSource) and not source.is_live
        frames = list(source)
    assert [f.frame_id for f in frames] == list(range(12))
    np.testing.assert_allclose([f.t_capture for f in frames], np.arange(12) / 25, atol=1e-6)
    assert all(f.image.shape == (120, 160, 3) and f.image.dtype == np.uint8 for f in frames)
    assert isinstance(frames[0], CapturedFrame)


def test_video_played_as_live_is_paced_by_its_timestamps_and_stops_at_once(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=10, fps=25)
    start = time.monotonic()
    with VideoFileSource(clip, as_live=True) as source:
        assert source.is_live
        assert len(list(source)) == 10
    elapsed = time.monotonic() - start
    assert 0.33 <= elapsed < 1.0  # 9 intervals of 40 ms
    with VideoFileSource(clip, as_live=True) as source:
        iterator = iter(source)
        next(iterator)
        source.stop()
        start = time.monotonic()
        assert list(iterator) == []
        assert time.monotonic() - start < 0.03


def test_grey_rgba_and_16_bit_become_rgb():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert (to_rgb(grey) == grey[:, :, None]).all()
    rgba = np.dstack([np.full((2, 2), v, np.uint8) for v in (10, 20, 30, 40)])
    np.testing.assert_array_equal(to_rgb(rgba)[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(to_rgb(rgba, "BGR")[0, 0], [30, 20, 10])
    assert to_rgb(np.full((2, 2), 65535, np.uint16)).max() == 255
    with pytest.raises(UserError):
        to_rgb(np.zeros((2, 2, 5), np.uint8))


def test_image_and_folder_sources(tmp_path):
    cv2.imwrite(str(tmp_path / "b_grey.png"), np.full((5, 7), 90, np.uint8))
    cv2.imwrite(str(tmp_path / "a_rgba.png"), np.full((4, 4, 4), 50, np.uint8))
    cv2.imwrite(str(tmp_path / "c_tiny.png"), np.zeros((1, 1, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (frame,) = list(ImageSource(tmp_path / "b_grey.png"))
    assert frame.frame_id == 0 and frame.t_capture == 0.0 and frame.image.shape == (5, 7, 3)
    source = open_source(str(tmp_path), rate_hz=10.0)
    assert isinstance(source, FolderSource)
    frames = list(source)
    assert [f.image.shape for f in frames] == [(4, 4, 3), (5, 7, 3), (1, 1, 3)]  # sorted by name
    np.testing.assert_allclose([f.t_capture for f in frames], [0.0, 0.1, 0.2])


def test_a_folder_skips_an_unreadable_image_in_its_place_or_stops_there_when_strict(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((5, 7, 3), 90, np.uint8))
    (tmp_path / "b.jpg").write_text("not a picture")
    (tmp_path / "c.png").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "d.png"), np.full((4, 4, 3), 50, np.uint8))
    frames = list(open_source(str(tmp_path)))
    assert [(f.frame_id, f.source, f.image.shape) for f in frames] == [
        (0, "a.png", (5, 7, 3)), (1, "b.jpg", (0, 0, 3)), (2, "c.png", (0, 0, 3)), (3, "d.png", (4, 4, 3))]
    assert [f.skipped for f in frames] == [None, f"cannot read {tmp_path / 'b.jpg'} as an image",
                                           f"input is an empty (zero-byte) file: {tmp_path / 'c.png'}", None]
    strict = open_source(str(tmp_path), skip_unreadable=False)
    with pytest.raises(UserError, match="cannot read .*b.jpg as an image"):
        list(strict)


def test_a_missing_input_is_also_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="input not found: .*nope.mp4"):
        open_source(str(tmp_path / "nope.mp4"))


@pytest.mark.parametrize("case", ["missing", "zero_byte", "not_video", "empty_folder", "bad_image"])
def test_bad_inputs_are_one_line_user_errors(tmp_path, case):
    path = {"missing": tmp_path / "nope.mp4", "zero_byte": tmp_path / "empty.mp4",
            "not_video": tmp_path / "text.mp4", "empty_folder": tmp_path / "dir",
            "bad_image": tmp_path / "broken.jpg"}[case]
    if case == "zero_byte":
        path.write_bytes(b"")
    elif case in ("not_video", "bad_image"):
        path.write_text("hello, this is not a picture\n" * 20)
    elif case == "empty_folder":
        path.mkdir()
    with pytest.raises(UserError) as info:
        list(open_source(str(path)))
    assert "\n" not in str(info.value) and str(path.name) in str(info.value)


def test_truncated_video_yields_what_decodes_then_reports(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=24, width=64, height=48, faststart=True)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    frames = []
    with pytest.raises(UserError, match="truncated") as info:
        for frame in open_source(str(cut)):
            frames.append(frame)
    assert 0 < len(frames) < 24 and "\n" not in str(info.value)
    # moov atom at the end: a cut file cannot even be opened
    plain = make_clip(tmp_path / "plain.mp4", frames=8, width=64, height=48)
    (tmp_path / "cut2.mp4").write_bytes(plain.read_bytes()[:-200])
    with pytest.raises(UserError, match="corrupt or truncated"):
        open_source(str(tmp_path / "cut2.mp4"))


def test_bad_camera_index_is_a_user_error():
    with pytest.raises(UserError, match="cannot open camera"):
        CameraSource(57, reconnect_attempts=0)


class FakeCamera:
    """Stands in for cv2.VideoCapture: ``frames_per_open`` frames per opening, then read fails
    (the camera was unplugged); openings past ``opens`` fail (it never comes back)."""

    opened = 0

    def __init__(self, device, frames_per_open: int = 3, opens: int = 2) -> None:
        FakeCamera.opened += 1
        self.ok = FakeCamera.opened <= opens
        self.left = frames_per_open
        self.settings: dict[int, float] = {}

    def isOpened(self) -> bool:
        return self.ok

    def set(self, prop: int, value: float) -> bool:
        self.settings[prop] = value
        return True

    def read(self):
        if not self.ok or self.left == 0:
            return False, None
        self.left -= 1
        return True, np.full((6, 8, 3), (10, 20, 30), np.uint8)  # BGR

    def release(self) -> None:
        self.ok = False


def test_camera_reconnects_after_a_drop_then_reports_it_lost(monkeypatch):
    import realtime.io.capture as capture

    FakeCamera.opened = 0
    monkeypatch.setattr(capture.cv2, "VideoCapture", FakeCamera)
    source = CameraSource(0, width=640, height=480, fps=30, reconnect_attempts=2, reconnect_wait_s=0.01)
    frames = []
    with pytest.raises(UserError, match="did not come back after 2 reconnection attempts"):
        for frame in source:
            frames.append(frame)
    assert [f.frame_id for f in frames] == list(range(6))  # 3 frames, reconnected, 3 more
    assert np.all(np.diff([f.t_capture for f in frames]) >= 0)
    np.testing.assert_array_equal(frames[0].image[0, 0], [30, 20, 10])  # BGR -> RGB
    source.close()
    assert source.capture is None
