"""The live overlay (offscreen Qt): drawing, live tuning of a running pipeline, keys, the webcam
CLI end to end and its one-line errors; and a real xcb window on Xvfb (marker ``xvfb``)."""
from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cli_errors import default_signals

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before the QApplication exists
pytest.importorskip("PySide6")
pg = pytest.importorskip("pyqtgraph")
pytest.importorskip("av")

from pyqtgraph.Qt import QtCore, QtGui, QtTest

from dataclasses import replace

from realtime.core.assets import SYNTH_5 as WEIGHTS
from realtime.core.errors import UserError
from realtime.io.capture import CapturedFrame, VideoFileSource
from realtime.pipeline.live import LiveTuner
from realtime.gui.overlay import OverlayWindow
from realtime.gui.overlay_items import CONFIDENCE_RGB, DisplayOptions, box_segments, confidence_level
from realtime.core.packet import FaceResult, FramePacket, HeadPose
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.live_pipeline import LivePipeline
from realtime.pipeline.processor import FrameProcessor
from realtime.stages.pose import CameraIntrinsics
from realtime.webcam import main
from test_pipeline_capture import make_clip

pytestmark = pytest.mark.gui
torch.set_num_threads(1)
cv2.setNumThreads(1)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def app():
    return pg.mkQApp("test_overlay")


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread():
    """Closed windows linger as cyclic garbage holding QObjects and timers. Left to chance, the
    collector may run on a pipeline's worker thread (whichever thread allocates at the time),
    destroying them off the GUI thread; a timer then fires on freed memory (a segfault in
    QTimerInfoList::activateTimers, seen once the test run's allocation count put a collection
    there). Collect after every test, here on the GUI thread."""
    yield
    gc.collect()


@pytest.fixture
def window(app, tmp_path):
    win = OverlayWindow(screenshot_dir=tmp_path)
    win.show()
    yield win
    win.close()


