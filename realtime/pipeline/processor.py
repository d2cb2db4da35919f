"""The threaded pipeline: the only module in ``realtime`` that starts threads.

``FrameProcessor`` is the single-threaded per-frame chain (a plain object; tests call it directly):
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

Three ways to drive it:

- ``run_file`` (lossless, in order): a capture thread decodes into a bounded blocking queue; the
  caller's thread processes every frame in order and hands each packet to ``on_packet``. Nothing
  is dropped: processed == decoded, always. A source error (a truncated video) is raised after
  every frame decoded before it has been processed. Ctrl-C in the caller ends the capture thread.
- ``LivePipeline`` (newest frame wins): capture thread -> ``LatestMailbox`` (overwrites counted
  as drops) -> worker thread -> ``LatestMailbox`` of results. The worker takes a new frame only
  after the consumer took the previous result (MediaPipe's flow limiter: one in flight, one
  waiting), so frames are dropped only at the entrance and the result slot never overwrites.
  Consumers must therefore take results through ``LivePipeline.get`` (or iterate it), which
  releases the worker.
- ``run_streams`` (several inputs at once, each lossless and in order): a capture thread per input;
  each step processes the next frame of every input together (``process_together``), so the
  detector and the landmark network see one batch across the inputs (what keeps a GPU busy when
  one stream cannot). Each input keeps its own ``FrameProcessor`` (tracks, filters); the records
  equal those of processing each input alone.

File mode runs the landmarker one frame at a time even though ``Landmarker.batch`` can batch
across frames: with tracking, frame t + 1's crops come from frame t's landmarks.

Per-frame ``timings`` (milliseconds): ``capture_ms`` (reading/decoding the frame), ``wait_ms``
(arrival to processing start), ``detect_ms`` (0 when the tracker skipped detection),
``track_ms``, ``landmarks_ms``, ``smooth_ms``, ``pose_ms``, ``process_ms`` (all stages) and
``latency_ms`` (arrival, in ``time.monotonic()``, to the packet being ready).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Generator, Iterator, Sequence

import numpy as np

from realtime.io.capture import CapturedFrame, Source
from realtime.geometry.crops import transform_points
from realtime.detect.detector import DEFAULT_DETECTOR, BlazeFaceBase, BlazeFaceBoth, make_detector
from realtime.core.errors import UserError
from realtime.stages.landmarker import Landmarker
from realtime.pipeline.mailbox import LatestMailbox, MailboxClosed
from realtime.geometry.meanface import face_model_for
from realtime.geometry.orientation import turn_image
from realtime.core.packet import FaceResult, FramePacket, HeadPose
from realtime.stages.pose import (
    CameraIntrinsics, PoseEstimate, PoseSmoother, crop_pose_to_image, estimate_head_pose, place_rotation,
)
from realtime.stages.pose_head import PoseHead, pose_head_of
from realtime.stages.smoothing import SmoothingParams, TrackSmoother
from realtime.stages.tracker import FaceRoi, FaceTracker, TrackerConfig
from realtime.stages.turned_search import TurnedSearch, detections_back, merge

POSE_SOURCES = ("pnp", "head")


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


@dataclass(frozen=True)
class PipelineConfig:
    """``weights`` landmark .safetensors; ``detector`` "short", "full" or "both" (the default:
    ``realtime.detect.detector.DEFAULT_DETECTOR``, docs/detection.md); ``face_model_3d`` (K, 3)
    3D face for head pose, "auto" (the shipped mean face for the weights' layout) or None (no
    pose); ``focal_px`` or ``hfov_deg`` the camera intrinsics; ``pose_source`` "pnp" or "head"
    (module docstring; "head" needs weights with a pose head); ``backend`` the landmark model's
    inference backend (``realtime.backends``: a name or "auto"); ``queue_size`` frames decoded ahead
    in file mode (``run_file``); ``detector_backend`` "opencv", "torch" or "auto" (torch on a CUDA
    ``device``, else OpenCV, the faster on CPU: ``detector.resolve_detector_backend``);
    ``smoothing`` the One Euro parameters (None: ``SmoothingParams()``'s defaults);
    ``turned_search`` whether detection also tries the frame turned by quarter turns when the
    upright pass is not enough (faces at any roll: ``realtime.stages.turned_search``)."""

    weights: Path
    detector: str = DEFAULT_DETECTOR
    device: str = "cpu"
    decoder: str | None = None
    tracker: TrackerConfig = TrackerConfig()
    face_model_3d: np.ndarray | str | None = "auto"
    focal_px: float | None = None
    hfov_deg: float = 60.0
    pose_source: str = "pnp"
    queue_size: int = 8
    backend: str = "eager"
    detector_backend: str = "auto"
    smoothing: SmoothingParams | None = None
    turned_search: bool = True


@dataclass
class RunStats:
    """What a run did: frame counts, wall time, throughput and mean latency."""

    decoded: int = 0
    processed: int = 0
    dropped: int = 0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.processed / self.wall_s if self.wall_s > 0 else 0.0


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
            landmarker = Landmarker(config.weights, config.device, config.decoder, backend=config.backend,
                                    crop_on_device=on_cuda)
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

    def __call__(self, frame: CapturedFrame) -> FramePacket:
        """One frame's packet; a ``still`` frame (an image, a folder's image) is processed on its
        own, after ``reset``, so a folder of N photos gives the points of N single-image runs."""
        steps = self.steps(frame)
        answer = None  # the first send starts the chain
        while True:
            try:
                request = steps.send(answer)
            except StopIteration as done:
                return done.value
            answer = (self.detector(request.image) if isinstance(request, DetectRequest)
                      else self.landmarker(request.image, request.rois))

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
        if self.tracker.needs_detection():
            detections = yield DetectRequest(image)
            quarters = self.turned_search.turn_for(detections, list(self.tracker.tracks), self.tracker.unsure_ids())
            if quarters:  # faces at any roll: the frame turned once more (realtime.stages.turned_search)
                turned = yield DetectRequest(turn_image(image, quarters))
                detections = merge(detections, detections_back(turned, quarters, image.shape[1], image.shape[0]))
        lap("detect_ms")
        rois = self.tracker.rois(detections)
        lap("track_ms")
        points, scores = yield LandmarkRequest(image, rois)
        if any(roi.source == "detection" for roi in rois):  # new framings: crop again from their landmarks
            rois = self.tracker.refine(rois, {roi.track_id: (p, s) for roi, p, s in zip(rois, points, scores)})
            points, scores = yield LandmarkRequest(image, rois)
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
        timings["process_ms"] = sum(timings.values())
        return FramePacket(frame_id, t, image, faces, timings, source=frame.source,
                           rotation_deg=frame.orientation.rotation_deg, mirrored=frame.orientation.mirrored)

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


def pools_landmarks(landmarker: Landmarker) -> bool:
    """Whether ``run_streams`` batches the landmarks of all streams by default: on a GPU, where
    one big batch is what keeps it busy; not on a CPU, where a network's result depends (by ~1e-4
    px) on the batch it ran in, so records would no longer equal a single-input run's, and where
    a bigger batch buys little."""
    return getattr(getattr(landmarker, "device", None), "type", "cpu") == "cuda"


def process_together(processors: Sequence[FrameProcessor], frames: Sequence[CapturedFrame],
                     batch_landmarks: bool = True) -> list[FramePacket]:
    """One frame of each stream (``frames[i]`` for ``processors[i]``, each keeping its own tracks
    and filters) with ONE batched detector call over the frames that need detection, then ONE
    batched landmark call over all their faces (and one more over the faces that were just
    detected, for their refined crops). The processors must share one landmarker and one detector
    (``FrameProcessor.from_config(config, landmarker, detector)``). It is the same chain as calling
    each processor on its own frame; only the model calls are pooled.

    ``batch_landmarks`` False answers each stream's landmark request with its own call (one batch
    per frame, as a single-input run does), so the packets are bit-for-bit those of single runs
    (the detector's letterboxed batch is exact either way: every image has the same canvas)."""
    if not processors:
        return []
    landmarker, detector = processors[0].landmarker, processors[0].detector
    if any(p.landmarker is not landmarker or p.detector is not detector for p in processors):
        raise ValueError("process_together needs processors that share one landmarker and one detector")
    chains = [p.steps(f) for p, f in zip(processors, frames)]
    packets: list[FramePacket | None] = [None] * len(chains)
    pending = {}
    for i, chain in enumerate(chains):
        try:
            pending[i] = next(chain)
        except StopIteration as done:  # a chain with nothing to ask (a skipped still)
            packets[i] = done.value
    while pending:
        # every detection first, so that all first landmark requests meet in one batch
        kind = DetectRequest if any(isinstance(r, DetectRequest) for r in pending.values()) else LandmarkRequest
        ready = [i for i, r in pending.items() if isinstance(r, kind)]
        if kind is DetectRequest:
            answers = detector.detect_batch([pending[i].image for i in ready])
        elif batch_landmarks:
            answers = landmarker.batch([(pending[i].image, pending[i].rois) for i in ready])
        else:
            answers = [landmarker.batch([(pending[i].image, pending[i].rois)])[0] for i in ready]
        for i, answer in zip(ready, answers):
            try:
                pending[i] = chains[i].send(answer)
            except StopIteration as done:
                packets[i] = done.value
                del pending[i]
    return packets  # type: ignore[return-value]


def _finish(packet: FramePacket, t_arrival: float, capture_ms: float, t_start: float, dropped: int) -> FramePacket:
    packet.timings = {"capture_ms": capture_ms, "wait_ms": (t_start - t_arrival) * 1e3, **packet.timings,
                      "latency_ms": (time.monotonic() - t_arrival) * 1e3}
    packet.dropped = dropped
    return packet


def _timed(source: Source) -> Iterator[tuple[CapturedFrame, float, float]]:
    """(frame, t_arrival monotonic seconds, capture_ms) for each frame of ``source``."""
    iterator, clock = iter(source), time.perf_counter()
    for frame in iterator:
        now = time.perf_counter()
        yield frame, time.monotonic(), (now - clock) * 1e3
        clock = time.perf_counter()


class _BoundedQueue:
    """A closable FIFO of at most ``maxsize`` items: ``put`` blocks while full, ``get`` while
    empty; both return at once after ``close`` (put -> False, get -> None once drained)."""

    def __init__(self, maxsize: int) -> None:
        self._items: list = []
        self._maxsize, self._closed = max(1, maxsize), False
        self._cond = threading.Condition()

    def put(self, item: object) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: len(self._items) < self._maxsize or self._closed)
            if self._closed:
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self) -> object | None:
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed)
            item = self._items.pop(0) if self._items else None
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _Capture:
    """A capture thread decoding ``source`` into a bounded blocking queue (lossless). ``get`` ->
    (frame, t_arrival, capture_ms), or None at the end; a source error is kept in ``error`` for
    the caller's thread. ``close`` stops the source, joins the thread and closes the source."""

    def __init__(self, source: Source, queue_size: int, stats: RunStats) -> None:
        self.source, self.stats, self.error = source, stats, None
        self.queue = _BoundedQueue(queue_size)
        self.thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in _timed(self.source):
                if not self.queue.put(item):
                    return
                self.stats.decoded += 1
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
        finally:
            self.queue.close()

    def get(self) -> tuple[CapturedFrame, float, float] | None:
        return self.queue.get()  # type: ignore[return-value]

    def close(self) -> None:
        self.source.stop()
        self.queue.close()
        self.thread.join()
        self.source.close()


