"""The live overlay window (pyqtgraph + PySide6): the video with landmarks, boxes, track ids and
head pose (``realtime/gui/overlay_items.py``), an info line (fps, latency mean/p95, drops), a rolling
yaw/pitch/roll plot and a tuning panel (a ``ParameterTree``).

Only this module, ``overlay_items`` and ``realtime.webcam`` import Qt. Worker threads never touch
Qt: a ``QTimer`` on the GUI thread pulls the newest packet with ``LivePipeline.get(timeout_s=0)``
(which also releases the worker for its next frame), and tuning goes back through
``LiveTuner.set``, applied by the worker between two frames (``realtime/pipeline/live.py``). The marks are
drawn into a copy of each frame (``FaceLayers.render``), the plot's items made once and updated
with ``setData``; the image is uint8 RGB, row-major, with
fixed levels (no auto-levels per frame), shifted by half a pixel so that points are drawn at
their own coordinates (pixel centres at integers, ``realtime/__init__.py``).

Keys: Space pauses the view (the pipeline keeps running and its results are taken but not drawn;
changing the display options re-draws the frozen frame), S saves a screenshot of the window as
PNG, atomically, into ``screenshot_dir``; Q or Esc closes the window, which stops the pipeline:
threads joined, source released.
"""
from __future__ import annotations

import collections
import gc
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph.parametertree import Parameter, ParameterTree
from pyqtgraph.util.garbage_collector import GarbageCollector
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from realtime.core.atomic import atomic_path
from realtime.core.errors import UserError
from realtime.pipeline.live import ROTATIONS_DEG, LiveParams, LiveTuner
from realtime.pipeline.mailbox import MailboxClosed
from realtime.gui.overlay_items import ANGLES, DisplayOptions, FaceLayers, PosePlot
from realtime.core.packet import FramePacket
from realtime.pipeline.config import RunStats
from realtime.pipeline.live_pipeline import LivePipeline
from realtime.core.signals import handling
from realtime.stages.pose import CameraIntrinsics


def tuning_parameters(live: LiveParams, display: DisplayOptions,
                      pose_sources: tuple[str, ...] = ("pnp",)) -> Parameter:
    """The tuning panel's parameter tree; ``read_tuning`` turns it back into the two records.
    ``pose_sources`` are the pose sources offered (``FrameProcessor.pose_sources``)."""
    def num(name: str, title: str, value: float, limits: tuple, step: float, suffix: str = "", tip: str = "",
            kind: str = "float") -> dict:
        return {"name": name, "title": title, "type": kind, "value": value, "limits": limits, "step": step,
                "suffix": suffix, "tip": tip}

    def flag(name: str, title: str, value: bool) -> dict:
        return {"name": name, "title": title, "type": "bool", "value": value}

    return Parameter.create(name="tuning", type="group", children=[
        {"name": "smoothing", "title": "Smoothing (One Euro)", "type": "group", "children": [
            flag("on", "on", live.smoothing.enabled),
            num("min_cutoff", "min cutoff", live.smoothing.min_cutoff, (0.001, 30.0), 0.05, "Hz",
                "lower: less jitter, more lag"),
            num("beta", "beta", live.smoothing.beta, (0.0, 100.0), 0.5, "", "higher: less lag when moving"),
            num("d_cutoff", "d cutoff", live.smoothing.d_cutoff, (0.01, 30.0), 0.1, "Hz",
                "cutoff of the speed estimate")]},
        {"name": "detector", "title": "Detection and tracking", "type": "group", "children": [
            num("threshold", "detector threshold", live.detector_threshold, (0.0, 1.0), 0.05),
            num("redetect_every", "re-detect every", live.tracker.redetect_every, (1, 10000), 1, "frames",
                kind="int")]},
        {"name": "camera", "title": "Camera", "type": "group", "children": [
            {"name": "rotate", "title": "rotate (clockwise)", "type": "list", "limits": list(ROTATIONS_DEG),
             "value": live.rotate_deg, "tip": "turn the picture of a camera mounted sideways or upside "
             "down upright (tracks start afresh)"},
            num("focal_px", "focal length (0: FOV)", live.focal_px or 0.0, (0.0, 1e5), 10.0, "px"),
            num("hfov_deg", "horizontal FOV", live.hfov_deg, (1.0, 179.0), 1.0, "deg")]},
        {"name": "pose", "title": "Head pose", "type": "group", "children": [
            {"name": "source", "title": "source", "type": "list", "limits": list(pose_sources),
             "value": live.pose_source, "tip": "pnp: solvePnP on a 3D mean face; head: the weights' attribute "
             "head (offered only when the weights carry one with yaw, pitch and roll)"},
            {"name": "style", "title": "style", "type": "list", "limits": ["axes", "cube"], "value": display.pose_style},
            num("axis_length", "axis length", display.axis_length, (0.05, 3.0), 0.05, "face sizes"),
            *(flag(name, f"plot {name}", name in display.plot_angles) for name in ANGLES)]},
        {"name": "layers", "title": "Layers", "type": "group", "children": [
            flag("points", "points", display.points), flag("boxes", "boxes", display.boxes),
            flag("ids", "track ids", display.ids), flag("pose", "pose", display.pose)]},
    ])


