"""Keypoint layouts: point names, the permutation under a horizontal mirror, and the points that
define the normalising distances of the evaluation metrics and the face box of the 2016 recipe.

numpy only; shared by the training recipes and the live pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.core.errors import UserError


@dataclass(frozen=True)
class Layout:
    """One keypoint layout.

    ``mirror[k]`` is the index that point k becomes after a horizontal flip. ``outer_eye`` holds
    the two points whose distance is the "outer eye corners" normaliser (eye centres where a
    layout has no corners). ``eye_centres`` and ``pupils`` hold two groups each; a group's mean
    is a left/right eye position. ``box_rule`` picks the 2016 face box: ``"eyes_mouth"`` (MTFL,
    AFLW-5) or ``"extent"`` (300W: min/max box x1.3). ``mouth`` gives the two mouth corners used
    by ``"eyes_mouth"``.
    """

    name: str
    names: tuple[str, ...]
    mirror: tuple[int, ...]
    outer_eye: tuple[int, int]
    eye_centres: tuple[tuple[int, ...], tuple[int, ...]]
    pupils: tuple[tuple[int, ...], tuple[int, ...]]
    box_rule: str
    mouth: tuple[int, int] | None = None

    @property
    def num_points(self) -> int:
        return len(self.names)

    def eye_centre_points(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., K, 2) -> two (..., 2) arrays: left and right eye centres (mean of each group)."""
        a, b = self.eye_centres
        return points[..., list(a), :].mean(-2), points[..., list(b), :].mean(-2)

    def pupil_points(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.pupils
        return points[..., list(a), :].mean(-2), points[..., list(b), :].mean(-2)


def _pairs_to_perm(n: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    perm = list(range(n))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


_IBUG_NAMES = tuple(
    [f"jaw_{i}" for i in range(17)] + [f"brow_r_{i}" for i in range(5)] + [f"brow_l_{i}" for i in range(5)]
    + [f"nose_bridge_{i}" for i in range(4)] + [f"nose_base_{i}" for i in range(5)]
    + [f"eye_r_{i}" for i in range(6)] + [f"eye_l_{i}" for i in range(6)]
    + [f"mouth_outer_{i}" for i in range(12)] + [f"mouth_inner_{i}" for i in range(8)]
)
_IBUG_PAIRS = (
    [(i, 16 - i) for i in range(8)]
    + [(17 + i, 26 - i) for i in range(5)]
    + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]
    + [(60, 64), (61, 63), (65, 67)]
)

_AFLW21_NAMES = (
    "left_brow_left", "left_brow_centre", "left_brow_right",
    "right_brow_left", "right_brow_centre", "right_brow_right",
    "left_eye_left", "left_eye_centre", "left_eye_right",
    "right_eye_left", "right_eye_centre", "right_eye_right",
    "left_ear", "nose_left", "nose_centre", "nose_right", "right_ear",
    "mouth_left", "mouth_centre", "mouth_right", "chin_centre",
)
_AFLW21_PAIRS = [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 16), (13, 15), (17, 19)]
# AFLW-Full 19 points (Zhu et al. CFSS/CCL): the 21 official points without the two ears.
AFLW19_FROM_21 = tuple(i for i in range(21) if i not in (12, 16))
_AFLW19_NAMES = tuple(_AFLW21_NAMES[i] for i in AFLW19_FROM_21)
_AFLW19_PAIRS = [(0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9), (12, 14), (15, 17)]

LAYOUTS: dict[str, Layout] = {
    "ibug68": Layout(
        name="ibug68", names=_IBUG_NAMES, mirror=_pairs_to_perm(68, _IBUG_PAIRS),
        outer_eye=(36, 45), eye_centres=((36, 39), (42, 45)),
        pupils=(tuple(range(36, 42)), tuple(range(42, 48))), box_rule="extent", mouth=(48, 54),
    ),
    "mtfl5": Layout(
        name="mtfl5", names=("left_eye", "right_eye", "nose", "mouth_left", "mouth_right"),
        mirror=(1, 0, 2, 4, 3), outer_eye=(0, 1), eye_centres=((0,), (1,)), pupils=((0,), (1,)),
        box_rule="eyes_mouth", mouth=(3, 4),
    ),
    "aflw21": Layout(
        name="aflw21", names=_AFLW21_NAMES, mirror=_pairs_to_perm(21, _AFLW21_PAIRS),
        outer_eye=(6, 11), eye_centres=((7,), (10,)), pupils=((7,), (10,)), box_rule="extent",
        mouth=(17, 19),
    ),
    "aflw19": Layout(
        name="aflw19", names=_AFLW19_NAMES, mirror=_pairs_to_perm(19, _AFLW19_PAIRS),
        outer_eye=(6, 11), eye_centres=((7,), (10,)), pupils=((7,), (10,)), box_rule="extent",
        mouth=(15, 17),
    ),
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UserError(f"unknown keypoint layout {name!r}; known: {', '.join(sorted(LAYOUTS))}") from None


def layout_for_count(num_points: int) -> Layout | None:
    """The one known layout with this many points, or None (e.g. a user's own layout)."""
    found = [lay for lay in LAYOUTS.values() if lay.num_points == num_points]
    return found[0] if len(found) == 1 else None
