"""Outputs of a processed video: the annotated H.264 file, the landmarks file, and the overlay.

numpy + cv2 + av only, no threads.

- ``VideoWriter``: libx264, yuv420p, through PyAV (``cv2.VideoWriter`` cannot write H.264 here),
  CRF 23 at x264's ``superfast`` preset: on the bundled clip it encodes with 42% less CPU than
  ``veryfast`` (4.4 against 7.5 ms a 640x480 frame) at the same quality (PSNR against the input
  37.6 against 37.2 dB) in a 52% larger file (1.4 against 0.94 MB for the 10 s clip); the encoder
  was the largest cost of ``make demo``'s command. One encoder thread (x264's default is frame
  threads for 1.5x the cores): the commands encode on a writer thread of their own while other
  threads decode and process, and x264's extra threads only contended with them (``make demo``'s
  command 90.1 against 80.7 fps, median of 8 interleaved rounds, 2-core AVX2 host, 2026-12-07).
  Frames reach the encoder as yuv420p converted by OpenCV (``COLOR_RGB2YUV_I420``, SIMD, the GIL
  released): handed rgb24, PyAV converts with swscale on the writer thread, and the encode cost
  4.6 against 4.0 ms a frame (the bundled clip, best of 2; the same luma to one level, chroma
  averaged over each 2x2 block where swscale's differs by 0.5 levels on average).
  Frames are stamped with their own ``t_capture`` (millisecond time base, so variable frame rates
  and gaps survive), odd sizes are padded by one edge-replicated row/column to even, and the
  audio of ``audio_from`` (the input video), when it has an audio stream, is copied unchanged
  (packets remuxed at ``close``, no re-encode). Everything goes to a hidden temporary file beside
  the target, renamed onto it by ``close``; ``abort`` deletes it. A killed process therefore
  leaves at most a hidden ``.NAME.*.tmp.mp4``, never a corrupt ``OUT.mp4``. The pixels are
  written as given, with no display rotation, so they play as they are (upright, when the input
  was turned to its display orientation); ``display`` tags them with one instead (an input kept in
  its stored orientation then plays as the input does; docs/rotation.md).
- ``LandmarksWriter``: one JSON line (``packet.packet_to_json``) or CSV rows per frame, appended
  and flushed as each frame arrives, to ``OUT.partial`` (e.g. ``out.jsonl.partial``), renamed to
  ``OUT`` by ``close``; ``abort`` deletes it. Choice: after a crash the ``.partial`` file stays
  as a valid, complete-so-far record (every line whole) under a name that says it is incomplete.
- ``draw_overlay``: points, boxes, track ids and pose axes drawn on a copy of the frame, each
  face's marks sized to the face (``realtime/io/overlay_scale.py``).
"""
from __future__ import annotations

import csv
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from realtime.core.atomic import atomic_path
from realtime.core.errors import UserError
from realtime.geometry.orientation import Orientation
from realtime.io.overlay_scale import face_size_px, mark_sizes
from realtime.io.raster_marks import SHIFT, draw_dots, draw_label, fixed_point
from realtime.core.packet import FramePacket, csv_header, packet_to_csv_rows, packet_to_json
from realtime.stages.pose import angles_to_rotation

TIME_BASE = Fraction(1, 1000)

# RGB colours of the overlay
POINT_RGB, BOX_RGB, TEXT_RGB = (0, 255, 0), (255, 200, 0), (255, 255, 255)
AXIS_RGB = ((255, 0, 0), (0, 255, 0), (0, 128, 255))  # x red, y green, z blue


