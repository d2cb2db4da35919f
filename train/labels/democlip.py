"""The demo clip's labels (``python -m train.tools.make_demo_clip`` builds the clip): scikit-image's astronaut
portrait and its committed teacher points (``assets/astronaut_68.pts``), and the clip's truth file
(``assets/demo_truth.json``) read back.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from realtime.core.assets import ASTRONAUT_PTS
from realtime.core.errors import UserError
from train.data.datasets.ibug300w import read_pts


def astronaut() -> np.ndarray:
    """(512, 512, 3) uint8 RGB; scikit-image ships it in its wheel (no download)."""
    try:
        from skimage import data
    except ImportError:
        raise UserError("scikit-image is not installed: pip install -e '.[democlip]'") from None
    return np.ascontiguousarray(data.astronaut())


def astronaut_points(path: Path = ASTRONAUT_PTS) -> np.ndarray:
    """The committed teacher labels of the astronaut: (68, 2) float64, 0-based pixel centres."""

    return read_pts(path).astype(np.float64)


def load_truth(path: str | Path) -> dict:
    """The truth file as a dict, plus ``points`` (N, 68, 2) and ``t`` (N,) numpy arrays."""
    truth = json.loads(Path(path).read_text())
    truth["points"] = np.array([f["points"] for f in truth["frames"]], dtype=np.float64)
    truth["t"] = np.array([f["t"] for f in truth["frames"]], dtype=np.float64)
    return truth