def wait_until(app, condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
    return condition()


def packet(frame_id: int = 0, pose: HeadPose | None = None, width: int = 320, height: int = 240) -> FramePacket:
    points = np.array([[130.0, 100.0], [190.0, 100.0], [160.0, 130.0], [137.0, 160.0], [183.0, 160.0]])
    face = FaceResult(3, [110, 70, 210, 180], points, np.array([0.0, 0.1, 0.25, 0.4, 0.9]), pose=pose)
    return FramePacket(frame_id, frame_id / 30, np.full((height, width, 3), 60, np.uint8), [face],
                       {"latency_ms": 12.0})


def count(item) -> int:
    """Points in a plot item (its ``getData`` gives None when it has none)."""
    x = item.getData()[0]
    return 0 if x is None else len(x)


def drawn(window: OverlayWindow, kind: str, axis: int | None = None) -> int:
    """Segment ends drawn on the last frame for ``kind`` ("box", "cube", or "axes" number ``axis``)."""
    marks = window.layers.drawn
    if kind == "box":
        return sum(len(box_segments(b)) for b in marks.boxes)
    if kind == "cube":
        return sum(len(c) for c in marks.cubes)
    return sum(len(a[axis]) for a in marks.axes)


def pixel_at(window: OverlayWindow, image: QtGui.QImage, x: float, y: float) -> np.ndarray:
    """RGB of ``image`` (a grab of ``window.graphics``) at image-pixel coordinates (x, y)."""
    at = window.graphics.mapFromScene(window.view.mapViewToScene(QtCore.QPointF(x, y)))
    colour = image.pixelColor(at.x(), at.y())
    return np.array([colour.red(), colour.green(), colour.blue()])


def test_points_are_drawn_in_their_confidence_colours_where_they_are(app, window):
    p = packet()
    window.show_packet(p)
    app.processEvents()
    image = window.graphics.grab().toImage()
    face = p.faces[0]
    colours = CONFIDENCE_RGB[confidence_level(face.scores, DisplayOptions().confidence_full)]
    assert len({tuple(c) for c in colours}) >= 4  # the scores span red to green
    for (x, y), rgb in zip(face.points, colours):
        assert np.abs(pixel_at(window, image, x, y) - rgb).max() <= 30, (x, y, rgb)
    assert np.abs(pixel_at(window, image, 60, 40) - 60).max() <= 3  # the frame itself, unchanged
    assert [text for text, _, _ in window.layers.drawn.ids] == ["#3"]
    assert np.abs(pixel_at(window, image, 112, 62) - 60).max() > 20  # the id's label, above the box
    assert drawn(window, "box") == 8  # 4 edges
    assert all(drawn(window, "axes", i) == 0 for i in range(3))  # no pose in the packet
    assert "faces 1" in window.info.text() and "latency" in window.info.text()


def test_pose_is_drawn_as_axes_or_cube_only_when_packets_carry_it(app, window):
    window.show_packet(packet(0, HeadPose(30.0, 0.0, 0.0)))  # nose turned towards the image left
    (x_axis, y_axis, z_axis) = window.layers.drawn.axes[0]
    assert x_axis[1, 0] > x_axis[0, 0] and y_axis[1, 1] > y_axis[0, 1]  # x right, y down
    assert z_axis[1, 0] < z_axis[0, 0] - 5  # the forward axis points left
    assert "track #3" in window.pose_plot.plot.titleLabel.text
    assert count(window.pose_plot.curves["yaw"]) == 1
    window.params.child("pose", "style").setValue("cube")
    assert drawn(window, "cube") == 24 and drawn(window, "axes", 0) == 0
    window.params.child("layers", "pose").setValue(False)
    assert drawn(window, "cube") == 0
    window.params.child("layers", "pose").setValue(True)
    window.params.child("pose", "yaw").setValue(False)
    window.show_packet(packet(1))  # no pose now: nothing drawn, the plot says so
    assert drawn(window, "cube") == 0
    assert "none" in window.pose_plot.plot.titleLabel.text
    assert count(window.pose_plot.curves["yaw"]) == 0


def test_marks_scale_with_each_face_and_zoom_with_the_image(app, window):
    """A 40 px face and a 200 px face in one frame: the small one's dots, box and axes are
    thinner, each sized by ``overlay_scale.mark_sizes`` in image pixels (they zoom with the image)."""
    from realtime.io.overlay_scale import mark_sizes

    def face(track_id, x0, y0, side):
        points = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]]) * side + (x0, y0)
        return FaceResult(track_id, [x0, y0, x0 + side, y0 + side], points, np.full(5, 0.5),
                          pose=HeadPose(10.0, 5.0, 0.0))
    faces = [face(1, 20, 20, 40), face(2, 300, 150, 200)]
    for frame_id in (0, 1):  # the second frame sees the layout settled (the info line's height)
        window.show_packet(FramePacket(frame_id, 0.0, np.full((480, 640, 3), 60, np.uint8), faces, {"latency_ms": 1.0}))
        app.processEvents()
    marks = window.layers.drawn
    small, big = mark_sizes(40), mark_sizes(200)
    assert marks.point_radius_px[:5] == pytest.approx(small.point_radius_px)
    assert marks.point_radius_px[5:] == pytest.approx(big.point_radius_px) and big.point_radius_px > 2 * small.point_radius_px
    assert marks.box_width_px == pytest.approx([small.line_px, big.line_px])
    assert marks.axis_width_px == pytest.approx([small.axis_line_px, big.axis_line_px])
    axis_length = [np.ptp(axes[1], 0).max() for axes in marks.axes]
    assert axis_length[1] > 3 * axis_length[0] > 0
    # in image pixels: the big face's dots cover more of the frame, by about their radii squared
    only_points = DisplayOptions(boxes=False, ids=False, pose=False)
    frame = FramePacket(0, 0.0, np.full((480, 640, 3), 60, np.uint8), faces, {})
    shown = window.layers.render(frame, only_points, CameraIntrinsics.for_image(640, 480))
    def covered(x, y):
        x, y = round(x), round(y)
        return int((np.abs(shown[y - 4:y + 5, x - 4:x + 5].astype(int) - 60).max(2) > 10).sum())
    assert covered(*faces[1].points[2]) > 4 * covered(*faces[0].points[2]) > 0
    window.show_packet(FramePacket(1, 0.1, np.full((480, 640, 3), 60, np.uint8), faces[1:], {"latency_ms": 1.0}))
    assert drawn(window, "box") == 8 and len(window.layers.drawn.boxes) == 1  # only the face left


