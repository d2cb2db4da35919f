"""The one typed per-frame record that every pipeline stage reads and extends.

numpy only. Coordinates follow ``realtime/__init__.py``: (x, y) pixels, pixel centres at integer
coordinates, boxes (x0, y0, x1, y1). Times are seconds (``t_capture``) or milliseconds
(``timings`` values); angles are degrees.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FRAME_COLUMNS = ("width", "height", "rotation_deg", "mirrored")  # CSV: the frame the coordinates refer to

@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees (convention in ``realtime/stages/pose.py``: yaw about the camera's
    vertical axis, pitch about its horizontal axis, roll about its optical axis)."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float


@dataclass
class FaceResult:
    """One face in one frame.

    ``box_xyxy`` (4,) image pixels; ``points`` (K, 2) image pixels; ``scores`` (K,) per-point
    confidence (soft-argmax peak, higher is surer); ``pose`` None until the pose stage runs.
    ``detection_score`` is the detector's score when this frame's box came from the detector,
    else None (the box came from tracking).
    """

    track_id: int
    box_xyxy: np.ndarray
    points: np.ndarray
    scores: np.ndarray
    pose: HeadPose | None = None
    detection_score: float | None = None

    def __post_init__(self) -> None:
        self.box_xyxy = np.asarray(self.box_xyxy, dtype=np.float64).reshape(4)
        self.points = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(self.scores) != len(self.points):
            raise ValueError(f"{len(self.points)} points but {len(self.scores)} scores")

    def to_dict(self, digits: int = 2) -> dict[str, Any]:
        """This face as the JSON-able dict of a ``--landmarks`` record (``face_to_dict``)."""
        return face_to_dict(self, digits)


@dataclass
class FramePacket:
    """One frame and everything the stages found in it.

    ``frame_id`` counts input frames from 0 (dropped frames keep their ids, so gaps show drops);
    ``t_capture`` seconds, from the stream's pts for files or ``time.monotonic()`` for cameras;
    ``image`` (H, W, 3) uint8 RGB; ``timings`` stage name -> milliseconds; ``dropped`` how many
    frames the entrance mailbox has dropped so far (cumulative); ``source`` the input file the frame
    came from (``capture.CapturedFrame.source``: an image's name inside its folder, or the image or
    video as given), None for a camera. ``skipped`` is None for a processed frame, else why the
    input could not be processed (an unreadable image in a folder of stills): such a packet has no
    faces and a (0, 0, 3) image, and its record says so. ``rotation_deg`` (0, 90, 180 or 270,
    counter-clockwise) and ``mirrored`` say how ``image``, the frame all coordinates refer to, was
    turned from the pixels as stored or captured (a video's display rotation, a camera's
    ``--rotate``; docs/rotation.md).
    """

    frame_id: int
    t_capture: float
    image: np.ndarray
    faces: list[FaceResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    dropped: int = 0
    source: str | None = None
    skipped: str | None = None
    rotation_deg: int = 0
    mirrored: bool = False

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {self.image.shape} {self.image.dtype}")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def to_dict(self, digits: int = 2) -> dict[str, Any]:
        """This frame as its ``--landmarks OUT.jsonl`` record (``packet_to_dict``)."""
        return packet_to_dict(self, digits)


def _round_list(values: np.ndarray, digits: int) -> list[Any]:
    """Nested lists of Python floats rounded to ``digits``; NaN becomes None (valid JSON)."""
    rounded = np.round(np.asarray(values, dtype=np.float64), digits)
    as_objects = rounded.astype(object)
    as_objects[np.isnan(rounded)] = None
    return as_objects.tolist()


def face_to_dict(face: FaceResult, digits: int = 2) -> dict[str, Any]:
    """JSON-able dict of one face: track_id, box, points [[x, y], ...], scores, pose or None."""
    pose = None
    if face.pose is not None:
        pose = {"yaw_deg": round(face.pose.yaw_deg, digits), "pitch_deg": round(face.pose.pitch_deg, digits),
                "roll_deg": round(face.pose.roll_deg, digits)}
    return {
        "track_id": int(face.track_id),
        "box_xyxy": _round_list(face.box_xyxy, digits),
        "points": _round_list(face.points, digits),
        "scores": _round_list(face.scores, 4),
        "pose": pose,
        "detection_score": None if face.detection_score is None else round(float(face.detection_score), 4),
    }


def packet_to_dict(packet: FramePacket, digits: int = 2) -> dict[str, Any]:
    """JSON-able dict of one frame (the image is left out): one ``--landmarks OUT.jsonl`` record;
    ``source`` is None (null) for a camera's frames; ``width`` and ``height`` are the frame the
    coordinates refer to, turned from the stored one by ``rotation_deg`` and ``mirrored``. A skipped
    input (``FramePacket.skipped``) has ``"skipped": <reason>``, null width and height and no faces;
    processed frames have no such key."""
    record = {
        "frame_id": int(packet.frame_id),
        "source": packet.source,
        "t_capture": round(float(packet.t_capture), 6),
        "width": None if packet.skipped else packet.width,
        "height": None if packet.skipped else packet.height,
        "rotation_deg": int(packet.rotation_deg),
        "mirrored": bool(packet.mirrored),
        "faces": [face_to_dict(face, digits) for face in packet.faces],
        "timings_ms": {name: round(float(ms), 3) for name, ms in packet.timings.items()},
        "dropped": int(packet.dropped),
    }
    if packet.skipped:
        record["skipped"] = packet.skipped
    return record


def face_from_dict(record: dict[str, Any]) -> FaceResult:
    """Inverse of ``face_to_dict`` (to within its rounding); None coordinates become NaN."""
    pose = record.get("pose")
    return FaceResult(
        track_id=int(record["track_id"]),
        box_xyxy=np.array(record["box_xyxy"], dtype=np.float64),
        points=np.array(record["points"], dtype=np.float64).reshape(-1, 2),
        scores=np.array(record["scores"], dtype=np.float64),
        pose=None if pose is None else HeadPose(pose["yaw_deg"], pose["pitch_deg"], pose["roll_deg"]),
        detection_score=record.get("detection_score"),
    )


def packet_to_json(packet: FramePacket, digits: int = 2) -> str:
    """One compact JSON line (no trailing newline) for a ``--landmarks OUT.jsonl`` file."""
    return json.dumps(packet_to_dict(packet, digits), separators=(",", ":"), allow_nan=False)


def csv_header(num_points: int) -> list[str]:
    """Column names of ``packet_to_csv_rows``: one row per face, points as x0, y0, s0, x1, ...;
    ``source`` the input file (empty for a camera); ``width``, ``height``, ``rotation_deg`` and
    ``mirrored`` (0 or 1) the frame the coordinates refer to, as in ``packet_to_dict``."""
    per_point = [f"{axis}{k}" for k in range(num_points) for axis in ("x", "y", "s")]
    return ["frame_id", "t_capture", "source", *FRAME_COLUMNS, "track_id", "box_x0", "box_y0", "box_x1", "box_y1",
            "yaw_deg", "pitch_deg", "roll_deg", *per_point]


def packet_to_csv_rows(packet: FramePacket, digits: int = 2) -> list[list[Any]]:
    """Rows matching ``csv_header(K)``, one per face; a frame with no face gives one short row
    holding only frame_id, t_capture, source and the frame's size and turn, so every input frame
    appears in the file.
    Missing values (no pose, NaN points, no source) are empty strings."""
    def cell(value: float | None, nd: int = digits) -> Any:
        return "" if value is None or not np.isfinite(value) else round(float(value), nd)

    size = ("", "") if packet.skipped else (packet.width, packet.height)
    frame = [packet.frame_id, round(packet.t_capture, 6), packet.source or "", *size, int(packet.rotation_deg),
             int(packet.mirrored)]
    if not packet.faces:
        return [frame]
    rows = []
    for face in packet.faces:
        pose = face.pose
        angles = (None, None, None) if pose is None else (pose.yaw_deg, pose.pitch_deg, pose.roll_deg)
        per_point = [c for (x, y), s in zip(face.points, face.scores) for c in (cell(x), cell(y), cell(s, 4))]
        rows.append([*frame, face.track_id,
                     *(cell(v) for v in face.box_xyxy), *(cell(a) for a in angles), *per_point])
    return rows
