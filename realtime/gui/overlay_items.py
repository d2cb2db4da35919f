"""What the live overlay draws over the video, and its rolling pose plot (a pyqtgraph item).

numpy and cv2 for the marks, Qt (through pyqtgraph) for the plot; no threads. ``FaceLayers``
draws each frame's marks into a copy of the frame (``realtime/io/raster_marks.py``, shared with the
annotated video's drawing): points coloured by confidence (red at score 0, through yellow, to
green at ``DisplayOptions.confidence_full`` and above), boxes, track ids and head pose. Point size,
line widths and the shortest pose axis follow each face's size, in image pixels
(``realtime/io/overlay_scale.py``), so the 68 points of a 50 px face stay distinct dots and the
marks zoom with the image. They were pyqtgraph items until issue 27: with five faces, updating
and painting those items was about half of the GUI thread's busy time (py-spy); drawn into the
frame, the marks of five faces take 2.5 ms a frame (docs/bench/speed.md).

Pose (only when packets carry it) is drawn in perspective with the current camera intrinsics: the
face's rotation placed at the depth where one model unit is one face size (its box side), centred
on its points. Axes: x red (towards the image right for a frontal face), y green (down), z blue
(out of the face, towards the camera); or a cube of that side standing on the face. The 3D frame
and angle conventions are those of ``realtime/stages/pose.py``.
"""
from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np
import pyqtgraph as pg

from realtime.io.overlay_scale import MarkSizes, face_size_px, mark_sizes
from realtime.io.raster_marks import draw_dots, draw_label, draw_segments
from realtime.core.packet import FaceResult, FramePacket
from realtime.stages.pose import CameraIntrinsics, PoseEstimate, angles_to_rotation, place_rotation

ANGLES = ("yaw", "pitch", "roll")
ANGLE_RGB = {"yaw": (255, 90, 90), "pitch": (90, 220, 90), "roll": (90, 160, 255)}
AXIS_RGB = ((255, 40, 40), (40, 220, 40), (40, 120, 255))  # x, y, z
BOX_RGB, ID_RGB, CUBE_RGB = (255, 200, 0), (255, 255, 255), (0, 230, 255)
PLOT_SECONDS = 10.0
OUTLINE_MIN_PX = 5.0  # dots at least this wide (image pixels) get a dark ring
OUTLINE_RGB = (30, 30, 30)
# confidence colours: red -> yellow -> green in CONFIDENCE_LEVELS steps
CONFIDENCE_LEVELS = 16
_ramp = np.linspace(0.0, 1.0, CONFIDENCE_LEVELS)[:, None]
CONFIDENCE_RGB = np.where(_ramp < 0.5, [255, 0, 0] + _ramp * 2 * [0, 255, 0],
                          [255, 255, 0] + (_ramp - 0.5) * 2 * [-255, 0, 0]).round().astype(np.uint8)


@dataclass(frozen=True)
class DisplayOptions:
    """What the overlay draws: layers, pose style ("axes" or "cube"), ``axis_length`` in face
    sizes, which angles the plot shows, and the score drawn fully green."""

    points: bool = True
    boxes: bool = True
    ids: bool = True
    pose: bool = True
    pose_style: str = "axes"
    axis_length: float = 0.6
    plot_angles: tuple[str, ...] = ANGLES
    confidence_full: float = 0.5


def confidence_level(scores: np.ndarray, full: float) -> np.ndarray:
    """(K,) scores -> (K,) int index into ``CONFIDENCE_RGB`` (NaN counts as 0)."""
    t = np.nan_to_num(np.asarray(scores, np.float64) / max(full, 1e-9), nan=0.0)
    return np.round(np.clip(t, 0.0, 1.0) * (CONFIDENCE_LEVELS - 1)).astype(int)


def face_pose_estimate(face: FaceResult, intrinsics: CameraIntrinsics) -> PoseEstimate | None:
    """The face's rotation placed at its points' centre, one model unit = one box side; None
    without pose, points or box."""
    finite = face.points[np.isfinite(face.points).all(1)]
    x0, y0, x1, y1 = face.box_xyxy
    side = max(x1 - x0, y1 - y0)
    if face.pose is None or not len(finite) or not np.isfinite(side) or side <= 0:
        return None
    rotation = angles_to_rotation(face.pose.yaw_deg, face.pose.pitch_deg, face.pose.roll_deg)
    return place_rotation(rotation, finite.mean(0), side, intrinsics)