def read_tuning(params: Parameter, live: LiveParams, display: DisplayOptions) -> tuple[LiveParams, DisplayOptions]:
    """(LiveParams, DisplayOptions) from the tree of ``tuning_parameters``: ``live`` and ``display``
    with the panel's values (what the panel does not show, e.g. the tracker's other settings, kept)."""
    v = {group.name(): {child.name(): child.value() for child in group.children()} for group in params.children()}
    s, d, c, p, layers = v["smoothing"], v["detector"], v["camera"], v["pose"], v["layers"]
    live = LiveParams(
        replace(live.smoothing, min_cutoff=s["min_cutoff"], beta=s["beta"], d_cutoff=s["d_cutoff"], enabled=s["on"]),
        replace(live.tracker, redetect_every=int(d["redetect_every"])), float(d["threshold"]),
        c["focal_px"] or None, c["hfov_deg"], p["source"], int(c["rotate"]))
    display = replace(display, points=layers["points"], boxes=layers["boxes"], ids=layers["ids"],
                      pose=layers["pose"], pose_style=p["style"], axis_length=p["axis_length"],
                      plot_angles=tuple(name for name in ANGLES if p[name]))
    return live, display


class OverlayWindow(QtWidgets.QWidget):
    """The live window. ``pipeline`` may be None (draw packets given to ``show_packet``).

    ``screenshot_after`` N: save a screenshot once N frames have been drawn (or at the end of the
    input, if it comes first); ``quit_after`` N: close after N frames drawn, or at the end of input.
    After closing, ``stats`` holds the pipeline's counts, ``error`` a pipeline failure (or None),
    ``screenshots`` the files saved, ``interrupted`` the number of the stop signal (Ctrl-C, SIGTERM, SIGHUP) that closed it, else 0
    (``run_window``).
    """

    def __init__(self, pipeline: LivePipeline | None = None, tuner: LiveTuner | None = None,
                 display: DisplayOptions | None = None, screenshot_dir: str | Path = ".",
                 screenshot_after: int | None = None, quit_after: int | None = None, poll_ms: int = 2) -> None:
        super().__init__()
        self.pipeline, self.tuner = pipeline, tuner
        self.display = display if display is not None else default_display(pipeline)
        self.live = tuner.params if tuner is not None else LiveParams.defaults()
        self.screenshot_dir = Path(screenshot_dir)
        self.screenshot_after, self.quit_after = screenshot_after, quit_after
        self.packet: FramePacket | None = None
        self.paused = self.ended = False
        self.frames_drawn, self.draw_ms = 0, 0.0
        self.shown_s: tuple[float, float] | None = None  # monotonic times of the first and last frame drawn
        self.stats: RunStats | None = None
        self.error: BaseException | None = None
        self.interrupted = 0
        self.screenshots: list[Path] = []
        self._recent: collections.deque[tuple[float, float]] = collections.deque(maxlen=120)  # (t shown, latency)
        self._note = ""
        self._build()
        # The worker starts its next frame only once the window has taken the last result (the
        # flow limiter), so the tick's wait is added to every frame's cycle: 2 ms, not 5 (a tick
        # that finds nothing costs a few microseconds)
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._poll)
        if pipeline is not None:
            self.timer.start(poll_ms)

    def _build(self) -> None:
        self.setWindowTitle("RCN landmarks: live overlay")
        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.layers = FaceLayers()
        self.pose_plot = PosePlot(self.graphics.addPlot(row=1, col=0))
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.info = QtWidgets.QLabel("waiting for the first frame")
        self.info.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        sources = self.tuner.processor.pose_sources if self.tuner is not None else ("pnp",)
        self.params = tuning_parameters(self.live, self.display, sources)
        self.params.sigTreeStateChanged.connect(self._on_tuning)
        tree = ParameterTree(showHeader=False)
        tree.setParameters(self.params, showTop=False)
        tree.setMinimumWidth(300)
        left = QtWidgets.QVBoxLayout()
        left.addWidget(self.graphics, 1)
        left.addWidget(self.info)
        layout = QtWidgets.QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addWidget(tree)
        self.resize(1180, 760)
        for key, slot in ((QtCore.Qt.Key.Key_Space, self.toggle_pause), (QtCore.Qt.Key.Key_S, self.screenshot),
                          (QtCore.Qt.Key.Key_Q, self.close), (QtCore.Qt.Key.Key_Escape, self.close)):
            QtGui.QShortcut(QtGui.QKeySequence(key), self).activated.connect(slot)

    # -- tuning, keys ------------------------------------------------------------------------
    def _on_tuning(self, *_: object) -> None:
        try:
            live, display = read_tuning(self.params, self.live, self.display)
            if live != self.live and self.tuner is not None:
                self.tuner.set(live)
        except UserError as exc:
            self._note = f"not applied: {exc}"
            self._update_info()
            return
        self.live, self.display = live, display
        self._draw()

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self._update_info()

    def screenshot(self) -> Path | None:
        """Save the window as PNG in ``screenshot_dir`` (atomically); returns the path, or None
        when it could not be written (said in the info line)."""
        frame = self.packet.frame_id if self.packet is not None else 0
        stem = f"overlay-{time.strftime('%Y%m%d-%H%M%S')}-frame{frame:06d}"
        path, n = self.screenshot_dir / f"{stem}.png", 1
        while path.exists():
            n += 1
            path = self.screenshot_dir / f"{stem}-{n}.png"
        try:
            with atomic_path(path) as tmp:
                if not self.grab().save(str(tmp), "PNG"):
                    raise OSError("Qt could not write the PNG")
        except OSError as exc:
            self._note = f"screenshot failed: {path}: {exc}"
            self._update_info()
            return None
        self.screenshots.append(path)
        self._note = f"saved {path}"
        self._update_info()
        return path

    # -- frames ------------------------------------------------------------------------------
    def _poll(self) -> None:
        try:
            packet = self.pipeline.get(timeout_s=0)
        except MailboxClosed:
            self._end_of_input()
            return
        except BaseException as exc:  # a pipeline failure (camera lost): handed to the caller
            self.error = exc
            self.close()
            return
        if packet is not None:
            self.show_packet(packet)

    def show_packet(self, packet: FramePacket) -> None:
        """Take one packet: draw it (unless paused) and update the stats, plot and counters."""
        self._recent.append((time.monotonic(), packet.timings.get("latency_ms", float("nan"))))
        if self.paused:
            self._update_info(packet)
            return
        self.packet = packet
        start = time.perf_counter()
        self.pose_plot.add(packet)
        self._draw()
        self.draw_ms = (time.perf_counter() - start) * 1e3
        self.frames_drawn += 1
        now = time.monotonic()
        self.shown_s = (self.shown_s[0] if self.shown_s else now, now)
        self._update_info()
        if self.screenshot_after is not None and self.frames_drawn == self.screenshot_after:
            self.screenshot()
        if self.quit_after is not None and self.frames_drawn >= self.quit_after:
            self.close()

    def _draw(self) -> None:
        packet = self.packet
        if packet is None:
            return
        intrinsics = CameraIntrinsics.for_image(packet.width, packet.height, self.live.focal_px, self.live.hfov_deg)
        shown = self.layers.render(packet, self.display, intrinsics)
        if self.image.image is None or self.image.image.shape != shown.shape:
            self.image.setImage(shown, levels=None, autoLevels=False)
            self.image.setRect(QtCore.QRectF(-0.5, -0.5, packet.width, packet.height))
            self.view.setRange(xRange=(-0.5, packet.width - 0.5), yRange=(-0.5, packet.height - 0.5), padding=0)
        else:
            self.image.setImage(shown, levels=None, autoLevels=False)
        self.pose_plot.draw(self.display.plot_angles)

    def _update_info(self, latest: FramePacket | None = None) -> None:
        packet = latest or self.packet
        if packet is None:
            return
        shown = np.array(self._recent, np.float64).reshape(-1, 2)
        last_second = shown[shown[:, 0] >= shown[-1, 0] - 1.0, 0] if len(shown) else shown[:, 0]
        fps = (len(last_second) - 1) / max(last_second[-1] - last_second[0], 1e-9) if len(last_second) > 1 else 0.0
        latency = shown[np.isfinite(shown[:, 1]), 1]
        mean, p95 = (latency.mean(), np.percentile(latency, 95)) if len(latency) else (np.nan, np.nan)
        decoded = self.pipeline.stats.decoded if self.pipeline is not None else packet.frame_id + 1
        state = " | PAUSED" if self.paused else " | end of input" if self.ended else ""
        self.info.setText(f"{fps:5.1f} fps | latency {mean:5.1f} ms mean, {p95:5.1f} ms p95 | dropped "
                          f"{packet.dropped} of {decoded} | frame {packet.frame_id} | faces {len(packet.faces)} | "
                          f"draw {self.draw_ms:4.1f} ms{state}" + (f"\n{self._note}" if self._note else ""))

    def _end_of_input(self) -> None:
        self.ended = True
        self.timer.stop()
        self._update_info()
        if self.screenshot_after is not None and self.frames_drawn < self.screenshot_after:
            self.screenshot()
        if self.quit_after is not None:
            self.close()

    @property
    def shown_fps(self) -> float:
        """Frames drawn a second, from the first frame drawn to the last (0 before two)."""
        if self.shown_s is None or self.frames_drawn < 2 or self.shown_s[1] <= self.shown_s[0]:
            return 0.0
        return (self.frames_drawn - 1) / (self.shown_s[1] - self.shown_s[0])

    # -- shutdown ----------------------------------------------------------------------------
    def shutdown(self) -> RunStats | None:
        """Stop the timer and the pipeline (threads joined, source released). Idempotent."""
        self.timer.stop()
        if self.pipeline is not None and self.stats is None:
            self.stats = self.pipeline.stop()
        return self.stats

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)


