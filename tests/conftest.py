"""What several test files share: frames of the bundled clip, and the shared data beside the repository.

- The shipped files (weights, mean face, demo clip, its truth) are package data: tests import their
  paths from ``realtime.core.assets`` (``SYNTH_5``, ``LANDMARKS_68``, ``DEMO_CLIP``, ...), never build a path
  into this checkout, so they test what an install reads.
- ``clip_frames(*indices)``: frames of the bundled clip, decoded once per session; ``write_clip``
  encodes frames as a small H.264 clip, with a display rotation when asked.
- The shared data (``../shared/data`` beside the repository: photos, 300-W crops, real footage) is
  never copied into the repository. Its fixtures skip, saying what is missing, when it is absent;
  ``SHARED_DATA`` and ``FACE_PHOTO`` are here for the helpers that need a path at import time
  (``test_pipeline_capture.clip_frame`` falls back to a drawn pattern without the photo).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime.core.assets import DEMO_CLIP

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FACE_PHOTO = SHARED_DATA / "faces" / "screenshot-faceid.jpg"  # a single frontal portrait


def present(path: Path, what: str) -> Path:
    """``path`` when it exists, else skip the test saying what is missing and where it was looked for."""
    if not path.exists():
        pytest.skip(f"needs {what}: {path} is absent (the shared data, ../shared/data beside the repository, "
                    "is never copied into it)")
    return path


class ClipFrames:
    """``frames(*indices)``: frames of a clip, (H, W, 3) uint8 RGB copies, each decoded at most once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._decoded: dict[int, np.ndarray] = {}

    def __call__(self, *indices: int) -> list[np.ndarray]:
        missing = sorted(set(indices) - self._decoded.keys())
        if missing:
            av = pytest.importorskip("av")
            with av.open(str(self.path)) as container:
                for i, frame in enumerate(container.decode(video=0)):
                    if i in missing:
                        self._decoded[i] = frame.to_ndarray(format="rgb24")
                    if i >= missing[-1]:
                        break
            if not set(missing) <= self._decoded.keys():
                raise IndexError(f"{self.path} has no frames {sorted(set(missing) - self._decoded.keys())}")
        return [self._decoded[i].copy() for i in indices]


def write_clip(path: Path, frames: list[np.ndarray], rate: int = 30, display=None, crf: int | None = None) -> Path:
    """Encode (H, W, 3) uint8 RGB ``frames`` as an H.264 .mp4 at ``rate`` frames/s; ``display``
    (a ``realtime.geometry.orientation.Orientation``) is written as its display matrix, the way
    phones store a turn beside the pixels; ``crf`` the x264 quality (None: its default)."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        if crf is not None:
            stream.options = {"crf": str(crf)}
        if display is not None:
            if not hasattr(stream, "set_display_matrix"):
                pytest.skip(f"PyAV {av.__version__} cannot write a display matrix (Stream.set_display_matrix)")
            stream.set_display_matrix(display.display_matrix())
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def clip_frames() -> ClipFrames:
    """Frames of the bundled demo clip (``realtime.core.assets.DEMO_CLIP``), e.g. ``clip_frames(0, 30)``."""
    return ClipFrames(DEMO_CLIP)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository."""
    return present(SHARED_DATA, "the shared data folder")


@pytest.fixture(scope="session")
def shared_faces(shared_data) -> Path:
    """The folder of shared face photos (three screenshots; ``faces/PROVENANCE.md``)."""
    return present(shared_data / "faces", "the shared face photos")


@pytest.fixture(scope="session")
def shared_photos(shared_faces) -> list[Path]:
    """The shared face photos, sorted."""
    photos = sorted(shared_faces.glob("*.jpg"))
    if not photos:
        pytest.skip(f"needs the shared face photos: no .jpg in {shared_faces}")
    return photos


@pytest.fixture(scope="session")
def face_photo(shared_faces) -> Path:
    """The single frontal portrait among the shared photos."""
    return present(FACE_PHOTO, "the shared portrait")


@pytest.fixture(scope="session")
def shared_300w(shared_data) -> Path:
    """The shared 300-W copy (afw/ and part of helen/trainset/)."""
    return present(shared_data / "300w", "the shared 300-W faces")


@pytest.fixture(scope="session")
def video_01(shared_data) -> Path:
    """Real footage: five people, 90 frames (``video/README.md``)."""
    return present(shared_data / "video" / "video_01.mp4", "the real clip video_01.mp4")