def pose_segments(pose: PoseEstimate, intrinsics: CameraIntrinsics, length: float, style: str) -> list[np.ndarray]:
    """Line segments in image pixels: ``axes`` -> 3 arrays (2, 2) for x, y, z; ``cube`` -> one
    (24, 2) array of 12 edges. Empty when a point would fall near or behind the camera."""
    if style == "cube":
        h = length / 2.0
        corners = np.array([[x, y, z] for z in (0.0, length) for y in (-h, h) for x in (-h, h)])
        edges = [(0, 1), (1, 3), (3, 2), (2, 0), (4, 5), (5, 7), (7, 6), (6, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
        model = corners[np.array(edges).reshape(-1)]
    else:
        model = np.array([[0, 0, 0], [length, 0, 0], [0, 0, 0], [0, length, 0], [0, 0, 0], [0, 0, -length]], float)
    rotation = cv2.Rodrigues(pose.rvec)[0]
    if ((model @ rotation.T + pose.tvec)[:, 2] < 0.2 * pose.tvec[2]).any():
        return []
    image, _ = cv2.projectPoints(model, pose.rvec, pose.tvec, intrinsics.matrix, None)
    image = image.reshape(-1, 2)
    return [image] if style == "cube" else [image[0:2], image[2:4], image[4:6]]


@dataclass
class DrawnMarks:
    """What ``FaceLayers.render`` drew on its last frame, in image pixels (for tests and tools):
    the dots (positions, RGB, radii), the box edges, the pose marks per face with pose (``axes``:
    (x, y, z) segment pairs; ``cube``: (24, 2) edge ends), their line widths, and the track ids'
    texts with their anchors."""

    points: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    point_rgb: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3), np.uint8))
    point_radius_px: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    boxes: list[np.ndarray] = dataclasses.field(default_factory=list)
    box_width_px: list[float] = dataclasses.field(default_factory=list)
    axes: list[list[np.ndarray]] = dataclasses.field(default_factory=list)
    axis_width_px: list[float] = dataclasses.field(default_factory=list)
    cubes: list[np.ndarray] = dataclasses.field(default_factory=list)
    ids: list[tuple[str, float, float]] = dataclasses.field(default_factory=list)


def box_segments(box: np.ndarray) -> np.ndarray:
    """The (8, 2) segment ends of an xyxy box's four edges, in pairs."""
    x0, y0, x1, y1 = box
    return np.array([(x0, y0), (x1, y0), (x1, y0), (x1, y1), (x1, y1), (x0, y1), (x0, y1), (x0, y0)], np.float64)