def _qt_message(mode: object, context: object, message: str) -> None:
    """Qt's messages to stderr, less the offscreen plugin's harmless note on size hints."""
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr)


def default_display(pipeline: LivePipeline | None) -> DisplayOptions:
    """Display defaults, with points drawn fully green at twice the tracker's re-detect threshold
    (so yellow marks the threshold): a model's soft-argmax peaks have their own scale (the bundled
    68-point model's faces score about 0.2, the 5-point placeholder's 0.25-0.5)."""
    process = getattr(pipeline, "process", None)
    processor = getattr(process, "processor", process)  # a LiveTuner wraps the FrameProcessor
    tracker = getattr(processor, "tracker", None)
    if tracker is None or tracker.config.min_confidence is None:
        return DisplayOptions()
    return DisplayOptions(confidence_full=2.0 * float(tracker.config.min_confidence))


def run_window(pipeline: LivePipeline, tuner: LiveTuner, **options: object) -> OverlayWindow:
    """Show an ``OverlayWindow`` (``options`` as its constructor), start ``pipeline``, run Qt's
    event loop until the window closes (Q, Esc, the window's close button, ``quit_after``, a
    pipeline error, or Ctrl-C, SIGTERM or SIGHUP, which set ``window.interrupted`` to the signal's number); the pipeline is stopped on
    return whatever happened. Returns the closed window (``stats``, ``error``, ``screenshots``)."""
    QtCore.qInstallMessageHandler(_qt_message)
    app = pg.mkQApp("RCN live landmarks")
    try:
        window = OverlayWindow(pipeline, tuner, **options)
    except BaseException:
        pipeline.stop()  # releases the source
        raise

    def interrupt(signum: int, _frame: object) -> None:  # runs on the GUI thread between two timer ticks
        window.interrupted = signum
        window.close()

    # Python's cyclic GC may otherwise run on a pipeline thread and free Qt objects there (a
    # timer firing on a freed object crashed the overlay tests); pyqtgraph's collector turns
    # automatic GC off and collects on a Qt timer, on the GUI thread, while the window runs.
    collector = GarbageCollector(interval=1.0)
    try:
        with handling(interrupt):
            window.show()
            pipeline.start()
            app.exec()
    finally:
        window.shutdown()
        collector.timer.stop()
        gc.enable()
    return window
