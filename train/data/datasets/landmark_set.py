"""The record every dataset reader returns, and image loading with clear errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realtime.core.errors import UserError


@dataclass
class FaceSample:
    """One annotated face.

    ``points`` (K, 2) float32 (x, y) in pixels of the full image, pixel centres at integers.
    ``visible`` (K,) bool: False where a point is unannotated/invisible and must be masked from
    losses and metrics. ``attributes`` maps attribute names to numbers (class ids as int,
    angles in degrees as float). Exactly one of ``image_path`` / ``image`` is set; ``image`` is an
    in-memory (H, W, 3) uint8 RGB array (synthetic data). ``box`` is an optional (x0, y0, x1, y1)
    face box from the dataset (a detector box), in image pixels.
    """

    points: np.ndarray
    visible: np.ndarray
    layout: str
    subset: str = ""
    image_path: str | None = None
    image: np.ndarray | None = None
    attributes: dict[str, float] = field(default_factory=dict)
    box: tuple[float, float, float, float] | None = None
    ident: str = ""


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB; raise UserError if missing or undecodable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UserError(f"cannot decode image (corrupt or not an image): {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def sample_image(sample: FaceSample) -> np.ndarray:
    """The sample's (H, W, 3) uint8 RGB image."""
    if sample.image is not None:
        return sample.image
    if sample.image_path is None:
        raise UserError(f"sample {sample.ident or '?'} has neither an image nor an image path")
    return read_image_rgb(sample.image_path)


@dataclass
class LandmarkSet:
    """A list of samples sharing one layout, as returned by every reader and ``open_dataset``.

    ``attribute_kinds`` maps each attribute name to ``"class:<n>"`` (integer labels 0..n-1) or
    ``"angle"`` (degrees) or ``"scalar"``, for the semi-supervised attribute heads.
    """

    name: str
    layout: str
    samples: list[FaceSample]
    attribute_kinds: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)