def test_live_tuner_applies_between_frames_on_the_calling_thread():
    processor = FrameProcessor.from_config(PipelineConfig(WEIGHTS, detector="full"))
    tuner = LiveTuner(processor)
    from dataclasses import replace
    params = tuner.params
    wanted = replace(params, smoothing=replace(params.smoothing, min_cutoff=0.9), detector_threshold=0.2,
                     tracker=replace(params.tracker, redetect_every=4), focal_px=500.0)
    tuner.set(wanted)
    assert processor.smoother.params.min_cutoff != 0.9 and tuner.applied != wanted  # not yet: no frame
    tuner(CapturedFrame(0, 0.0, np.zeros((32, 32, 3), np.uint8)))
    assert tuner.applied == wanted and processor.smoother.params.min_cutoff == 0.9
    assert processor.detector.score_threshold == 0.2 and processor.tracker.config.redetect_every == 4
    assert processor.focal_px == 500.0


def test_live_tuner_turns_a_sideways_cameras_frames_and_starts_afresh_on_a_new_turn():
    """--rotate 90 (clockwise): the processor sees, and the packet carries, the turned frame, which
    says how it was turned; a new turn from the panel resets the tracks (their coordinates were in
    the old frame); a turn that is no quarter turn is refused."""
    processor = FrameProcessor.from_config(PipelineConfig(WEIGHTS, detector="full"))
    tuner = LiveTuner(processor, rotate_deg=90)
    image = np.zeros((32, 48, 3), np.uint8)
    image[0, 0] = 255  # top left -> top right, a quarter turn clockwise
    packet = tuner(CapturedFrame(0, 0.0, image))
    assert packet.image.shape == (48, 32, 3) and packet.image[0, 31].all() and not packet.image[0, 0].any()
    assert (packet.rotation_deg, packet.mirrored) == (270, False)  # counter-clockwise, as the records count
    tracker = processor.tracker
    tuner(CapturedFrame(1, 0.1, image))
    assert processor.tracker is tracker  # the same turn: tracking goes on
    tuner.set(replace(tuner.params, rotate_deg=180))
    packet = tuner(CapturedFrame(2, 0.2, image))
    assert processor.tracker is not tracker and packet.image.shape == (32, 48, 3) and packet.image[31, 47].all()
    with pytest.raises(UserError, match="rotation must be one of 0, 90, 180, 270"):
        replace(tuner.params, rotate_deg=45)


def test_tuning_panel_changes_reach_the_running_pipelines_processor(app, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=100, fps=25)
    processor = FrameProcessor.from_config(PipelineConfig(WEIGHTS, detector="full"))
    tuner = LiveTuner(processor)
    pipeline = LivePipeline(VideoFileSource(clip, as_live=True), tuner)
    window = OverlayWindow(pipeline, tuner, screenshot_dir=tmp_path)
    # points are fully green at twice the re-detect threshold: the model's own score scale
    assert window.display.confidence_full == 2 * processor.tracker.config.min_confidence
    assert OverlayWindow(screenshot_dir=tmp_path).display.confidence_full == DisplayOptions().confidence_full
    window.show()
    pipeline.start()
    assert wait_until(app, lambda: window.frames_drawn >= 2)
    window.params.child("smoothing", "min_cutoff").setValue(0.7)
    window.params.child("detector", "threshold").setValue(0.35)
    window.params.child("detector", "redetect_every").setValue(3)
    window.params.child("camera", "hfov_deg").setValue(80.0)
    window.params.child("camera", "rotate").setValue(270)
    assert tuner.params.smoothing.min_cutoff == 0.7 and tuner.params.rotate_deg == 270  # asked for at once ...
    # ... applied by the worker between frames (the four changes may land over two frames: wait for the last)
    assert wait_until(app, lambda: processor.tracker.config.redetect_every == 3 and processor.hfov_deg == 80.0)
    assert processor.smoother.params.min_cutoff == 0.7 and processor.detector.score_threshold == 0.35
    assert processor.hfov_deg == 80.0 and processor.focal_px is None
    assert wait_until(app, lambda: window.packet is not None and window.packet.rotation_deg == 90)
    assert window.packet.image.shape == (160, 120, 3)  # the 160x120 clip, turned upright by 270 clockwise
    window.close()  # stops the pipeline: threads joined, source released
    assert window.stats is not None and window.stats.processed >= 2
    assert not {t.name for t in threading.enumerate()} & {"capture", "worker"}
    assert not pipeline.source.container.streams  # PyAV's container is closed


