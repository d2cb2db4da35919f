"""The per-frame chain: ``FrameProcessor``, a plain single-threaded object (tests call it directly).

detect (only when the tracker asks; on the frame turned by a quarter turn too when that is not
enough, ``realtime.stages.turned_search``) -> track -> landmarks of all faces in one batch -> One Euro
smoothing per track -> head pose -> ``FramePacket``. Head pose has two sources (``pose_source``,
switchable between frames with ``set_pose_source``), both smoothed per track by ``PoseSmoother``:

- ``"pnp"`` (default): solvePnP of the smoothed points against the shipped 3D mean face
  (``realtime/geometry/meanface.py``), or its subset for the weights' layout (the 5-point placeholder
  too); skipped for layouts with no known 3D points, or when asked (``face_model_3d`` None).
- ``"head"``: the weights' attribute head (``realtime/stages/pose_head.py``), all of a frame's faces
  in one batch. It sees the smoothed points mapped back into each face's crop of this frame
  (steadier than the raw ones, and in the crop pixels it was trained on); the crop's in-plane
  turn (the eye-line levelling) is then composed back (``pose.crop_pose_to_image``), so roll is
  in the image's frame with pnp's sign.

What drives it (the only place in ``realtime`` that starts threads is ``realtime.pipeline``):
``realtime.pipeline.runners`` (``run_file``, lossless, and ``run_streams``, several inputs whose
model calls ``realtime.pipeline.pooling`` pools) and ``realtime.pipeline.live_pipeline``
(``LivePipeline``, newest frame wins). The records it is built from and reports into are in
``realtime.pipeline.config``.

Per-frame ``timings`` (milliseconds): ``capture_ms`` (reading/decoding the frame), ``wait_ms``
(arrival to processing start), ``detect_ms`` (0 when the tracker skipped detection),
``track_ms``, ``landmarks_ms``, ``smooth_ms``, ``pose_ms``, ``process_ms`` (all stages),
``detect_round_ms`` (live only, on a frame that took a detection round run on the detector thread:
that round's time, not part of ``process_ms``) and
``latency_ms`` (arrival, in ``time.monotonic()``, to the packet being ready).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Generator, Sequence

import numpy as np

from realtime.backends.base import pipeline_threads
from realtime.io.capture import CapturedFrame
from realtime.geometry.crops import transform_points
from realtime.detect.blazeface import Detections
from realtime.detect.detector import BlazeFaceBase, BlazeFaceBoth, make_detector
from realtime.core.errors import UserError
from realtime.stages.landmarker import Landmarker
from realtime.geometry.meanface import face_model_for
from realtime.geometry.orientation import turn_image
from realtime.core.packet import FaceResult, FramePacket, HeadPose
from realtime.pipeline.config import POSE_SOURCES, PipelineConfig
from realtime.pipeline.detect_ahead import DetectAhead
from realtime.stages.pose import (
    CameraIntrinsics, PoseEstimate, PoseSmoother, crop_pose_to_image, estimate_head_pose, place_rotation,
)
from realtime.stages.pose_head import PoseHead, pose_head_of
from realtime.stages.smoothing import SmoothingParams, TrackSmoother
from realtime.stages.tracker import FaceRoi, FaceTracker, TrackerConfig
from realtime.stages.turned_search import TurnedSearch, detections_back, merge


@dataclass(frozen=True)
class DetectRequest:
    """``FrameProcessor.steps`` asks for the faces of ``image`` (answer: ``Detections``)."""

    image: np.ndarray


@dataclass(frozen=True)
class LandmarkRequest:
    """``FrameProcessor.steps`` asks for the landmarks of ``rois`` in ``image`` (answer: image-pixel
    points (F, K, 2) and scores (F, K))."""

    image: np.ndarray
    rois: Sequence[FaceRoi]



def answered(steps: Generator, detector: Callable, landmarker: Callable | None = None) -> object:
    """Run ``steps`` (``FrameProcessor.steps`` or a detection round) to its end, answering each
    request at once on this thread; returns what it returns."""
    answer = None  # the first send starts the chain
    while True:
        try:
            request = steps.send(answer)
        except StopIteration as done:
            return done.value
        answer = detector(request.image) if isinstance(request, DetectRequest) else landmarker(request.image, request.rois)


class FrameProcessor:
    """One frame in, one ``FramePacket`` out; keeps the tracks and filters between calls.

    ``pose_head`` (``pose_head.pose_head_of``) makes ``pose_source`` "head" possible, at start or
    later through ``set_pose_source``; None leaves only "pnp". ``turned_search`` as
    ``PipelineConfig``; ``self.turned_search.passes`` counts the turned detector passes.
    """

    def __init__(self, landmarker: Landmarker, detector: BlazeFaceBase | BlazeFaceBoth, tracker_config: TrackerConfig = TrackerConfig(),
                 smoothing: SmoothingParams | None = None, face_model_3d: np.ndarray | str | None = None,
                 focal_px: float | None = None, hfov_deg: float = 60.0, pose_source: str = "pnp",
                 pose_head: PoseHead | None = None, turned_search: bool = True) -> None:
        self.landmarker, self.detector = landmarker, detector
        self.turned_search = TurnedSearch(turned_search)
        calibrated = getattr(landmarker, "track_min_confidence", None)  # stand-ins in tests may lack it
        if tracker_config.min_confidence is None and calibrated is not None:
            tracker_config = replace(tracker_config, min_confidence=float(calibrated))
        self.tracker = FaceTracker(landmarker.input_size, landmarker.layout, tracker_config)
        self.smoother = TrackSmoother(smoothing)
        self.pose_smoother = PoseSmoother()
        if isinstance(face_model_3d, str):
            if face_model_3d != "auto":
                raise UserError(f"face_model_3d must be a (K, 3) array, 'auto' or None, not {face_model_3d!r}")
            face_model_3d = face_model_for(landmarker.layout)
        if face_model_3d is not None:
            face_model_3d = np.asarray(face_model_3d, np.float64)
            if face_model_3d.shape != (landmarker.num_points, 3):
                raise UserError(f"the 3D face model has shape {face_model_3d.shape}, but the landmark model "
                                f"gives {landmarker.num_points} points: expected ({landmarker.num_points}, 3)")
        self.face_model_3d = face_model_3d
        self.focal_px, self.hfov_deg = focal_px, hfov_deg
        self._last_pose: dict[int, PoseEstimate] = {}
        self.last_rois: list = []  # the last frame's crops (tracker.FaceRoi), for tools that reuse them
        self.pose_head = pose_head
        # live mode only (``LivePipeline`` sets it while it runs): detection rounds on a thread of
        # their own, their result taken by a later frame (``realtime.pipeline.detect_ahead``)
        self.detect_ahead: DetectAhead | None = None
        self._frames = 0
        self.pose_source = "pnp"
        self.set_pose_source(pose_source)

    @staticmethod
    def from_config(config: PipelineConfig, landmarker: Landmarker | None = None,
                    detector: BlazeFaceBase | BlazeFaceBoth | None = None) -> "FrameProcessor":
        """THE way to assemble the pipeline (every command line and tool builds it here): the
        landmarker, the detector, the pose head and the 3D face from ``config``. A caller that
        already holds a ``landmarker`` or ``detector`` for ``config`` (several processors over one
        model) passes it in instead of loading another."""
        on_cuda = str(config.device).startswith("cuda")
        if landmarker is None:
            # on CUDA the crops are cut on the device (one grid_sample over all faces of all frames)
            threads = pipeline_threads() if config.inference_threads is None else config.inference_threads
            if threads < 1:
                raise UserError(f"inference threads must be at least 1, got {threads}")
            landmarker = Landmarker(config.weights, config.device, config.decoder, backend=config.backend,
                                    crop_on_device=on_cuda, threads=threads)
        if detector is None:
            detector = make_detector(config.detector, config.detector_backend, config.device)
        pose_head = pose_head_of(landmarker, required=config.pose_source == "head")
        processor = FrameProcessor(landmarker, detector, config.tracker, smoothing=config.smoothing,
                                   face_model_3d=config.face_model_3d, focal_px=config.focal_px,
                                   hfov_deg=config.hfov_deg, pose_source=config.pose_source, pose_head=pose_head,
                                   turned_search=config.turned_search)
        if on_cuda:
            processor.warmup()
        return processor

    def warmup(self, frame_shape: tuple[int, int, int] = (480, 640, 3), batches: Sequence[int] = (1, 2, 4, 8)) -> None:
        """Pay the first-use costs before the first frame, not inside it: the detector once on a
        blank frame, the landmark network once per batch size in ``batches`` (CUDA context, cuDNN's
        autotuning per shape, lazy allocations). ``from_config`` calls it on CUDA, where these cost
        seconds (live mode dropped 85 of 300 frames at start on an H100 without it); the tracks and
        filters are untouched."""
        self.detector.detect_batch([np.zeros(frame_shape, np.uint8)])
        for n in batches:
            self.landmarker.warmup(n)

    @property
    def pose_sources(self) -> tuple[str, ...]:
        """The pose sources this processor can use: "pnp", and "head" when it has a pose head."""
        return POSE_SOURCES if self.pose_head is not None else ("pnp",)

    def set_pose_source(self, source: str) -> None:
        """Use ``source`` from the next frame on; the pose filters restart (the two sources'
        translations differ in unit). UserError for an unknown or unavailable source."""
        if source not in POSE_SOURCES:
            raise UserError(f"unknown pose source {source!r}; choose one of {', '.join(POSE_SOURCES)}")
        if source not in self.pose_sources:
            raise UserError("pose source 'head' needs weights whose attribute head predicts yaw, pitch and roll; "
                            "this processor has none")
        if source != self.pose_source:
            self.pose_smoother.reset()
            self._last_pose.clear()
        self.pose_source = source

    def reset(self) -> None:
        """Forget every track, filter and pose: the next frame is processed as if it were the first
        (the current tracker, smoothing and pose settings are kept)."""
        self.tracker = FaceTracker(self.landmarker.input_size, self.landmarker.layout, self.tracker.config)
        self.smoother.reset()
        self.pose_smoother.reset()
        self._last_pose.clear()
        self.last_rois = []
        self.turned_search.reset()
        if self.detect_ahead is not None:
            self.detect_ahead.reset()

    def __call__(self, frame: CapturedFrame) -> FramePacket:
        """One frame's packet; a ``still`` frame (an image, a folder's image) is processed on its
        own, after ``reset``, so a folder of N photos gives the points of N single-image runs."""
        return answered(self.steps(frame), self.detector, self.landmarker)

    def steps(self, frame: CapturedFrame) -> Generator[DetectRequest | LandmarkRequest, object, FramePacket]:
        """The per-frame chain with its two model calls handed out: yields a ``DetectRequest``
        (answer: ``Detections``) when the tracker asks for detection, and a second one on the frame
        turned by quarter turns when ``turned_search`` wants it, then one or two
        ``LandmarkRequest``s (answer: (points, scores) in image pixels), and returns the packet.
        ``__call__`` answers each request at once; ``process_together`` answers the requests of
        many streams with one batched call, which is what keeps a GPU busy. A skipped input
        (``frame.skipped``: an unreadable still) asks for nothing and gives a packet without faces
        that carries the reason."""
        frame_id, t, image = frame.frame_id, frame.t_capture, frame.image
        if frame.still:
            self.reset()
        if frame.skipped is not None:
            return FramePacket(frame_id, t, image, source=frame.source, skipped=frame.skipped)
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name], clock = (now - clock) * 1e3, now

        detections = None
        self._frames += 1
        if self.tracker.needs_detection():
            detection_round = self._detection_round(image, list(self.tracker.tracks), self.tracker.unsure_ids())
            if self.detect_ahead is not None and not frame.still and self.tracker.tracks:
                # live, with tracks to carry meanwhile: the last round finished on its own thread, if any
                detections = self.detect_ahead.take(self._frames, lambda: answered(detection_round, self.detector))
                if detections is not None:
                    timings["detect_round_ms"] = self.detect_ahead.last_round_ms
            else:
                detections = yield from detection_round
        lap("detect_ms")
        rois = self.tracker.rois(detections)
        lap("track_ms")
        points, scores = yield LandmarkRequest(image, rois)
        reframed = [i for i, roi in enumerate(rois) if roi.source == "detection"]
        if reframed:  # new framings: crop those faces again from their landmarks (the others keep theirs)
            rois = self.tracker.refine(rois, {roi.track_id: (p, s) for roi, p, s in zip(rois, points, scores)})
            again, again_scores = yield LandmarkRequest(image, [rois[i] for i in reframed])
            points, scores = np.array(points, copy=True), np.array(scores, copy=True)
            points[reframed], scores[reframed] = again, again_scores
        self.last_rois = rois
        lap("landmarks_ms")
        smoothed = self.smoother.smooth_frame(t, {roi.track_id: (p, roi.box[2]) for roi, p in zip(rois, points)})
        # the next crops come from the smoothed points: crops cut from raw points wobble with their
        # noise and feed it back (still-segment jitter 0.48% vs 0.19% of the eye distance on a clip)
        self.tracker.update({roi.track_id: (smoothed[roi.track_id], s) for roi, s in zip(rois, scores)})
        lap("smooth_ms")
        faces = []
        for roi, s in zip(rois, scores):
            cx, cy, side = roi.box
            faces.append(FaceResult(roi.track_id, [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2],
                                    smoothed[roi.track_id], s, detection_score=roi.detection_score))
        self._add_pose(faces, t, image.shape[1], image.shape[0], rois)
        lap("pose_ms")
        timings["process_ms"] = sum(v for k, v in timings.items() if k != "detect_round_ms")
        return FramePacket(frame_id, t, image, faces, timings, source=frame.source,
                           rotation_deg=frame.orientation.rotation_deg, mirrored=frame.orientation.mirrored)

    def _detection_round(self, image: np.ndarray, track_ids: list[int],
                         unsure_ids: list[int]) -> Generator[DetectRequest, object, Detections]:
        """One detection round: the frame, then the frame turned by quarter turns when
        ``turned_search`` wants it (faces at any roll), merged; the tracker's ids as they were
        when the round was asked for."""
        detections = yield DetectRequest(image)
        quarters = self.turned_search.turn_for(detections, track_ids, unsure_ids)
        if quarters:
            turned = yield DetectRequest(turn_image(image, quarters))
            detections = merge(detections, detections_back(turned, quarters, image.shape[1], image.shape[0]))
        return detections

    def _add_pose(self, faces: list[FaceResult], t: float, width: int, height: int,
                  rois: Sequence[FaceRoi] = ()) -> None:
        """Set each face's smoothed pose from this frame's source; ``rois`` are the faces' crops,
        in the same order (the "head" source needs them)."""
        intrinsics = CameraIntrinsics.for_image(width, height, self.focal_px, self.hfov_deg)
        if self.pose_source == "head":
            estimates = self._head_poses(faces, rois, intrinsics)
        else:
            estimates = self._pnp_poses(faces, intrinsics)
        for face, raw in zip(faces, estimates):
            if raw is not None:
                face.pose = self.pose_smoother(face.track_id, raw, t).angles
        alive = {face.track_id for face in faces}
        self.pose_smoother.prune(alive)
        self._last_pose = {k: v for k, v in self._last_pose.items() if k in alive}

    def _pnp_poses(self, faces: list[FaceResult], intrinsics: CameraIntrinsics) -> list[PoseEstimate | None]:
        """solvePnP per face against the 3D face, started from its last solution; None for a
        face with fewer than 4 finite points, or for all without a 3D face."""
        estimates: list[PoseEstimate | None] = [None] * len(faces)
        if self.face_model_3d is None:
            return estimates
        for i, face in enumerate(faces):
            if np.isfinite(face.points).all(1).sum() >= 4:
                estimates[i] = estimate_head_pose(face.points, self.face_model_3d, intrinsics,
                                                  previous=self._last_pose.get(face.track_id))
                self._last_pose[face.track_id] = estimates[i]
        return estimates

    def _head_poses(self, faces: list[FaceResult], rois: Sequence[FaceRoi],
                    intrinsics: CameraIntrinsics) -> list[PoseEstimate | None]:
        """The pose head on every face with all points finite, in one batch (module docstring);
        placed at the points' centre, one unit = one box side, for the translation filter."""
        assert self.pose_head is not None and len(rois) == len(faces)
        usable = [i for i, face in enumerate(faces) if np.isfinite(face.points).all()]
        estimates: list[PoseEstimate | None] = [None] * len(faces)
        if not usable:  # no face, or none with every point
            return estimates
        angles = self.pose_head(np.stack([transform_points(faces[i].points, rois[i].matrix) for i in usable]))
        for i, (yaw, pitch, roll) in zip(usable, angles):
            rotation = crop_pose_to_image(HeadPose(yaw, pitch, roll), rois[i].rotation_deg)
            x0, y0, x1, y1 = faces[i].box_xyxy
            estimates[i] = place_rotation(rotation, faces[i].points.mean(0), max(x1 - x0, y1 - y0), intrinsics)
        return estimates

