"""What the live overlay draws over the video, and its rolling pose plot (pyqtgraph items).

Qt (through pyqtgraph), numpy and cv2; no threads. ``FaceLayers`` holds the scene items made once
and updated per packet with ``setData``: points coloured by confidence (red at score 0, through
yellow, to green at ``DisplayOptions.confidence_full`` and above), boxes, track ids and head pose.
Point size, line widths and the shortest pose axis follow each face's size, in image pixels
(``realtime/io/overlay_scale.py``, shared with the annotated video's drawing), so the 68 points of a
50 px face stay distinct dots and the marks zoom with the image.

Pose (only when packets carry it) is drawn in perspective with the current camera intrinsics: the
face's rotation placed at the depth where one model unit is one face size (its box side), centred
on its points. Axes: x red (towards the image right for a frontal face), y green (down), z blue
(out of the face, towards the camera); or a cube of that side standing on the face. The 3D frame
and angle conventions are those of ``realtime/stages/pose.py``.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import cv2
import numpy as np
import pyqtgraph as pg

from realtime.io.overlay_scale import MarkSizes, face_size_px, mark_sizes
from realtime.core.packet import FaceResult, FramePacket
from realtime.stages.pose import CameraIntrinsics, PoseEstimate, angles_to_rotation, place_rotation

ANGLES = ("yaw", "pitch", "roll")
ANGLE_RGB = {"yaw": (255, 90, 90), "pitch": (90, 220, 90), "roll": (90, 160, 255)}
AXIS_RGB = ((255, 40, 40), (40, 220, 40), (40, 120, 255))  # x, y, z
BOX_RGB, ID_RGB, CUBE_RGB = (255, 200, 0), (255, 255, 255), (0, 230, 255)
PLOT_SECONDS = 10.0
OUTLINE_MIN_PX = 5.0  # dots at least this wide on screen get a dark outline
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


def _pen(rgb: tuple[int, ...], width_px: float) -> "pg.QtGui.QPen":
    """A pen ``width_px`` image pixels wide (non-cosmetic: the window's zoom scales it with the image)."""
    return pg.mkPen(*rgb, width=width_px, cosmetic=False)


class FaceMarks:
    """The boxes, pose axes and cubes of the faces whose marks have one pair of line widths
    (``realtime/io/overlay_scale.py``, rounded to 0.1 px): five line items (box, x, y, z axis,
    cube), each holding the segments of all those faces (``connect="pairs"``), made once and
    reused. Five faces of one size are five items, not twenty-five: each item costs its own
    bounds and paint calls per frame (five faces of ``video_01``, docs/data.md: the GUI thread's
    CPU per frame fell from 8.8 to 6.2 ms, updating and painting). An item already empty is not
    cleared again (every Qt call counts: ``FaceLayers._draw_points``)."""

    def __init__(self, view: pg.ViewBox) -> None:
        self.box = pg.PlotCurveItem(connect="pairs")
        self.axes = [pg.PlotCurveItem(connect="pairs") for _ in AXIS_RGB]
        self.cube = pg.PlotCurveItem(connect="pairs")
        self._widths: tuple[float, float] | None = None
        self._empty: set[int] = set()
        for item in (self.box, self.cube, *self.axes):
            item.setZValue(1)  # under the points (z 2)
            view.addItem(item)

    def _set(self, item: pg.PlotCurveItem, segments: list[np.ndarray]) -> None:
        if not segments:
            if id(item) not in self._empty:
                item.setData([], [])
                self._empty.add(id(item))
            return
        xy = np.concatenate(segments) if len(segments) > 1 else segments[0]
        item.setData(xy[:, 0], xy[:, 1])
        self._empty.discard(id(item))

    def set_widths(self, widths: tuple[float, float]) -> None:
        """(box and cube, axes) line widths in image pixels; new pens only when they change."""
        if widths != self._widths:
            self._widths = widths
            self.box.setPen(_pen(BOX_RGB, widths[0]))
            self.cube.setPen(_pen(CUBE_RGB, widths[0]))
            for item, rgb in zip(self.axes, AXIS_RGB):
                item.setPen(_pen(rgb, widths[1]))

    def set_faces(self, boxes: list[np.ndarray], poses: list[list[np.ndarray]], style: str) -> None:
        """xyxy ``boxes`` and, per face with pose, ``pose_segments``' output in ``style``."""
        self._set(self.box, [box_segments(box) for box in boxes])
        for axis, item in enumerate(self.axes):
            self._set(item, [segments[axis] for segments in poses if segments] if style != "cube" else [])
        self._set(self.cube, [segments[0] for segments in poses if segments] if style == "cube" else [])

    def clear(self) -> None:
        self.set_faces([], [], "axes")


def box_segments(box: np.ndarray) -> np.ndarray:
    """The (8, 2) segment ends of an xyxy box's four edges (``connect="pairs"``)."""
    x0, y0, x1, y1 = box
    return np.array([(x0, y0), (x1, y0), (x1, y0), (x1, y1), (x1, y1), (x0, y1), (x0, y1), (x0, y0)], np.float64)


class FaceLayers:
    """The scene items drawn over the video, made once and updated per packet. Every mark is in
    image pixels and sized to its face (``realtime/io/overlay_scale.py``), so they also zoom with the
    image: lines are non-cosmetic pens, one set of items per line width (``FaceMarks``); points one
    scatter (``_draw_points``)."""

    def __init__(self, view: pg.ViewBox) -> None:
        self.view = view
        self.points = pg.ScatterPlotItem(pxMode=True)
        self.outline, self.no_outline = pg.mkPen(0, 0, 0, 150, width=1), pg.mkPen(None)
        self.points.setZValue(2)
        view.addItem(self.points)
        self.marks: list[FaceMarks] = []
        self.ids: list[pg.TextItem] = []
        self._id_text: list[str] = []
        self.brushes = [pg.mkBrush(*rgb) for rgb in CONFIDENCE_RGB]

    def _slot(self, i: int) -> FaceMarks:
        while len(self.marks) <= i:
            self.marks.append(FaceMarks(self.view))
        return self.marks[i]

    def _text(self, i: int, text: str) -> pg.TextItem:
        while len(self.ids) <= i:
            self.ids.append(pg.TextItem(color=ID_RGB, anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 140)))
            self._id_text.append("")
            self.view.addItem(self.ids[-1])
        if self._id_text[i] != text:  # a new text lays the item out again
            self.ids[i].setText(text)
            self._id_text[i] = text
        return self.ids[i]

    def draw(self, packet: FramePacket, options: DisplayOptions, intrinsics: CameraIntrinsics) -> None:
        faces = packet.faces
        face_px = [face_size_px(f) for f in faces]
        sizes = [mark_sizes(px) for px in face_px]
        self._draw_points(faces, sizes, options)
        groups: dict[tuple[float, float], tuple[list, list]] = {}  # line widths -> (boxes, pose segments)
        shown = 0
        for face, px, size in zip(faces, face_px, sizes):
            boxes, poses = groups.setdefault((round(size.line_px, 1), round(size.axis_line_px, 1)), ([], []))
            box_ok = np.isfinite(face.box_xyxy).all()
            if options.boxes and box_ok:
                boxes.append(face.box_xyxy)
            pose = face_pose_estimate(face, intrinsics) if options.pose else None
            if pose is not None:
                length = size.axis_length_px(px, options.axis_length) / px  # in face sizes, the pose's unit
                poses.append(pose_segments(pose, intrinsics, length, options.pose_style))
            if options.ids and box_ok:
                text = self._text(shown, f"#{face.track_id}")
                text.setPos(face.box_xyxy[0], face.box_xyxy[1])
                text.setVisible(True)
                shown += 1
        for i, (widths, (boxes, poses)) in enumerate(groups.items()):
            slot = self._slot(i)
            slot.set_widths(widths)
            slot.set_faces(boxes, poses, options.pose_style)
        for slot in self.marks[len(groups):]:
            slot.clear()
        for text in self.ids[shown:]:
            text.setVisible(False)

    def _draw_points(self, faces: list[FaceResult], sizes: list[MarkSizes], options: DisplayOptions) -> None:
        """One scatter of every face's points, each face's dots sized to it. Sizes are in screen
        pixels (the image's radius x the view's zoom, in half-pixel steps) and drawn from
        pyqtgraph's symbol atlas with one painter call: drawn per point in image units
        (``pxMode=False``), the painter calls per point exhaust None's reference count on
        PySide6 6.12 with Python 3.11 (each void call drops one) and crash the process in seconds."""
        if not (options.points and faces):
            self.points.setData([], [])
            return
        pts = np.concatenate([f.points for f in faces])
        levels = np.concatenate([confidence_level(f.scores, options.confidence_full) for f in faces])
        # screen px per image px, from the range just set (viewPixelSize lags a new frame size)
        zoom = self.view.boundingRect().width() / max(self.view.viewRect().width(), 1e-9)
        diameters = [max(1.0, round(4 * s.point_radius_px * zoom) / 2) for s in sizes]
        size = np.concatenate([np.full(len(f.points), d) for f, d in zip(faces, diameters)])
        ok = np.isfinite(pts).all(1)
        outlined = size[ok] >= OUTLINE_MIN_PX  # one pen for all when they agree: a list costs a call per dot
        pen = (self.outline if outlined.all() else self.no_outline if not outlined.any()
               else [self.outline if o else self.no_outline for o in outlined])
        self.points.setData(pos=pts[ok], size=size[ok], brush=[self.brushes[i] for i in levels[ok]], pen=pen)


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