def test_space_pauses_s_saves_a_screenshot_q_and_escape_quit(app, window, tmp_path):
    window.activateWindow()
    wait_until(app, window.isActiveWindow, 2.0)
    window.show_packet(packet(0))
    QtTest.QTest.keyClick(window, QtCore.Qt.Key.Key_Space)
    assert window.paused and "PAUSED" in window.info.text()
    window.show_packet(packet(1))
    assert window.packet.frame_id == 0 and window.frames_drawn == 1  # taken, not drawn
    QtTest.QTest.keyClick(window, QtCore.Qt.Key.Key_Space)
    window.show_packet(packet(2))
    assert not window.paused and window.packet.frame_id == 2
    QtTest.QTest.keyClick(window, QtCore.Qt.Key.Key_S)
    (shot,) = window.screenshots
    assert shot.parent == tmp_path and shot.suffix == ".png" and [p.name for p in tmp_path.iterdir()] == [shot.name]
    assert not QtGui.QImage(str(shot)).isNull()
    QtTest.QTest.keyClick(window, QtCore.Qt.Key.Key_Q)
    assert not window.isVisible()
    again = OverlayWindow(screenshot_dir=tmp_path)
    again.show()
    again.activateWindow()
    wait_until(app, again.isActiveWindow, 2.0)
    QtTest.QTest.keyClick(again, QtCore.Qt.Key.Key_Escape)
    assert not again.isVisible()


def test_webcam_cli_plays_a_clip_takes_a_screenshot_and_quits(app, tmp_path, capsys):
    clip = make_clip(tmp_path / "clip.mp4", frames=40, fps=25)
    shots = tmp_path / "shots"
    assert main(["--source", str(clip), "--detector", "full", "--screenshot-dir", str(shots),
                 "--screenshot-after", "5", "--quit-after", "8"]) == 0
    (shot,) = shots.iterdir()
    image = QtGui.QImage(str(shot))
    assert shot.suffix == ".png" and image.width() > 320 and image.height() > 240
    err = capsys.readouterr().err
    assert "screenshot:" in err and "frames processed" in err
    assert not {t.name for t in threading.enumerate()} & {"capture", "worker"}
    assert gc.isenabled(), "the window's GUI-thread garbage collector must hand automatic GC back"


def test_webcam_cli_quits_at_the_end_of_a_short_clip(app, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=5, fps=25)
    assert main(["--source", str(clip), "--screenshot-dir", str(tmp_path), "--screenshot-after", "50",
                 "--quit-after", "50"]) == 0
    assert len(list(tmp_path.glob("overlay-*.png"))) == 1  # taken at the end of input


