"""Faces at any roll: the detector also tries the frame turned by a quarter turn, when the upright
frame is not enough.

numpy + cv2 only, no threads (a lock: live mode decides on its detector thread); the pipeline (``FrameProcessor.steps``) runs the detector, this
module decides when, on which turn, and puts the answer back into the frame.

Why: BlazeFace was trained on upright faces. On the bundled clip turned in its pixels it still
finds a face rolled by 90 degrees (score 0.77-0.86 against 0.92-0.96 upright) with its eye
keypoints about right, but an upside-down face it finds with a lower score (0.56-0.66) and its
keypoints placed as if the face were upright: the tracker then cuts an upside-down crop, the
landmarks come out unsure (mean point score 0.04 against 0.18) and wrong (75% NME on 7 points).
The same face in the frame turned by 180 degrees scores 0.92-0.96, with keypoints that, mapped
back, give its true roll; from then on the tracker follows the roll its landmarks measure (the
eye line, ``stages/tracker.py``), whatever it is.

When: on a detection round (the tracker asks for one) where the upright pass found no face (on
every ``IDLE_EVERY``-th such round: an empty scene pays for one turned pass in three), where there
is no track yet (the start of a scene, every still picture), or where a track is unsure (its
landmarks score below the tracker's threshold) and has had fewer than one full cycle of turns.
Each such round adds ONE turned pass, cycling 180, 90, 270 degrees, so a face at any roll is found
within three rounds (the first, for an upside-down face). On upright footage with sure tracks
nothing runs; a track that stays unsure (a face half hidden) costs three passes, not one a frame.

How: the turned detections are mapped back to the frame (boxes by their corners, keypoints point
by point) and merged with the upright ones (``merge``): a turned detection replaces the upright
detection of the same face only when it scores ``TURNED_MARGIN`` higher, and adds a face the upright
pass did not see only when it scores at least ``TURNED_MIN_SCORE``. Measured on real upright
footage (``video_01``, faces of 40-70 px), turned passes found false faces (hands, a chin turned
over) at 0.43-0.59, which these two rules keep out, while a turned face's own turn scores 0.9+.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from realtime.detect.blazeface import Detections, iou_matrix
from realtime.geometry.crops import invert_affine, transform_points
from realtime.geometry.orientation import Orientation

TURN_ORDER = (2, 1, 3)  # counter-clockwise quarter turns, tried in turn: upside down first
IDLE_EVERY = 3  # rounds with no face found: one turned pass in this many
TURNED_MARGIN = 0.1  # a turned detection replaces an upright one of its face by this much more score
TURNED_MIN_SCORE = 0.75  # a face only a turned pass saw needs at least this score


def detections_back(detections: Detections, quarters: int, width: int, height: int) -> Detections:
    """``detections`` found in a ``width`` x ``height`` frame turned by ``quarters`` counter-clockwise
    quarter turns (``orientation.turn_image``), in the frame's own pixels."""
    if not len(detections):
        return detections
    back = invert_affine(Orientation(quarters).matrix(width, height))
    x0, y0, x1, y1 = (detections.boxes[:, i] for i in range(4))
    corners = transform_points(np.stack([np.stack([x0, y0], 1), np.stack([x1, y1], 1)], 1), back)
    boxes = np.concatenate([corners.min(1), corners.max(1)], axis=1)
    return Detections(boxes, detections.scores.copy(), transform_points(detections.keypoints, back))


def same_faces(a: np.ndarray, b: np.ndarray, same_iou: float = 0.3) -> np.ndarray:
    """(N, M) bool: xyxy boxes ``a`` (N, 4) and ``b`` (M, 4) on one face (IoU above ``same_iou``,
    or centres within half their mean side)."""
    centres_a, centres_b = (a[:, :2] + a[:, 2:]) / 2, (b[:, :2] + b[:, 2:]) / 2
    sides = ((a[:, 2:] - a[:, :2]).mean(1)[:, None] + (b[:, 2:] - b[:, :2]).mean(1)[None]) / 2
    gaps = np.linalg.norm(centres_a[:, None] - centres_b[None], axis=2) / np.maximum(sides, 1e-9)
    return (iou_matrix(a, b) > same_iou) | (gaps < 0.5)


def merge(upright: Detections, turned: Detections, max_faces: int = 16) -> Detections:
    """The upright pass's detections with a turned pass's (already in the frame's pixels): each
    turned detection replaces the upright ones of its face when it scores ``TURNED_MARGIN`` more
    than the best of them, is dropped when it does not, and is added, on a face of its own, from
    ``TURNED_MIN_SCORE`` up. Best first, at most ``max_faces``."""
    if not len(turned):
        return upright
    same = same_faces(turned.boxes, upright.boxes)
    best_upright = np.where(same, upright.scores[None], -np.inf).max(1, initial=-np.inf)
    won = np.where(same.any(1), turned.scores >= best_upright + TURNED_MARGIN, turned.scores >= TURNED_MIN_SCORE)
    replaced = same[won].any(0)
    keep = np.argsort(-turned.scores[won], kind="stable")  # turned winners on one face: the best only
    winners = np.flatnonzero(won)[keep]
    chosen: list[int] = []
    for i in winners:
        if not any(same_faces(turned.boxes[[i]], turned.boxes[[j]])[0, 0] for j in chosen):
            chosen.append(int(i))
    boxes = np.concatenate([upright.boxes[~replaced], turned.boxes[chosen]])
    scores = np.concatenate([upright.scores[~replaced], turned.scores[chosen]])
    keypoints = np.concatenate([upright.keypoints[~replaced], turned.keypoints[chosen]])
    order = np.argsort(-scores, kind="stable")[:max_faces]
    return Detections(boxes[order], scores[order], keypoints[order])


@dataclass
class TurnedSearch:
    """When and where to look for turned faces (module docstring). ``enabled`` False never turns;
    ``passes`` counts the turned detector passes asked for so far (what the search costs)."""

    enabled: bool = True
    passes: int = 0
    _next: int = field(default=0, repr=False)
    _idle: int = field(default=0, repr=False)
    _tries: dict[int, int] = field(default_factory=dict, repr=False)  # unsure track id -> turned passes seen
    # live mode asks from its detector thread while the worker may reset (realtime.pipeline.detect_ahead)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def turn_for(self, detections: Detections, track_ids: list[int], unsure_ids: list[int]) -> int:
        """The counter-clockwise quarter turns of the frame to detect on now, after an upright pass
        that found ``detections``, with the tracker's ``track_ids`` of which ``unsure_ids`` are
        unsure (``FaceTracker.unsure_ids``); 0 for none."""
        with self._lock:
            return self._turn_for(detections, track_ids, unsure_ids)

    def _turn_for(self, detections: Detections, track_ids: list[int], unsure_ids: list[int]) -> int:
        self._tries = {i: n for i, n in self._tries.items() if i in track_ids}
        if not self.enabled:
            return 0
        if not len(detections):
            self._idle += 1
            wanted = self._idle % IDLE_EVERY == 1
        else:
            wanted = not track_ids or any(self._tries.get(i, 0) < len(TURN_ORDER) for i in unsure_ids)
        if not wanted:
            return 0
        for i in unsure_ids:
            self._tries[i] = self._tries.get(i, 0) + 1
        quarters = TURN_ORDER[self._next]
        self._next = (self._next + 1) % len(TURN_ORDER)
        self.passes += 1
        return quarters

    def reset(self) -> None:
        """Start afresh (a new scene): the first turn first, every track's tries forgotten."""
        with self._lock:
            self._next = self._idle = 0
            self._tries.clear()
