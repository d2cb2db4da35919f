"""Quarter turns and mirrors of a picture: the display rotation of phone video, a camera mounted
sideways, and the turned frames the face search tries.

numpy + cv2 only. An ``Orientation`` is what turns a frame as stored into the frame as shown:
``quarters`` counter-clockwise quarter turns (as displayed, y down), then, when ``mirrored``, a
left-right flip. These are the eight orientations an MP4 display matrix (FFmpeg's
``AV_PKT_DATA_DISPLAYMATRIX``, EXIF's orientation tag) can express without resampling; a matrix
at another angle is taken to its nearest quarter turn (``from_display_matrix``).

Conventions: FFmpeg's display matrix maps a stored pixel (x, y) to the shown one by
``x' = a x + c y + tx``, ``y' = b x + d y + ty`` with ``(a, b, u, c, d, v, tx, ty, w)`` the nine
32-bit values, a to ty in 16.16 fixed point; PyAV's ``VideoFrame.rotation`` is the same turn in
degrees counter-clockwise. ``Orientation.matrix(width, height)`` is the (2, 3) affine map of
pixel centres (``realtime/geometry/crops.py``'s convention) from the stored frame to the shown one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

_ROTATE_CODES = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}
_MIRROR = np.array([[-1, 0], [0, 1]])


def _turn_linear(quarters: int) -> np.ndarray:
    """(2, 2) integer map of ``quarters`` counter-clockwise quarter turns, y down: (1, 0) -> (0, -1) for one."""
    cos, sin = ((1, 0), (0, 1), (-1, 0), (0, -1))[quarters % 4]
    return np.array([[cos, sin], [-sin, cos]])


def turn_image(image: np.ndarray, quarters: int) -> np.ndarray:
    """``image`` (H, W, ...) turned by ``quarters`` counter-clockwise quarter turns, a contiguous copy
    (the array itself when ``quarters`` is a multiple of 4). One ``cv2.rotate``: about a tenth of a
    millisecond for 640x480 RGB."""
    quarters %= 4
    return image if quarters == 0 else cv2.rotate(image, _ROTATE_CODES[quarters])


@dataclass(frozen=True)
class Orientation:
    """Stored frame -> shown frame: ``quarters`` counter-clockwise quarter turns (0-3), then a
    left-right mirror when ``mirrored`` (module docstring)."""

    quarters: int = 0
    mirrored: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "quarters", int(self.quarters) % 4)

    @property
    def rotation_deg(self) -> int:
        """The turn in degrees counter-clockwise: 0, 90, 180 or 270."""
        return 90 * self.quarters

    @property
    def is_identity(self) -> bool:
        return self.quarters == 0 and not self.mirrored

    @staticmethod
    def clockwise(degrees: int) -> "Orientation":
        """The turn of a ``--rotate`` option: ``degrees`` (a multiple of 90) clockwise."""
        if degrees % 90:
            raise ValueError(f"rotation must be a multiple of 90 degrees, got {degrees}")
        return Orientation((-degrees // 90) % 4)

    @staticmethod
    def from_display_matrix(values: Sequence[int]) -> "Orientation":
        """The orientation of FFmpeg's nine display-matrix values (module docstring). A matrix that
        is no quarter turn or mirror (a free angle, a shear) gives its nearest quarter turn, with a
        warning: these pictures are shown turned, not resampled."""
        values = np.asarray(values, np.float64).reshape(9)
        linear = np.array([[values[0], values[3]], [values[1], values[4]]])
        scale = np.sqrt(abs(np.linalg.det(linear)))
        if not np.isfinite(scale) or scale == 0:
            return Orientation()
        linear = linear / scale
        mirrored = bool(np.linalg.det(linear) < 0)
        unmirrored = _MIRROR @ linear if mirrored else linear  # the mirror is its own inverse
        angle = np.degrees(np.arctan2(-unmirrored[1, 0], unmirrored[0, 0]))  # counter-clockwise, y down
        quarters = int(np.round(angle / 90.0)) % 4
        if abs(angle - 90.0 * np.round(angle / 90.0)) > 1.0 or not np.allclose(unmirrored, _turn_linear(quarters), atol=0.02):
            log.warning("display matrix turns by %.1f degrees, not a quarter turn: using %d", angle, 90 * quarters)
        return Orientation(quarters, mirrored)

    def display_matrix(self) -> list[int]:
        """FFmpeg's nine display-matrix values for this orientation (the inverse of ``from_display_matrix``)."""
        linear = self._linear() * 65536
        return [int(linear[0, 0]), int(linear[1, 0]), 0, int(linear[0, 1]), int(linear[1, 1]), 0, 0, 0, 1 << 30]

    def inverse(self) -> "Orientation":
        """The orientation that undoes this one (shown frame -> stored frame); a mirrored one is its own."""
        return self if self.mirrored else Orientation(-self.quarters)

    def then(self, other: "Orientation") -> "Orientation":
        """``self`` followed by ``other`` (e.g. a file's display rotation, then a ``--rotate``)."""
        if self.mirrored:  # a turn after a mirror is the opposite turn before it
            return Orientation(self.quarters - other.quarters, not other.mirrored)
        return Orientation(self.quarters + other.quarters, other.mirrored)

    def _linear(self) -> np.ndarray:
        turn = _turn_linear(self.quarters)
        return _MIRROR @ turn if self.mirrored else turn

    def shown_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the shown frame for a stored frame of ``width`` x ``height``."""
        return (height, width) if self.quarters % 2 else (width, height)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The stored (H, W, ...) ``image`` as shown (contiguous; the array itself for the identity)."""
        shown = turn_image(image, self.quarters)
        return cv2.flip(shown, 1) if self.mirrored else shown

    def matrix(self, width: int, height: int) -> np.ndarray:
        """(2, 3) float64 affine map of pixel centres from a stored ``width`` x ``height`` frame to
        the shown one (``crops.transform_points`` applies it; ``crops.invert_affine`` undoes it)."""
        linear = self._linear().astype(np.float64)
        corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], np.float64)
        offset = -(corners @ linear.T).min(0)  # the shown frame starts at pixel centre (0, 0)
        return np.concatenate([linear, offset[:, None]], axis=1)