class FaceLayers:
    """Draws every face's marks into a copy of the frame with OpenCV (``realtime/io/raster_marks.py``
    says why not pyqtgraph items): points in their confidence colours, boxes, track ids and head
    pose, each sized to its face in image pixels (``realtime/io/overlay_scale.py``), so they zoom
    with the image. ``drawn`` keeps the last frame's marks (``DrawnMarks``)."""

    def __init__(self) -> None:
        self.drawn = DrawnMarks()

    def render(self, packet: FramePacket, options: DisplayOptions, intrinsics: CameraIntrinsics) -> np.ndarray:
        """A copy of ``packet.image`` with its faces' marks drawn as ``options`` says."""
        out = np.array(packet.image, np.uint8, copy=True, order="C")
        drawn = DrawnMarks()
        faces = packet.faces
        face_px = [face_size_px(f) for f in faces]
        sizes = [mark_sizes(px) for px in face_px]
        for face, px, size in zip(faces, face_px, sizes):  # lines first, the dots over them
            box_ok = bool(np.isfinite(face.box_xyxy).all())
            if options.boxes and box_ok:
                drawn.boxes.append(np.asarray(face.box_xyxy, np.float64))
                drawn.box_width_px.append(size.line_px)
                draw_segments(out, box_segments(face.box_xyxy), BOX_RGB, size.line_px)
            pose = face_pose_estimate(face, intrinsics) if options.pose else None
            segments = []
            if pose is not None:
                length = size.axis_length_px(px, options.axis_length) / px  # in face sizes, the pose's unit
                segments = pose_segments(pose, intrinsics, length, options.pose_style)
            if segments and options.pose_style == "cube":
                drawn.cubes.append(segments[0])
                draw_segments(out, segments[0], CUBE_RGB, size.line_px)
            elif segments:
                drawn.axes.append(segments)
                drawn.axis_width_px.append(size.axis_line_px)
                for axis, rgb in zip(segments, AXIS_RGB):
                    draw_segments(out, axis, rgb, size.axis_line_px)
        if options.points and faces:
            self._draw_points(out, faces, sizes, options, drawn)
        if options.ids:
            for face, size in zip(faces, sizes):
                if np.isfinite(face.box_xyxy).all():
                    x0, y0 = face.box_xyxy[:2]
                    text = f"#{face.track_id}"
                    drawn.ids.append((text, float(x0), float(y0)))
                    draw_label(out, text, x0, y0 - 2, size.font_px, ID_RGB, backdrop=0.55)
        self.drawn = drawn
        return out

    @staticmethod
    def _draw_points(out: np.ndarray, faces: list[FaceResult], sizes: list[MarkSizes], options: DisplayOptions,
                     drawn: DrawnMarks) -> None:
        """Each face's finite points as dots of its radius, coloured by score; dots at least
        ``OUTLINE_MIN_PX`` across get a dark ring."""
        for face, size in zip(faces, sizes):
            ok = np.isfinite(face.points).all(1)
            rgb = CONFIDENCE_RGB[confidence_level(face.scores, options.confidence_full)][ok]
            outline = OUTLINE_RGB if 2 * size.point_radius_px >= OUTLINE_MIN_PX else None
            draw_dots(out, face.points[ok], size.point_radius_px, rgb, outline)
            drawn.points = np.concatenate([drawn.points, face.points[ok]])
            drawn.point_rgb = np.concatenate([drawn.point_rgb, rgb])
            drawn.point_radius_px = np.concatenate([drawn.point_radius_px, np.full(int(ok.sum()), size.point_radius_px)])


class PosePlot:
    """Rolling yaw/pitch/roll of the oldest track over the last ``PLOT_SECONDS`` of stream time."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        plot.setLabel("bottom", "seconds")
        plot.setLabel("left", "degrees")
        plot.setXRange(-PLOT_SECONDS, 0.0, padding=0)
        plot.setYRange(-90.0, 90.0, padding=0)
        # a zero line, not showGrid: the alpha-blended grid cost 6-15 ms a frame to paint here
        plot.addItem(pg.InfiniteLine(0.0, angle=0, pen=pg.mkPen(128, 128, 128, style=pg.QtCore.Qt.PenStyle.DashLine)))
        plot.addLegend(offset=(-5, 5), colCount=3)  # one row, top right
        self.curves = {name: plot.plot(pen=pg.mkPen(ANGLE_RGB[name], width=2), name=name, connect="finite")
                       for name in ANGLES}
        self.samples: collections.deque[tuple[float, float, float, float]] = collections.deque()
        self._title = ""

    def add(self, packet: FramePacket) -> None:
        t = packet.t_capture
        if self.samples and t < self.samples[-1][0]:  # the stream restarted
            self.samples.clear()
        faces = sorted(packet.faces, key=lambda f: f.track_id)
        pose = faces[0].pose if faces else None
        angles = (np.nan,) * 3 if pose is None else (pose.yaw_deg, pose.pitch_deg, pose.roll_deg)
        self.samples.append((t, *angles))
        while self.samples[0][0] < t - PLOT_SECONDS:
            self.samples.popleft()
        title = f"head pose, track #{faces[0].track_id}" if pose is not None else "head pose: none in these packets"
        if title != self._title:  # a new title lays the plot out again
            self.plot.setTitle(title)
            self._title = title

    def draw(self, angles: tuple[str, ...]) -> None:
        data = np.array(self.samples, np.float64).reshape(-1, 4)
        t = data[:, 0] - (data[-1, 0] if len(data) else 0.0)
        for i, name in enumerate(ANGLES):
            if name in angles and np.isfinite(data[:, 1 + i]).any():
                self.curves[name].setData(t, data[:, 1 + i])
            else:
                self.curves[name].setData([], [])