def pad_even(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H + H % 2, W + W % 2, 3) by replicating the last row/column (yuv420p needs even)."""
    h, w = image.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return image
    return cv2.copyMakeBorder(image, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)


def fit_into(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Letterbox (H, W, 3) into (height, width, 3): aspect kept, centred, black bars. For inputs
    (a folder of images) whose frames differ in size from the first."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    canvas = np.zeros((height, width, 3), np.uint8)
    x0, y0 = (width - new_w) // 2, (height - new_h) // 2
    canvas[y0:y0 + new_h, x0:x0 + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return canvas


class VideoWriter:
    """Annotated H.264 output, written atomically (module docstring). ``write(image, t_capture)``
    takes (H, W, 3) uint8 RGB and seconds; a frame whose size differs from the first is
    letterboxed into the first frame's size. ``display`` is the display orientation written into
    the file (its display matrix) for players to apply; None or the identity writes none."""

    def __init__(self, path: str | Path, rate_hz: float = 30.0, audio_from: str | Path | None = None,
                 crf: int = 23, preset: str = "superfast", display: Orientation | None = None) -> None:
        import av  # optional dependency (pip install .[video])

        self._av = av
        self.path = Path(path)
        if display is not None and not display.is_identity and not hasattr(av.video.stream.VideoStream,
                                                                          "set_display_matrix"):
            raise UserError(f"writing a display rotation into {self.path} needs PyAV's Stream.set_display_matrix "
                            f"(PyAV 18.1 has it; this is {av.__version__}): upgrade PyAV, or leave out "
                            "--keep-stored-orientation to write the video upright")
        self._atomic = atomic_path(self.path)
        self.tmp_path = self._atomic.__enter__()
        self.rate_hz, self.crf, self.preset, self.display = rate_hz, crf, preset, display
        try:
            self.container = av.open(str(self.tmp_path), "w", format="mp4")
        except av.FFmpegError as exc:
            self._atomic.__exit__(type(exc), exc, None)
            raise UserError(f"cannot write video {self.path} ({exc})") from None
        self.stream = None
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self._t0: float | None = None
        self._last_pts = -1
        self._audio_in = self._audio_out = None
        if audio_from is not None:
            self._open_audio(Path(audio_from))

    def _open_audio(self, source: Path) -> None:
        try:
            container = self._av.open(str(source))
        except self._av.FFmpegError:
            return  # an image or a folder as input: nothing to copy
        if not container.streams.audio:
            container.close()
            return
        self._audio_in = container
        self._audio_out = self.container.add_stream_from_template(container.streams.audio[0])

    def _open_video(self, width: int, height: int) -> None:
        stream = self.container.add_stream("libx264", rate=Fraction(self.rate_hz).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = TIME_BASE
        stream.options = {"crf": str(self.crf), "preset": self.preset, "threads": "1"}
        if self.display is not None and not self.display.is_identity:
            stream.set_display_matrix(self.display.display_matrix())
        self.stream, self.size = stream, (width, height)

    def write(self, image: np.ndarray, t_capture: float) -> None:
        image = pad_even(np.ascontiguousarray(image))
        h, w = image.shape[:2]
        if self.stream is None:
            self._open_video(w, h)
        elif (w, h) != self.size:
            image = fit_into(image, *self.size)
        if self._t0 is None:
            self._t0 = t_capture
        pts = max(round((t_capture - self._t0) / TIME_BASE), self._last_pts + 1)  # strictly increasing
        frame = self._av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        frame.pts, frame.time_base, self._last_pts = pts, TIME_BASE, pts
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def _copy_audio(self) -> None:
        stream_in = self._audio_in.streams.audio[0]
        for packet in self._audio_in.demux(stream_in):
            if packet.dts is None:
                continue
            packet.stream = self._audio_out
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder, copy the audio, and rename the file onto the target."""
        if self.container is None:
            return
        try:
            if self.stream is not None:
                self.container.mux(self.stream.encode())
            if self._audio_out is not None:
                self._copy_audio()
            self.container.close()
        except BaseException as exc:
            self.abort()
            raise exc
        self.container = None
        self._release_audio()
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Stop and delete the temporary file; the target is left untouched."""
        if self.container is None:
            return
        try:
            self.container.close()
        except self._av.FFmpegError:
            pass
        self.container = None
        self._release_audio()
        exc = RuntimeError("aborted")
        self._atomic.__exit__(type(exc), exc, None)

    def _release_audio(self) -> None:
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None


class LandmarksWriter:
    """One record per frame to ``OUT.partial``, flushed per frame, renamed to ``OUT`` by ``close``.

    ``fmt`` "jsonl" (one ``packet_to_json`` line per frame) or "csv" (``packet.csv_header(K)`` then
    ``packet_to_csv_rows``: one row per face, a short row for a frame with none).
    """

    def __init__(self, path: str | Path, fmt: str = "jsonl", num_points: int = 0) -> None:
        if fmt not in ("jsonl", "csv"):
            raise UserError(f"unknown landmarks format {fmt!r}; choose jsonl or csv")
        self.path, self.fmt = Path(path), fmt
        self.partial_path = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.partial_path, "w", newline="")
        self._csv = csv.writer(self._file) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(csv_header(num_points))
        self.frames = 0

    def write(self, packet: FramePacket) -> None:
        if self._csv is not None:
            self._csv.writerows(packet_to_csv_rows(packet))
        else:
            self._file.write(packet_to_json(packet) + "\n")
        self._file.flush()
        self.frames += 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        os.replace(self.partial_path, self.path)

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.partial_path.unlink(missing_ok=True)


def draw_overlay(image: np.ndarray, packet: FramePacket, draw_points: bool = True, draw_boxes: bool = True,
                 draw_ids: bool = True, draw_pose: bool = True, axis_scale: float = 0.5) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) uint8 RGB with ``packet``'s faces drawn on it.

    Every mark scales with its face (``realtime/io/overlay_scale.py``: point radius, line widths,
    text, shortest axis, each clamped), and points and lines are drawn at sub-pixel positions,
    so the 68 points of a 50 px face stay distinct dots. Pose axes are the rotated model axes
    (``realtime/stages/pose.py``: x red, towards the subject's left; y green, down; z blue drawn out of
    the face, i.e. the model's -z, where the face looks, as the live overlay draws it) from the
    points' centre, ``axis_scale`` x the face size long, under a weak-perspective (orthographic)
    projection; points are drawn over them.
    """
    out = np.ascontiguousarray(image).copy()
    for face in packet.faces:
        face_px = face_size_px(face)
        sizes = mark_sizes(face_px)
        line = max(1, round(sizes.line_px))
        box_ok = np.isfinite(face.box_xyxy).all()
        x0, y0 = face.box_xyxy[:2]
        if draw_boxes and box_ok:
            cv2.rectangle(out, fixed_point(face.box_xyxy[:2]), fixed_point(face.box_xyxy[2:]), BOX_RGB, line,
                          cv2.LINE_AA, SHIFT)
        if draw_ids and box_ok:
            draw_label(out, f"#{face.track_id}", x0, round(y0) - 2 - line, sizes.font_px, TEXT_RGB)
        finite = face.points[np.isfinite(face.points).all(1)]
        if draw_pose and face.pose is not None and len(finite):
            rotation = angles_to_rotation(face.pose.yaw_deg, face.pose.pitch_deg, face.pose.roll_deg)
            centre = finite.mean(0)
            length = sizes.axis_length_px(face_px, axis_scale)
            for axis, sign in ((0, 1.0), (1, 1.0), (2, -1.0)):
                tip = centre + sign * length * rotation[:2, axis]
                cv2.line(out, fixed_point(centre), fixed_point(tip), AXIS_RGB[axis],
                         max(1, round(sizes.axis_line_px)), cv2.LINE_AA, SHIFT)
        if draw_points:
            draw_dots(out, finite, sizes.point_radius_px, POINT_RGB)
    return out
