"""Face tracks with stable ids, and each face's next crop: track, don't re-detect.

numpy + cv2 only (through ``realtime.crops``). The tracker is a plain object the pipeline calls
twice a frame, with no threads:

    detections = detector(image) if tracker.needs_detection() else None
    rois = tracker.rois(detections)                 # one crop matrix per face
    ... landmarks for every roi, in one batch ...
    tracker.update({roi.track_id: (points, scores)})

Re-detect policy: run the detector when there are no tracks, when a track's confidence (the mean
of its per-point scores, e.g. soft-argmax peaks) fell below ``min_confidence``, or when
``redetect_every`` frames have passed since the last detection. Detections are matched to tracks
greedily by IoU (highest first) against each track's predicted box (its last landmark box moved by
its last displacement x ``velocity_gain``); a matched track keeps its id, an unmatched detection
starts a new track, and a track missed by ``max_missed`` detection rounds in a row, or missed while
unconfident, ends.

Crops. From landmarks: the eye line (layout's eye centres) gives the roll; the points are levelled
by it, ``crops.face_box_from_points`` (the training recipe's box) is taken on the levelled points,
and its centre is turned back. From a detection: ``crops.face_box_from_detection`` on the box, roll
from BlazeFace's two eye keypoints. ``crops.crop_matrix`` then turns the content by the roll so the
eyes come out level. A confident matched track keeps its landmark crop on detection frames, so the
framing does not jump every ``redetect_every`` frames; an unconfident one takes the detector's.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from realtime.crops import DETECTION_SCALE, crop_matrix, face_box_from_detection, face_box_from_points
from realtime.detector import Detections, iou_matrix
from realtime.errors import UserError
from realtime.layouts import Layout


SIDE_RATIO_RANGE = (0.67, 1.5)  # detection vs landmark box sides beyond this mean a bad fit: clamp
DEFAULT_MIN_CONFIDENCE = 0.3  # for weights without a calibrated value (picked for the 5-point placeholder)


@dataclass(frozen=True)
class TrackerConfig:
    """``redetect_every`` frames (>= 1); ``min_confidence`` on the mean per-point score;
    ``iou_match`` minimum IoU to match a detection to a track; ``velocity_gain`` 0..1 fraction
    of the last displacement added to the next crop; ``max_missed`` detection rounds.

    ``min_confidence`` depends on the landmark model's score scale (soft-argmax peaks differ
    between models: the bundled 68-point model's real faces score 0.20-0.23, the 5-point
    placeholder's 0.25-0.50). None (the default) takes the value calibrated into the weights
    file (``track_min_confidence`` in its info, written by ``python -m train.faces68``), else
    ``DEFAULT_MIN_CONFIDENCE``; ``FrameProcessor`` resolves it. To tune live, assign a new config
    to ``FaceTracker.config`` (``dataclasses.replace``): it is read on every call.
    """

    redetect_every: int = 10
    min_confidence: float | None = None
    iou_match: float = 0.3
    velocity_gain: float = 0.5
    max_missed: int = 2
    max_faces: int = 8

    def __post_init__(self) -> None:
        if self.redetect_every < 1 or self.max_missed < 1 or self.max_faces < 1:
            raise UserError("redetect_every, max_missed and max_faces must be at least 1, got "
                            f"{self.redetect_every}, {self.max_missed}, {self.max_faces}")
        if not 0.0 <= self.velocity_gain <= 1.0 or not 0.0 < self.iou_match <= 1.0:
            raise UserError(f"velocity_gain must be in [0, 1] and iou_match in (0, 1], got "
                            f"{self.velocity_gain}, {self.iou_match}")


@dataclass(frozen=True)
class FaceRoi:
    """One face's crop for this frame: ``matrix`` (2, 3) image -> crop pixels; the square box
    ``(cx, cy, side)`` image pixels; ``rotation_deg`` as ``crops.crop_matrix``; ``source``
    "detection" or "landmarks"; ``detection_score`` when this frame's detector saw the face."""

    track_id: int
    matrix: np.ndarray
    box: tuple[float, float, float]
    rotation_deg: float
    source: str
    detection_score: float | None = None


@dataclass
class Track:
    """A face followed across frames. ``points`` (K, 2) and ``scores`` (K,) from the last update."""

    track_id: int
    box: tuple[float, float, float]
    rotation_deg: float
    box_xyxy: np.ndarray
    points: np.ndarray | None = None
    scores: np.ndarray | None = None
    confidence: float = 1.0
    missed: int = 0
    shift: np.ndarray = field(default_factory=lambda: np.zeros(2))
    from_landmarks: bool = False
    side_ratio: float = 1.0  # detection crop side / landmark box side, measured on the detection crop


