"""Live tuning of a running ``FrameProcessor``: a GUI thread sets, the worker applies.

numpy only, no Qt, no threads of its own. ``LiveParams`` is a frozen record of everything a user
may change while frames flow, made of the records the processor itself runs with (the One Euro
``SmoothingParams``, the ``TrackerConfig`` with its re-detect interval) and the few values that live
on the processor (detector threshold, camera intrinsics, pose source), and the turn of a camera
mounted sideways or upside down (``rotate_deg``, applied by the tuner to each frame before the
processor sees it). ``LiveTuner`` wraps the processor as the ``process`` callable of a ``LivePipeline``:

    tuner = LiveTuner(processor)
    pipeline = LivePipeline(source, tuner)      # the worker calls tuner(frame)
    p = tuner.params
    tuner.set(replace(p, smoothing=replace(p.smoothing, min_cutoff=0.5)))   # from any thread, e.g. the GUI's

``set`` replaces the wanted record under a lock; the worker applies the newest one at the start of
its next frame, between two frames, so a frame never sees half an update and the processor's
state (filters, tracks) is only ever touched by the thread that runs it; a new ``rotate_deg``
starts the processor afresh (``FrameProcessor.reset``: the tracks' coordinates belong to the old
turn). ``params`` is what was
asked for last; ``applied`` what the processor runs with now. ``set`` refuses (UserError, on the
calling thread) a pose source the processor cannot use, so the worker never fails on one.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, fields, replace

from realtime.geometry.orientation import Orientation
from realtime.io.capture import CapturedFrame
from realtime.core.cliargs import FOCAL_PX, HFOV_DEG, SCORE, Range
from realtime.detect.detector import DEFAULT_DETECTOR, default_threshold
from realtime.core.errors import UserError
from realtime.core.packet import FramePacket
from realtime.pipeline.config import POSE_SOURCES
from realtime.pipeline.processor import FrameProcessor
from realtime.stages.pose import DEFAULT_HFOV_DEG
from realtime.stages.smoothing import SmoothingParams
from realtime.stages.tracker import TrackerConfig


ROTATIONS_DEG = (0, 90, 180, 270)  # clockwise turns of a camera's picture (--rotate, the panel)


@dataclass(frozen=True)
class LiveParams:
    """``smoothing``: the One Euro parameters (min_cutoff, d_cutoff Hz; beta Hz per face size / s;
    enabled), a private copy (``SmoothingParams`` is mutable: filters read the live one by reference,
    and ``apply`` copies these values into it); ``tracker``: the tracker's configuration, of which the
    panel tunes ``redetect_every``; ``detector_threshold`` BlazeFace score in [0, 1]; ``focal_px``
    (None: from ``hfov_deg``) and ``hfov_deg`` the camera intrinsics of
    ``pose.CameraIntrinsics.for_image``; ``pose_source`` "pnp" or "head"
    (``pipeline.FrameProcessor.set_pose_source``); ``rotate_deg`` 0, 90, 180 or 270 degrees
    clockwise, the turn that makes the camera's picture upright (docs/rotation.md)."""

    smoothing: SmoothingParams
    tracker: TrackerConfig
    detector_threshold: float
    focal_px: float | None
    hfov_deg: float
    pose_source: str = "pnp"
    rotate_deg: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "smoothing", replace(self.smoothing))  # never shared with a running filter
        # the command lines' rules (realtime.core.cliargs): finite, inside the same ranges
        Range(0, lo_open=True).check(self.smoothing.min_cutoff, "smoothing min cutoff (Hz)")
        Range(0, lo_open=True).check(self.smoothing.d_cutoff, "smoothing d cutoff (Hz)")
        Range(0).check(self.smoothing.beta, "smoothing beta")
        SCORE.check(self.detector_threshold, "detector threshold")
        Range(1).check(self.tracker.redetect_every, "re-detect interval (frames)")
        if self.focal_px is not None:
            FOCAL_PX.check(self.focal_px, "focal length (px)")
        HFOV_DEG.check(self.hfov_deg, "horizontal field of view (degrees)")
        if self.pose_source not in POSE_SOURCES:
            raise UserError(f"unknown pose source {self.pose_source!r}; choose one of {', '.join(POSE_SOURCES)}")
        if self.rotate_deg not in ROTATIONS_DEG:
            raise UserError(f"rotation must be one of {', '.join(map(str, ROTATIONS_DEG))} degrees, got {self.rotate_deg}")

    @staticmethod
    def defaults() -> "LiveParams":
        """The values of a processor built with default settings (the default detector)."""
        return LiveParams(SmoothingParams(), TrackerConfig(), default_threshold(DEFAULT_DETECTOR), None,
                          DEFAULT_HFOV_DEG)

    @staticmethod
    def of(processor: FrameProcessor, rotate_deg: int = 0) -> "LiveParams":
        """The values ``processor`` runs with now, with frames turned by ``rotate_deg`` clockwise."""
        return LiveParams(processor.smoother.params, processor.tracker.config, float(processor.detector.score_threshold),
                          processor.focal_px, processor.hfov_deg, processor.pose_source, rotate_deg)


def apply(params: LiveParams, processor: FrameProcessor) -> None:
    """Set ``params`` on ``processor``; call only from the thread that runs it (or with it idle).

    The smoothing record is changed in place: every track's filter holds that same object.
    """
    live = processor.smoother.params
    for field in fields(SmoothingParams):
        setattr(live, field.name, getattr(params.smoothing, field.name))
    processor.detector.score_threshold = params.detector_threshold
    if processor.tracker.config != params.tracker:
        processor.tracker.config = params.tracker
    processor.focal_px, processor.hfov_deg = params.focal_px, params.hfov_deg
    processor.set_pose_source(params.pose_source)


class LiveTuner:
    """``tuner(frame) -> FramePacket``: ``processor(frame)``, the frame turned by ``rotate_deg``
    clockwise, after applying the newest ``set``."""

    def __init__(self, processor: FrameProcessor, rotate_deg: int = 0) -> None:
        self.processor = processor
        self._lock = threading.Lock()
        self._wanted = self._applied = LiveParams.of(processor, rotate_deg)

    def set(self, params: LiveParams) -> None:
        """Ask for ``params`` from any thread; the worker applies them before its next frame.
        UserError (nothing changes) for a pose source the processor does not have."""
        if params.pose_source not in self.processor.pose_sources:
            raise UserError(f"pose source {params.pose_source!r} is not available with these weights "
                            f"(available: {', '.join(self.processor.pose_sources)})")
        with self._lock:
            self._wanted = params

    @property
    def params(self) -> LiveParams:
        """The parameters asked for last (applied, or to be applied on the next frame)."""
        with self._lock:
            return self._wanted

    @property
    def applied(self) -> LiveParams:
        """The parameters the processor has run with since the last frame began."""
        with self._lock:
            return self._applied

    def __call__(self, frame: CapturedFrame) -> FramePacket:
        with self._lock:
            wanted = self._wanted
        if wanted is not self._applied:
            apply(wanted, self.processor)
            if wanted.rotate_deg != self._applied.rotate_deg:
                self.processor.reset()
            with self._lock:
                self._applied = wanted
        if wanted.rotate_deg:
            turn = Orientation.clockwise(wanted.rotate_deg)
            frame = frame._replace(image=turn.apply(frame.image), orientation=frame.orientation.then(turn))
        return self.processor(frame)
