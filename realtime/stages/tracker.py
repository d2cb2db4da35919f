"""Face tracks with stable ids, and each face's next crop: track, don't re-detect.

numpy + cv2 only (through ``realtime.geometry.crops``). The tracker is a plain object the pipeline calls
twice a frame, with no threads:

    detections = detector(image) if tracker.needs_detection() else None
    rois = tracker.rois(detections)                 # one crop matrix per face
    ... landmarks for every roi, in one batch ...
    tracker.update({roi.track_id: (points, scores)})

Re-detect policy: run the detector when there are no tracks, when a track's confidence (the mean
of its per-point scores, e.g. soft-argmax peaks) fell below ``min_confidence``, or when the
re-detect interval has passed since the last detection. The interval starts at ``redetect_every``
frames and doubles after each detection round that changed nothing (every track found, no new
face), up to ``redetect_every_max``; any change sets it back. A steady scene thus pays for the
detector about once a second while a face that enters is still picked up within that second.
An unsure track asks for the detector on the next frame; each detection round that finds its face
where its crop already was (framed as the detector would frame it: ``_framed_like``) doubles the
frames it waits before asking again (1, 2, 4, ... up to ``redetect_every``), a round that finds it
elsewhere halves them (that round re-frames it from the detection anyway), and a round that misses
it sets them back to 1. Small or half-hidden faces score below the threshold for good
(``video_01`` of docs/data.md, faces of 40-70 px: three of five tracks stay at 0.01-0.07 against
0.09): asking on every frame ran the detector (both BlazeFace models, 11-13 ms a 640x480 frame
here), and a second landmark pass for its framing, on all 90 frames (29 of the 32 ms a frame
took), while the detector kept finding the same faces where the tracks already were. With the
backoff, and the framing judged against each track's own detection-to-landmark offset (small
faces' landmark boxes sit 0.25-0.37 sides from the detector's framing for good: ``_framed_like``),
the detector runs on 25 of the 90 frames with the model of 2026-12-06 (55 without the offset),
with the same five ids and all five faces in every frame.

Matching, in turn: greedy by IoU (highest first, at least ``iou_match``) against each track's
predicted box (its last landmark box moved by its last displacement x ``velocity_gain``), then by
centre distance (under half a face, then under ``REMATCH_GAP`` faces: small faces' boxes jitter
by more than IoU forgives, and a crop that slid off its face gets it back). A matched track keeps
its id; a track missed by ``max_missed`` detection rounds in a row ends, but its id and last box are
kept for ``keep_lost`` frames and go back to a detection near that box (a face the detector lost
for a few frames keeps its id); any other detection starts a new track, unless it lies on a face
that already has one. Two tracks that meet on one face become one (the older id stays).

Crops. From landmarks: the eye line (layout's eye centres) gives the roll; the points are levelled
by it, ``crops.face_box_from_points`` (the training recipe's box) is taken on the levelled points,
and its centre is turned back. From a detection: ``crops.face_box_from_detection`` on the box, roll
from BlazeFace's two eye keypoints. ``crops.crop_matrix`` then turns the content by the roll so the
eyes come out level. A matched track whose crop is still framed like the detection keeps its
landmark crop on detection frames, so the framing does not jump every ``redetect_every`` frames;
one that is not takes the detector's. Confidence decides when to ask the detector, not whether
to re-frame: an unsure track the detector finds where its crop already is keeps that crop (a
re-framing costs a second landmark pass for the face, and gave a crop close to the one kept).
Rolls are kept in full (-180 to 180 degrees: a face upside down is cut upright); a confident track
that takes the detector's framing keeps its own roll when the detector's differs by more than
``ROLL_TRUST_DEG`` (faces at any roll: ``realtime/stages/turned_search.py``).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from realtime.geometry.crops import DETECTION_SCALE, crop_matrix, face_box_from_detection, face_box_from_points
from realtime.detect.detector import Detections, iou_matrix
from realtime.core.errors import UserError
from realtime.geometry.layouts import Layout


SIDE_RATIO_RANGE = (0.67, 1.5)  # detection vs landmark box sides beyond this mean a bad fit: clamp
DEFAULT_MIN_CONFIDENCE = 0.3  # for weights without a calibrated value (picked for the 5-point placeholder)
# A detection starts a new track only this many face sides from every track's centre: two faces side
# by side are about 1 apart; a second box on one face (the forehead, a hand at the face) is closer.
NEW_TRACK_GAP = 0.75
REMATCH_GAP = 1.0  # a track or a lost face's id goes to a detection within one face side of its box
# A confident track keeps the roll its landmarks measured when a detection's eye keypoints say
# otherwise by more than this: BlazeFace places them as if upright on an upside-down face.
ROLL_TRUST_DEG = 45.0
# The most a track's detection-to-landmark centre offset may be, in box sides: a bad first fit must
# not teach the framing check to accept a crop that slid off its face.
MAX_DETECT_OFFSET = 0.35


@dataclass(frozen=True)
class TrackerConfig:
    """``redetect_every`` frames (>= 1), growing to ``redetect_every_max`` in a steady scene
    (module docstring; set it to ``redetect_every`` for a fixed interval); ``min_confidence`` on the mean per-point score;
    ``iou_match`` minimum IoU to match a detection to a track; ``velocity_gain`` 0..1 fraction
    of the last displacement added to the next crop; ``max_missed`` detection rounds;
    ``keep_lost`` frames an ended track's id is kept for a detection near its last box.

    ``min_confidence`` depends on the landmark model's score scale (soft-argmax peaks differ
    between models: the bundled 68-point model's real faces score 0.20-0.23, the 5-point
    placeholder's 0.25-0.50). None (the default) takes the value calibrated into the weights
    file (``track_min_confidence`` in its info, written by ``python -m train.faces68``), else
    ``DEFAULT_MIN_CONFIDENCE``; ``FrameProcessor`` resolves it. To tune live, assign a new config
    to ``FaceTracker.config`` (``dataclasses.replace``): it is read on every call.
    """

    redetect_every: int = 10
    redetect_every_max: int = 30
    min_confidence: float | None = None
    iou_match: float = 0.3
    velocity_gain: float = 0.5
    max_missed: int = 2
    max_faces: int = 8
    keep_lost: int = 30

    def __post_init__(self) -> None:
        if self.redetect_every < 1 or self.max_missed < 1 or self.max_faces < 1 or self.keep_lost < 0:
            raise UserError("redetect_every, max_missed and max_faces must be at least 1 and keep_lost at least 0, "
                            f"got {self.redetect_every}, {self.max_missed}, {self.max_faces}, {self.keep_lost}")
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
    # detection crop centre - landmark box centre, in box sides and the face's levelled frame,
    # measured on the detection crop (``FaceTracker._framed_like`` judges framing against it)
    detect_offset: np.ndarray = field(default_factory=lambda: np.zeros(2))
    recheck: int = 1  # while unsure: frames after a detection round before it asks for the next one


def eye_line_deg(left: np.ndarray, right: np.ndarray) -> float:
    """Angle in degrees of the line from the image-left eye to the image-right eye (y down:
    positive when the right end is lower, i.e. the face rolled clockwise as displayed)."""
    dx, dy = np.asarray(right, np.float64) - np.asarray(left, np.float64)
    return math.degrees(math.atan2(dy, dx))


def _rotation(degrees: float) -> np.ndarray:
    """2x2 matrix turning a vector by ``degrees`` (image axes, y down: as ``eye_line_deg`` measures)."""
    t = math.radians(degrees)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def _turn(vector: np.ndarray, degrees: float) -> np.ndarray:
    """(2,) ``vector`` turned by ``degrees``."""
    return _rotation(degrees) @ np.asarray(vector, np.float64)


def box_from_landmarks(points: np.ndarray, layout: Layout | None) -> tuple[tuple[float, float, float], float]:
    """Square crop box (cx, cy, side) and roll (degrees) for the next frame from (K, 2) points."""
    visible = np.isfinite(points).all(1)
    rotation_deg = 0.0
    if layout is not None:
        left, right = layout.eye_centre_points(points)
        if np.isfinite(left).all() and np.isfinite(right).all():
            rotation_deg = eye_line_deg(left, right)
    level = _rotation(-rotation_deg)  # turns the face upright
    centre = points[visible].mean(0)
    levelled = np.where(visible[:, None], (points - centre) @ level.T, 0.0)
    if layout is not None and layout.num_points == len(points):
        cx, cy, side = face_box_from_points(levelled, visible, layout)
    else:
        lo, hi = levelled[visible].min(0), levelled[visible].max(0)
        (cx, cy), side = (lo + hi) / 2.0, float((hi - lo).max()) * 1.3
    back = level.T @ np.array([cx, cy]) + centre
    return (float(back[0]), float(back[1]), float(side)), rotation_deg


def _greedy(cost: np.ndarray, below: float, pairs: dict[int, int]) -> dict[int, int]:
    """Add to ``pairs`` {row: column} the cheapest free (row, column) of ``cost`` (R, C) in
    turn, while the cost stays below ``below``; returns ``pairs``."""
    for flat in np.argsort(cost, axis=None, kind="stable"):
        row, col = (int(v) for v in np.unravel_index(flat, cost.shape))
        if cost[row, col] >= below:
            break
        if row not in pairs and col not in pairs.values():
            pairs[row] = col
    return pairs


def _centre_gaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between the centres of xyxy boxes a (N, 4) and b (M, 4), in units of their mean
    side -> (N, M); below 0.5 the centres lie within half a face of each other: one face."""
    centres_a, centres_b = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
    sides_a, sides_b = (a[:, 2:] - a[:, :2]).mean(1), (b[:, 2:] - b[:, :2]).mean(1)
    scale = np.maximum((sides_a[:, None] + sides_b[None]) / 2, 1e-9)
    return np.linalg.norm(centres_a[:, None] - centres_b[None], axis=2) / scale


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
        self._lost: dict[int, tuple[np.ndarray, int]] = {}  # id -> (last xyxy box, frames since lost)
        self._steady_rounds = 0  # detection rounds in a row that changed nothing

    def _interval(self) -> int:
        """Frames between detections now: ``redetect_every`` doubled per steady round, capped."""
        every = self.config.redetect_every
        return min(every << min(self._steady_rounds, 16), max(every, self.config.redetect_every_max))

    def needs_detection(self) -> bool:
        """Whether this frame should run the detector (the re-detect policy)."""
        since, low = self._frames_since_detection, self.config.min_confidence
        return (not self.tracks or since >= self._interval()
                or any(t.confidence < low and since >= t.recheck for t in self.tracks.values()))

    def unsure_ids(self) -> list[int]:
        """The ids of the tracks whose last landmarks scored below ``min_confidence``."""
        return [i for i, track in self.tracks.items() if track.confidence < self.config.min_confidence]

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
        self._drop_duplicates()
        self._lost = {i: (box, age + 1) for i, (box, age) in self._lost.items() if age < self.config.keep_lost}
        if detections is None:
            self._frames_since_detection += 1
            return [self._roi(track, "landmarks", None) for track in self.tracks.values()]
        self._frames_since_detection = 1
        return self._assign(detections)

    def _drop_duplicates(self) -> None:
        """End the younger of two tracks whose boxes' centres came within half a face of each
        other (two crops that followed their landmarks onto one face): one face, one track."""
        tracks = sorted(self.tracks.values(), key=lambda t: t.track_id)
        if len(tracks) < 2:
            return
        gap = _centre_gaps(*(np.array([t.box_xyxy for t in tracks]),) * 2)
        for j in range(1, len(tracks)):
            if any(gap[i, j] < 0.5 and tracks[i].track_id in self.tracks for i in range(j)):
                del self.tracks[tracks[j].track_id]

    def _match(self, boxes: np.ndarray) -> dict[int, int]:
        """{track index: detection index} for detections ``boxes`` (N, 4): greedy by IoU with the
        predicted boxes (at least ``iou_match``), then, among those left, greedy by centre gap
        below half a face (a small face's box jitters by more than IoU forgives), then below
        ``REMATCH_GAP`` faces (a crop that slid off its face while following its landmarks gets
        its face back instead of the face getting a second id)."""
        predicted = self._predicted_boxes()
        pairs = _greedy(-iou_matrix(predicted, boxes), -self.config.iou_match, {})
        gaps = _centre_gaps(predicted, boxes)
        return _greedy(gaps, REMATCH_GAP, _greedy(gaps, 0.5, pairs))

    def _assign(self, detections: Detections) -> list[FaceRoi]:
        tracks = list(self.tracks.values())
        det_order = np.argsort(-detections.scores, kind="stable")[: self.config.max_faces]
        boxes = detections.boxes[det_order].astype(np.float64)
        pairs = self._match(boxes) if tracks and len(det_order) else {}
        rois = []
        for ti, track in enumerate(tracks):
            if ti in pairs:
                det = int(det_order[pairs[ti]])
                track.missed = 0
                if track.confidence < self.config.min_confidence:  # unsure: wait longer while it stays framed
                    framed = track.points is not None and self._framed_like(track, detections.boxes[det])
                    track.recheck = min(2 * track.recheck, self.config.redetect_every) if framed else max(1, track.recheck // 2)
                rois.append(self._matched_roi(track, detections, det))
                continue
            # Unconfident tracks too get ``max_missed`` rounds (the detector runs often for them):
            # on small faces it misses a round now and then, and hiding such a face at its
            # first miss dropped a third of a handheld clip's frames below 4 of its 5 faces.
            track.missed += 1
            track.recheck = 1
            if track.missed >= self.config.max_missed:
                self._lose(track)
            else:
                rois.append(self._roi(track, "landmarks", None))
        fresh = [di for di in range(len(det_order)) if di not in pairs.values() and self._is_new_face(boxes[di])]
        lost_ids = list(self._lost)
        revived = _greedy(_centre_gaps(np.array([self._lost[i][0] for i in lost_ids]), boxes[fresh]),
                          REMATCH_GAP, {}) if lost_ids and fresh else {}
        by_detection = {fresh[di]: lost_ids[li] for li, di in revived.items()}
        for di in fresh:
            if len(self.tracks) >= self.config.max_faces:
                break
            det = int(det_order[di])
            if not self._is_new_face(boxes[di]):  # a second box on a face that got its track just now
                continue
            track_id = by_detection.get(di)
            if track_id is None:
                track_id = next(self._ids)
            else:
                del self._lost[track_id]
            crop_box, rotation_deg = self._detection_box(detections, det)
            track = Track(track_id, crop_box, rotation_deg, boxes[di].copy())
            self.tracks[track_id] = track
            rois.append(self._roi(track, "detection", float(detections.scores[det])))
        steady = bool(tracks) and len(pairs) == len(tracks) and not fresh and all(r.source == "landmarks" for r in rois)
        self._steady_rounds = self._steady_rounds + 1 if steady else 0
        return rois

    def _is_new_face(self, box: np.ndarray) -> bool:
        """Whether the xyxy ``box`` lies ``NEW_TRACK_GAP`` faces or more from every track."""
        boxes = [t.box_xyxy for t in self.tracks.values()]
        return not boxes or bool(_centre_gaps(np.array(boxes), box[None]).min() >= NEW_TRACK_GAP)

    def _matched_roi(self, track: Track, detections: Detections, det: int) -> FaceRoi:
        """A detected track's crop: its landmarks' while still framed like the detection (no
        framing jump every ``redetect_every`` frames), confident or not, else the detector's. The
        framing check catches crops that drifted while following their landmarks (on faces of
        40-70 px a crop grew 3x or shrank to a few pixels within 30 frames, still "confident")."""
        score = float(detections.scores[det])
        if track.points is not None and self._framed_like(track, detections.boxes[det]):
            return self._roi(track, "landmarks", score)
        box, rotation_deg = self._detection_box(detections, det)
        if track.points is not None and track.confidence >= self.config.min_confidence \
                and abs((rotation_deg - track.rotation_deg + 180.0) % 360.0 - 180.0) > ROLL_TRUST_DEG:
            rotation_deg = track.rotation_deg  # a face far from upright: its eye keypoints are a guess
        track.box, track.rotation_deg = box, rotation_deg
        track.box_xyxy = detections.boxes[det].astype(np.float64).copy()
        track.shift, track.from_landmarks = np.zeros(2), False
        return self._roi(track, "detection", score)

    @staticmethod
    def _framed_like(track: Track, box_xyxy: np.ndarray, max_off: float = 0.25) -> bool:
        """Whether the track's crop box is still framed like the detection ``box_xyxy`` would frame
        its face: sides within ``SIDE_RATIO_RANGE``, centres within a quarter of a side once the
        track's own detection-to-landmark offset (``Track.detect_offset``) is allowed for.

        The offset is the face's, not drift: on the small faces of ``video_01`` (40-50 px) the
        landmark box sat 0.25-0.37 sides from the detector's framing round after round, so the
        check failed on every detection round, which asked for the detector again on the next
        frame (55 of 90 frames) and re-framed the face each time."""
        cx, cy, side = face_box_from_detection(box_xyxy)
        ratio = side / max(track.box[2], 1e-9)
        expected = np.array(track.box[:2]) + _turn(track.detect_offset, track.rotation_deg) * track.box[2]
        off = math.hypot(cx - expected[0], cy - expected[1]) / side
        return SIDE_RATIO_RANGE[0] <= ratio <= SIDE_RATIO_RANGE[1] and off <= max_off

    def _lose(self, track: Track) -> None:
        """End ``track`` but remember its id and last box for ``keep_lost`` frames."""
        del self.tracks[track.track_id]
        self._lost[track.track_id] = (track.box_xyxy.copy(), 0)

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
                offset = _turn((np.array(track.box[:2]) - np.array(box[:2])) / track.box[2], -rotation_deg)
                norm = float(np.hypot(*offset))
                track.detect_offset = offset * min(1.0, MAX_DETECT_OFFSET / norm) if norm > 0 else offset
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