def eye_line_deg(left: np.ndarray, right: np.ndarray) -> float:
    """Angle in degrees of the line from the image-left eye to the image-right eye (y down:
    positive when the right end is lower, i.e. the face rolled clockwise as displayed)."""
    dx, dy = np.asarray(right, np.float64) - np.asarray(left, np.float64)
    return math.degrees(math.atan2(dy, dx))


def box_from_landmarks(points: np.ndarray, layout: Layout | None) -> tuple[tuple[float, float, float], float]:
    """Square crop box (cx, cy, side) and roll (degrees) for the next frame from (K, 2) points."""
    visible = np.isfinite(points).all(1)
    rotation_deg = 0.0
    if layout is not None:
        left, right = layout.eye_centre_points(points)
        if np.isfinite(left).all() and np.isfinite(right).all():
            rotation_deg = eye_line_deg(left, right)
    theta = math.radians(rotation_deg)
    level = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    centre = points[visible].mean(0)
    levelled = np.where(visible[:, None], (points - centre) @ level.T, 0.0)
    if layout is not None and layout.num_points == len(points):
        cx, cy, side = face_box_from_points(levelled, visible, layout)
    else:
        lo, hi = levelled[visible].min(0), levelled[visible].max(0)
        (cx, cy), side = (lo + hi) / 2.0, float((hi - lo).max()) * 1.3
    back = level.T @ np.array([cx, cy]) + centre
    return (float(back[0]), float(back[1]), float(side)), rotation_deg


def detector_like_box(box: tuple[float, float, float]) -> np.ndarray:
    """The xyxy box a detector would give for the face whose crop box is ``box`` (cx, cy, side):
    the inverse of ``face_box_from_detection``. Matching detections against this, rather than
    against the landmarks' own extent (eyes to mouth only, for 5 points), keeps ids stable."""
    cx, cy, side = box
    half = side / DETECTION_SCALE / 2.0
    return np.array([cx - half, cy - half, cx + half, cy + half])