def run_file(source: Source, process: Callable[[CapturedFrame], FramePacket],
             on_packet: Callable[[FramePacket], None], queue_size: int = 8) -> RunStats:
    """Process every frame of ``source`` in order (module docstring); returns the counts.

    The source is stopped, its thread joined and the source closed on return, on error and on
    KeyboardInterrupt alike. A source error is re-raised after the frames before it.
    """
    stats = RunStats()
    start = time.monotonic()
    capture = _Capture(source, queue_size, stats)
    try:
        while (item := capture.get()) is not None:
            frame, t_arrival, capture_ms = item
            t_start = time.monotonic()
            packet = _finish(process(frame), t_arrival, capture_ms, t_start, 0)
            stats.latencies_ms.append(packet.timings["latency_ms"])
            on_packet(packet)
            stats.processed += 1
    finally:
        capture.close()
        stats.wall_s = time.monotonic() - start
    if capture.error is not None:
        raise capture.error
    return stats


def run_streams(sources: Sequence[Source], processors: Sequence[FrameProcessor],
                on_packet: Callable[[int, FramePacket], None],
                on_end: Callable[[int, BaseException | None], None] | None = None,
                queue_size: int = 8, batch_landmarks: bool | None = None) -> list[RunStats]:
    """Several inputs at once, each lossless and in order (``run_file``'s guarantees per stream):
    one capture thread per source; each step takes the next frame of every stream that still has
    one and processes them together (``process_together``: one batched detector call, one batched
    landmark call), then hands packet by packet to ``on_packet(stream index, packet)``.
    ``processors[i]`` keeps stream i's tracks and filters; they share one landmarker and detector.

    A stream that ends calls ``on_end(i, None)``; one whose source fails (a truncated file) ends
    there with ``on_end(i, error)`` while the others go on, and the first such error is raised
    after every stream has ended. Every source is closed on return, error and KeyboardInterrupt.
    ``batch_landmarks`` (``process_together``) defaults to ``pools_landmarks``: on a GPU.
    """
    if batch_landmarks is None:
        batch_landmarks = bool(processors) and pools_landmarks(processors[0].landmarker)
    if len(sources) != len(processors):
        raise ValueError("run_streams needs one processor per source")
    stats = [RunStats() for _ in sources]
    start = time.monotonic()
    captures: list[_Capture] = []
    errors: list[BaseException] = []
    try:
        for source, st in zip(sources, stats):
            captures.append(_Capture(source, queue_size, st))
        active = list(range(len(captures)))
        while active:
            batch = []
            for i in list(active):
                item = captures[i].get()
                if item is None:
                    active.remove(i)
                    stats[i].wall_s = time.monotonic() - start
                    if captures[i].error is not None:
                        errors.append(captures[i].error)
                    if on_end is not None:
                        on_end(i, captures[i].error)
                    continue
                batch.append((i, item))
            if not batch:
                continue
            t_start = time.monotonic()
            packets = process_together([processors[i] for i, _ in batch], [item[0] for _, item in batch],
                                       batch_landmarks)
            for (i, (_, t_arrival, capture_ms)), packet in zip(batch, packets):
                packet = _finish(packet, t_arrival, capture_ms, t_start, 0)
                stats[i].latencies_ms.append(packet.timings["latency_ms"])
                on_packet(i, packet)
                stats[i].processed += 1
    finally:
        for capture in captures:
            capture.close()
        for st in stats:
            st.wall_s = st.wall_s or time.monotonic() - start
    if errors:
        raise errors[0]
    return stats


