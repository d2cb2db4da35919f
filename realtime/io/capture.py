"""Frame sources: a video file (PyAV), one image, a folder of images, or an OpenCV camera.

numpy + cv2 + av only, no threads. Every source is a plain iterable of ``CapturedFrame``
(``frame_id`` from 0, ``t_capture`` seconds, ``image`` (H, W, 3) uint8 RGB, ``source`` the file it
came from, ``still`` whether it is a picture of its own, ``orientation`` the turn applied to the
stored pixels) with ``close()``;
the pipeline module drives it from its capture thread. Grey, RGBA and 16-bit images come out as
8-bit RGB.

Timestamps (``t_capture``):

- video file: the frame's ``pts * time_base`` (stream time, seconds), never an assumed fps;
- one image: 0.0;
- folder of images: ``index / rate_hz`` (default 30 Hz), files sorted by name; stated here because
  a folder carries no timing of its own;
- camera: ``time.monotonic()`` when the frame was read.

Stills are stills: an image, and every image of a folder, is a ``still`` frame, an independent
picture that the pipeline processes as if it were alone (fresh detection, no tracks or smoothing
carried over from the previous one). ``source`` names the file: an image or a video as given on
the command line, a folder's image by its name inside the folder; None for a camera. One bad still
does not lose the others: a folder's file that cannot be read as an image comes out as a frame with
``skipped`` set to the reason and an empty (0, 0, 3) image, in its place in the order, and the
folder goes on (``skip_unreadable=False`` raises the UserError instead, at that file).

Video files come out as every player shows them: the display rotation (an MP4 display matrix, as
phones write it: the pixels stored sideways or upside down, the turn beside them) is applied to the
pixels (``realtime/geometry/orientation.py``), so detection, landmarks, records and overlay are in
the shown frame; ``keep_stored=True`` keeps the stored pixels. ``VideoFileSource.display`` is the
file's display orientation either way, read from its first frame (docs/rotation.md).

A file can be played "as live" (``as_live=True``): frames are released at their own rate, paced
by their timestamps against ``time.monotonic()`` with ``Event.wait`` (so ``stop`` ends the wait at
once), and ``t_capture`` stays the stream time. A camera that stops delivering frames is released
and reopened up to ``reconnect_attempts`` times, ``reconnect_wait_s`` apart; then a UserError.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from pathlib import Path
from typing import Iterator, NamedTuple

import cv2
import numpy as np

from realtime.core.errors import InputNotFoundError, UserError
from realtime.geometry.orientation import Orientation

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})
DEFAULT_FOLDER_RATE_HZ = 30.0


class CapturedFrame(NamedTuple):
    """One input frame: ``frame_id`` counts from 0, ``t_capture`` seconds, ``image`` (H, W, 3) uint8 RGB;
    ``source`` the file's name (module docstring) or None; ``still`` True for a picture of its own;
    ``skipped`` None, or why this input has no image (an unreadable file in a folder);
    ``orientation`` how ``image`` was turned from the pixels as stored or captured (identity: not)."""

    frame_id: int
    t_capture: float
    image: np.ndarray
    source: str | None = None
    still: bool = False
    skipped: str | None = None
    orientation: Orientation = Orientation()


NO_IMAGE = np.zeros((0, 0, 3), np.uint8)  # the image of a skipped frame
NO_IMAGE.flags.writeable = False


def to_rgb(image: np.ndarray, order: str = "RGB") -> np.ndarray:
    """(H, W) grey, (H, W, 1), (H, W, 3) or (H, W, 4) uint8/uint16 -> contiguous (H, W, 3) uint8 RGB.

    ``order`` is the channel order of 3/4-channel input: "RGB" (PyAV) or "BGR" (OpenCV).
    """
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise UserError(f"expected an 8- or 16-bit image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        code = {("RGB", 3): None, ("RGB", 4): cv2.COLOR_RGBA2RGB,
                ("BGR", 3): cv2.COLOR_BGR2RGB, ("BGR", 4): cv2.COLOR_BGRA2RGB}[(order, image.shape[2])]
        return np.ascontiguousarray(image) if code is None else cv2.cvtColor(image, code)
    raise UserError(f"expected a grey, RGB or RGBA image, got an array of shape {image.shape}")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputNotFoundError(f"input not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"input is an empty (zero-byte) file: {path}")


def read_image(path: str | Path) -> np.ndarray:
    """One image file -> (H, W, 3) uint8 RGB, or a UserError naming the file."""
    path = Path(path)
    _check_file(path)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise UserError(f"cannot read {path} as an image")
    return to_rgb(image, "BGR")


class Source:
    """Base of every source: iterate for frames, ``stop()`` from another thread, ``close()``."""

    is_live = False

    def __init__(self) -> None:
        self.stop_event = threading.Event()

    def __iter__(self) -> Iterator[CapturedFrame]:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask a running iteration to end early (safe from any thread; ends pacing waits at once)."""
        self.stop_event.set()

    def close(self) -> None:
        """Release the file or device. Idempotent."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ImageSource(Source):
    """A single image: one frame at t = 0."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path, self.name = Path(path), str(path)
        self.image = read_image(self.path)

    def __iter__(self) -> Iterator[CapturedFrame]:
        if not self.stop_event.is_set():
            yield CapturedFrame(0, 0.0, self.image, self.name, True)