class FaceTracker:
    """Tracks with stable ids and their next crops (module docstring). ``crop_size`` is the
    landmark model's input side in pixels; ``layout`` may be None for an unknown point layout
    (then no roll is taken from landmarks and boxes come from the points' extent x1.3)."""

    def __init__(self, crop_size: int, layout: Layout | None, config: TrackerConfig = TrackerConfig()) -> None:
        self.crop_size = crop_size
        self.layout = layout
        if config.min_confidence is None:
            config = replace(config, min_confidence=DEFAULT_MIN_CONFIDENCE)
        self.config = config
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count()
        self._frames_since_detection = 0

    def needs_detection(self) -> bool:
        """Whether this frame should run the detector (the re-detect policy)."""
        return (not self.tracks
                or self._frames_since_detection >= self.config.redetect_every
                or any(track.confidence < self.config.min_confidence for track in self.tracks.values()))

    def _roi(self, track: Track, source: str, score: float | None) -> FaceRoi:
        cx, cy, side = track.box
        if source == "landmarks":
            cx, cy = np.array([cx, cy]) + self.config.velocity_gain * track.shift
        matrix = crop_matrix(cx, cy, side, self.crop_size, rotation_deg=track.rotation_deg)
        return FaceRoi(track.track_id, matrix, (float(cx), float(cy), float(side)), track.rotation_deg, source, score)

    def refine(self, rois: list[FaceRoi], results: dict[int, tuple[np.ndarray, np.ndarray]]) -> list[FaceRoi]:
        """Second crops, this same frame, for the faces whose crop came from the detector.

        ``results`` are the landmarks found in ``rois``; they update those tracks, and each such
        face gets the crop its landmarks give (as the next frame would), so that a new track's
        first points are framed like all its later ones: without this, the detector's framing
        (about 9% larger and 5% higher than the landmark box on the bundled clip) gives the first
        frame different points, and the smoothing carries that start-up step for seconds. The
        other rois are returned as they are."""
        fresh = {roi.track_id: results[roi.track_id] for roi in rois
                 if roi.source == "detection" and roi.track_id in results}
        self.update(fresh)
        return [self._roi(self.tracks[roi.track_id], "landmarks", roi.detection_score)
                if roi.track_id in fresh and roi.track_id in self.tracks else roi for roi in rois]

    def _predicted_boxes(self) -> np.ndarray:
        shifts = np.array([np.tile(self.config.velocity_gain * t.shift, 2) for t in self.tracks.values()])
        return np.array([t.box_xyxy for t in self.tracks.values()]) + shifts

    def rois(self, detections: Detections | None) -> list[FaceRoi]:
        """This frame's crops, one per track: from ``detections`` when the detector ran (None
        when it did not, as ``needs_detection`` said), else from each track's last landmarks."""
        if detections is None:
            self._frames_since_detection += 1
            return [self._roi(track, "landmarks", None) for track in self.tracks.values()]
        self._frames_since_detection = 1
        return self._assign(detections)

    def _assign(self, detections: Detections) -> list[FaceRoi]:
        tracks = list(self.tracks.values())
        det_order = np.argsort(-detections.scores, kind="stable")[: self.config.max_faces]
        iou = iou_matrix(self._predicted_boxes(), detections.boxes[det_order]) if tracks else np.zeros((0, 0))
        pairs: dict[int, int] = {}
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            ti, di = np.unravel_index(flat, iou.shape)
            if iou[ti, di] < self.config.iou_match:
                break
            if ti not in pairs and di not in pairs.values():
                pairs[int(ti)] = int(di)
        rois = []
        for ti, track in enumerate(tracks):
            if ti in pairs:
                det = int(det_order[pairs[ti]])
                track.missed = 0
                score = float(detections.scores[det])
                if track.points is None or track.confidence < self.config.min_confidence:
                    track.box, track.rotation_deg = self._detection_box(detections, det)
                    track.box_xyxy = detections.boxes[det].astype(np.float64).copy()
                    track.shift, track.from_landmarks = np.zeros(2), False
                    rois.append(self._roi(track, "detection", score))
                else:
                    rois.append(self._roi(track, "landmarks", score))
                continue
            track.missed += 1
            if track.missed >= self.config.max_missed or track.confidence < self.config.min_confidence:
                del self.tracks[track.track_id]
            else:
                rois.append(self._roi(track, "landmarks", None))
        for di, det in enumerate(det_order):
            if di in pairs.values() or len(self.tracks) >= self.config.max_faces:
                continue
            box, rotation_deg = self._detection_box(detections, int(det))
            track = Track(next(self._ids), box, rotation_deg, detections.boxes[det].astype(np.float64).copy())
            self.tracks[track.track_id] = track
            rois.append(self._roi(track, "detection", float(detections.scores[det])))
        return rois

    @staticmethod
    def _detection_box(detections: Detections, i: int) -> tuple[tuple[float, float, float], float]:
        right_eye, left_eye = detections.keypoints[i, 0], detections.keypoints[i, 1]  # subject's
        return face_box_from_detection(detections.boxes[i]), eye_line_deg(right_eye, left_eye)

    def update(self, results: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Store each track's new landmarks: {track_id: ((K, 2) image points, (K,) scores)}.

        Sets the next frame's crop from the points, the track's confidence (mean score) and its
        displacement since the last update. Ids not in ``results`` keep their previous state.
        """
        for track_id, (points, scores) in results.items():
            track = self.tracks.get(track_id)
            if track is None:
                continue
            points = np.asarray(points, np.float64)
            scores = np.asarray(scores, np.float64)
            visible = np.isfinite(points).all(1)
            if visible.sum() < 2:
                track.confidence = 0.0
                continue
            box, rotation_deg = box_from_landmarks(points, self.layout)
            if not track.from_landmarks:
                # Anchor the crop's scale to the detector's: a crop cut from the points' own extent
                # feeds the model's slight inward bias back (each crop a little tighter than the
                # last: on a still face the side shrank 8% in 15 frames and the points drifted
                # with it), so the landmark box keeps the ratio seen on the detection crop.
                track.side_ratio = float(np.clip(track.box[2] / box[2], *SIDE_RATIO_RANGE))
            box = (box[0], box[1], box[2] * track.side_ratio)
            # motion only between two landmark boxes: a detection box is framed differently
            track.shift = np.array(box[:2]) - np.array(track.box[:2]) if track.from_landmarks else np.zeros(2)
            track.box, track.rotation_deg, track.from_landmarks = box, rotation_deg, True
            track.points, track.scores = points, scores
            track.confidence = float(np.nanmean(scores))
            track.box_xyxy = detector_like_box(box)

    @property
    def track_ids(self) -> list[int]:
        return sorted(self.tracks)