class LivePipeline:
    """Newest-frame-wins processing (module docstring). Use as a context manager, or call
    ``start`` and ``stop``; pull results with ``get`` or by iterating."""

    def __init__(self, source: Source, process: Callable[[CapturedFrame], FramePacket]) -> None:
        self.source, self.process = source, process
        self.entrance: LatestMailbox = LatestMailbox()
        self.results: LatestMailbox[FramePacket] = LatestMailbox()
        self._taken, self._stop = threading.Event(), threading.Event()
        self._taken.set()
        self.error: BaseException | None = None
        self.stats = RunStats()
        self._threads = [threading.Thread(target=self._capture, name="capture", daemon=True),
                         threading.Thread(target=self._work, name="worker", daemon=True)]

    def start(self) -> "LivePipeline":
        self._start = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def _capture(self) -> None:
        try:
            for item in _timed(self.source):
                if self._stop.is_set():
                    break
                self.entrance.put(item)
                self.stats.decoded += 1
        except BaseException as exc:
            self.error = self.error or exc
        finally:
            self.entrance.close()

    def _work(self) -> None:
        try:
            while self._taken.wait() and not self._stop.is_set():
                try:
                    frame, t_arrival, capture_ms = self.entrance.get()
                except MailboxClosed:
                    break
                t_start = time.monotonic()
                packet = _finish(self.process(frame), t_arrival, capture_ms, t_start, self.entrance.dropped)
                self._taken.clear()
                if self._stop.is_set():  # stop() set _taken before the clear: do not wait on it again
                    break
                self.results.put(packet)
                self.stats.processed += 1
        except BaseException as exc:
            self.error = self.error or exc
            self.source.stop()
        finally:
            self.results.close()

    def get(self, timeout_s: float | None = None) -> FramePacket | None:
        """The newest result, waiting up to ``timeout_s`` (None: forever); None on timeout.

        Raises the pipeline's error if a thread failed, ``MailboxClosed`` at the end of input.
        """
        try:
            packet = self.results.get(timeout_s)
        except MailboxClosed:
            if self.error is not None:
                raise self.error
            raise
        if packet is not None:
            self.stats.latencies_ms.append(packet.timings["latency_ms"])
            self._taken.set()
        return packet

    def __iter__(self) -> Iterator[FramePacket]:
        while True:
            try:
                packet = self.get()
            except MailboxClosed:
                return
            if packet is not None:
                yield packet

    def stop(self) -> RunStats:
        """Stop capture, join both threads, release the source; returns the counts. Idempotent."""
        self._stop.set()
        self.source.stop()
        self._taken.set()
        self.entrance.close()
        for thread in self._threads:
            if thread.is_alive() or thread.ident is not None:
                thread.join()
        self.results.close()
        self.source.close()
        self.stats.dropped = self.entrance.dropped
        self.stats.wall_s = time.monotonic() - getattr(self, "_start", time.monotonic())
        return self.stats

    def __enter__(self) -> "LivePipeline":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