class FolderSource(Source):
    """Every image in a folder, sorted by file name, at ``t = index / rate_hz`` seconds: stills,
    each named by its file name. A file that cannot be read as an image is a ``skipped`` frame
    (module docstring), or with ``skip_unreadable=False`` a UserError there."""

    def __init__(self, path: str | Path, rate_hz: float = DEFAULT_FOLDER_RATE_HZ, skip_unreadable: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        if rate_hz <= 0:
            raise UserError(f"folder frame rate must be positive, got {rate_hz}")
        self.rate_hz, self.skip_unreadable = rate_hz, skip_unreadable
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {self.path}")

    def __iter__(self) -> Iterator[CapturedFrame]:
        for i, file in enumerate(self.files):
            if self.stop_event.is_set():
                return
            try:
                image = read_image(file)
            except UserError as exc:
                if not self.skip_unreadable:
                    raise
                yield CapturedFrame(i, i / self.rate_hz, NO_IMAGE, file.name, True, skipped=str(exc))
                continue
            yield CapturedFrame(i, i / self.rate_hz, image, file.name, True)


class VideoFileSource(Source):
    """A video file decoded by PyAV with frame threading; timestamps from pts * time_base; frames
    turned to the file's display orientation unless ``keep_stored`` (module docstring).

    A file that cannot be opened, or has no video stream, is a UserError at construction. A file
    that breaks off mid-stream yields every frame that decodes and then raises a UserError saying
    how many frames were read (the stream's declared frame count, when it has one, catches a file
    cut short without a decode error).
    """

    def __init__(self, path: str | Path, as_live: bool = False, keep_stored: bool = False) -> None:
        super().__init__()
        import av  # optional dependency (pip install .[video])

        self._av = av
        self.path, self.name = Path(path), str(path)
        self.as_live = self.is_live = as_live
        _check_file(self.path)
        try:
            self.container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot open {self.path} as a video: not a video, or a corrupt or truncated file "
                            f"({_ffmpeg_message(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise UserError(f"{self.path} has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.declared_frames = int(self.stream.frames or 0)
        rate = self.stream.average_rate
        self.rate_hz = float(rate) if rate else 30.0
        # the first frame is decoded now, for its display matrix; ``__iter__`` yields it (or its error)
        self._frames = self.container.decode(self.stream)
        self._first: object | None = None
        self._first_error: BaseException | None = None
        try:
            self._first = next(self._frames, None)
        except av.FFmpegError as exc:
            self._first_error = exc
        self.display = self._display_orientation(self._first)
        self.orientation = Orientation() if keep_stored else self.display

    def _display_orientation(self, frame: object | None) -> Orientation:
        """The orientation a decoded frame's display matrix asks for (identity without one)."""
        matrix = None if frame is None else frame.side_data.get(self._av.sidedata.sidedata.Type.DISPLAYMATRIX)
        return Orientation() if matrix is None else Orientation.from_display_matrix(np.frombuffer(bytes(matrix), np.int32))

    def _timestamp(self, frame: object, index: int) -> float:
        pts, base = getattr(frame, "pts", None), getattr(frame, "time_base", None) or self.stream.time_base
        return float(pts * base) if pts is not None and base is not None else index / self.rate_hz

    def __iter__(self) -> Iterator[CapturedFrame]:
        count, t_first, start = 0, None, 0.0
        first, error, self._first, self._first_error = self._first, self._first_error, None, None
        try:
            if error is not None:
                raise error
            for frame in self._frames if first is None else itertools.chain([first], self._frames):
                if self.stop_event.is_set():
                    return
                t = self._timestamp(frame, count)
                if self.as_live:
                    if t_first is None:
                        t_first, start = t, time.monotonic()
                    delay = start + (t - t_first) - time.monotonic()
                    if delay > 0 and self.stop_event.wait(delay):
                        return
                image = self.orientation.apply(to_rgb(frame.to_ndarray(format="rgb24")))
                yield CapturedFrame(count, t, image, self.name, orientation=self.orientation)
                count += 1
        except self._av.FFmpegError as exc:
            raise UserError(f"{self.path}: video is corrupt or truncated after {count} frames "
                            f"({_ffmpeg_message(exc)})") from None
        if count == 0:
            raise UserError(f"{self.path}: no video frame could be decoded (corrupt or truncated file)")
        if self.declared_frames and count < self.declared_frames and not self.stop_event.is_set():
            raise UserError(f"{self.path}: video is truncated: decoded {count} of {self.declared_frames} frames")

    def close(self) -> None:
        self.container.close()


class CameraSource(Source):
    """An OpenCV camera by index (``0``) or device path (``/dev/video0``), frames stamped with
    ``time.monotonic()``. ``width``/``height``/``fps`` are requests the driver may round."""

    is_live = True

    def __init__(self, device: int | str, width: int | None = None, height: int | None = None,
                 fps: float | None = None, reconnect_attempts: int = 5, reconnect_wait_s: float = 1.0) -> None:
        super().__init__()
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self.reconnect_attempts, self.reconnect_wait_s = reconnect_attempts, reconnect_wait_s
        self.capture: cv2.VideoCapture | None = None
        if not self._open():
            raise UserError(f"cannot open camera {device!r} (no such device, or it is busy)")

    def _open(self) -> bool:
        self.close()
        capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            capture.release()
            return False
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                            (cv2.CAP_PROP_FPS, self.fps)):
            if value is not None:
                capture.set(prop, float(value))
        self.capture = capture
        return True

    def _reconnect(self) -> bool:
        for attempt in range(1, self.reconnect_attempts + 1):
            log.warning("camera %r lost; reconnecting (attempt %d of %d)", self.device, attempt,
                        self.reconnect_attempts)
            if self.stop_event.wait(self.reconnect_wait_s):
                return False
            if self._open():
                return True
        return False

    def __iter__(self) -> Iterator[CapturedFrame]:
        frame_id = 0
        while not self.stop_event.is_set():
            ok, image = self.capture.read() if self.capture is not None else (False, None)
            if not ok or image is None:
                if self.stop_event.is_set():
                    return
                if not self._reconnect():
                    if self.stop_event.is_set():
                        return
                    raise UserError(f"camera {self.device!r} stopped delivering frames and did not come back "
                                    f"after {self.reconnect_attempts} reconnection attempts")
                continue
            yield CapturedFrame(frame_id, time.monotonic(), to_rgb(image, "BGR"))
            frame_id += 1

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


def _ffmpeg_message(exc: BaseException) -> str:
    return (getattr(exc, "strerror", None) or str(exc)).strip().splitlines()[0][:200]


def open_source(spec: str | int, *, as_live: bool = False, rate_hz: float = DEFAULT_FOLDER_RATE_HZ,
                width: int | None = None, height: int | None = None, fps: float | None = None,
                skip_unreadable: bool = True, keep_stored: bool = False) -> Source:
    """A source from a command-line spec: a camera index ("0") or ``/dev/video*`` path, a folder,
    an image file (by suffix) or anything else as a video file. ``skip_unreadable``: a folder's
    unreadable images become skipped frames (``FolderSource``); ``keep_stored``: a video's pixels
    as stored, not turned to its display orientation."""
    if isinstance(spec, int) or str(spec).isdigit():
        return CameraSource(int(spec), width, height, fps)
    path = Path(spec)
    if str(spec).startswith("/dev/video"):
        return CameraSource(str(spec), width, height, fps)
    _check_file(path)
    if path.is_dir():
        return FolderSource(path, rate_hz, skip_unreadable)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoFileSource(path, as_live=as_live, keep_stored=keep_stored)