def test_webcam_cli_ctrl_c_closes_the_window_and_exits_130(tmp_path):
    clip, shots = make_clip(tmp_path / "clip.mp4", frames=250, fps=25), tmp_path / "shots"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1"}
    cli = subprocess.Popen([sys.executable, "-m", "realtime.webcam", "--source", str(clip), "--screenshot-dir",
                            str(shots), "--screenshot-after", "3"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
                           preexec_fn=default_signals)
    try:
        assert wait_for(lambda: any(shots.glob("*.png")) or cli.poll() is not None, 60.0) and cli.poll() is None
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 130 and "frames processed" in err and "Traceback" not in err, err


@pytest.mark.parametrize("case", ["missing", "not_video", "zero_byte", "bad_camera", "bad_count", "bad_rotate"])
def test_webcam_cli_bad_input_is_one_error_line_and_exit_2(tmp_path, capsys, case):
    (tmp_path / "notes.txt").write_text("not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    source = {"missing": tmp_path / "nope.mp4", "not_video": tmp_path / "notes.txt",
              "zero_byte": tmp_path / "empty.mp4", "bad_camera": "9", "bad_count": tmp_path / "notes.txt",
              "bad_rotate": tmp_path / "notes.txt"}[case]
    extra = {"bad_count": ["--quit-after", "0"], "bad_rotate": ["--rotate", "45"]}.get(case, [])
    assert main(["--source", str(source), "--screenshot-dir", str(tmp_path / "shots"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_webcam_cli_without_a_display_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    clip = make_clip(tmp_path / "clip.mp4", frames=2)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")  # seen by the child process that probes Qt
    assert main(["--source", str(clip), "--screenshot-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "QT_QPA_PLATFORM=offscreen" in err and "Xvfb" in err


def _free_display() -> int:
    return next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                and not Path(f"/tmp/.X{n}-lock").exists())


# a separate X client's view of the whole screen: what the window really put on the display
GRAB_SCREEN = ("import sys; from PySide6.QtGui import QGuiApplication as A; a = A([]); "
               "sys.exit(0 if a.primaryScreen().grabWindow(0).save(sys.argv[1]) else 1)")


@pytest.mark.xvfb
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (apt-get install xvfb)")
def test_webcam_cli_in_a_real_xcb_window_on_xvfb(tmp_path):
    display = _free_display()
    xvfb = subprocess.Popen(["Xvfb", f":{display}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp", "-br"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # -br: a black root window
    cli = None
    try:
        if not wait_for(lambda: Path(f"/tmp/.X11-unix/X{display}").exists() or xvfb.poll() is not None, 10.0) \
                or xvfb.poll() is not None:
            pytest.skip(f"Xvfb did not start on :{display}")
        env = {**os.environ, "DISPLAY": f":{display}", "QT_QPA_PLATFORM": "xcb", "OMP_NUM_THREADS": "1"}
        probe = subprocess.run([sys.executable, "-c", GRAB_SCREEN, str(tmp_path / "before.png")], env=env,
                               capture_output=True, text=True, timeout=60)
        if probe.returncode != 0:  # e.g. libxcb-icccm4 / libxcb-keysyms1 missing
            pytest.skip(f"Qt's xcb platform does not start on Xvfb: {probe.stderr.strip()[:200]}")
        clip, shots = make_clip(tmp_path / "clip.mp4", frames=60, fps=25), tmp_path / "shots"
        cli = subprocess.Popen([sys.executable, "-m", "realtime.webcam", "--source", str(clip), "--detector", "full",
                                "--screenshot-dir", str(shots), "--screenshot-after", "10", "--quit-after", "50"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert wait_for(lambda: any(shots.glob("*.png")) or cli.poll() is not None, 60.0)
        subprocess.run([sys.executable, "-c", GRAB_SCREEN, str(tmp_path / "during.png")], env=env, check=True,
                       capture_output=True, timeout=60)
        _, err = cli.communicate(timeout=60)
        assert cli.returncode == 0, err
        (shot,) = shots.iterdir()
        window, before, during = (rgb_of(path) for path in (shot, tmp_path / "before.png", tmp_path / "during.png"))
        assert window.shape[0] >= 500 and window.shape[1] >= 800 and window.std() > 10  # the window drew itself
        assert before.max() == 0 and (during.max(2) > 0).mean() > 0.3  # and it was on the X screen
    finally:
        if cli is not None and cli.poll() is None:
            cli.kill()
            cli.wait()
        xvfb.terminate()
        xvfb.wait(10)


def rgb_of(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 of a PNG."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return image


def wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting on another process's socket file: no event to wait on
    return condition()
