"""Overlay marks scale with the face (``realtime/io/overlay_scale.py``) and stay legible when small.

numpy + cv2 only; the live window's use of the same sizes is tested in ``test_overlay.py``.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.core.assets import MEAN_FACE as MEAN_FACE_PATH
from realtime.io.overlay_scale import (
    AXIS_MIN_PX, AXIS_WIDTH, DEFAULT_FACE_PX, LINE_WIDTH, POINT_RADIUS, face_size_px, mark_sizes,
)
from realtime.core.packet import FaceResult, FramePacket, HeadPose
from realtime.io.video_out import POINT_RGB, draw_overlay

MEAN_FACE = np.load(MEAN_FACE_PATH)[:, :2]


def face_of_side(side: float, centre=(160.0, 120.0), pose: HeadPose | None = None) -> FaceResult:
    """The 68-point mean face with a box ``side`` px wide, points spanning 0.72 of it (as the
    bundled model's faces do)."""
    points = MEAN_FACE - MEAN_FACE.mean(0)
    points = points / np.ptp(points, 0).max() * 0.72 * side + np.asarray(centre)
    cx, cy = centre
    return FaceResult(0, [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], points,
                      np.full(68, 0.5), pose=pose)


def test_sizes_grow_with_the_face_and_clamp_at_both_ends():
    sides = np.geomspace(5, 5000, 60)
    sizes = [mark_sizes(s) for s in sides]
    for name, rule in (("point_radius_px", POINT_RADIUS), ("line_px", LINE_WIDTH), ("axis_line_px", AXIS_WIDTH)):
        values = np.array([getattr(s, name) for s in sizes])
        assert (np.diff(values) >= 0).all(), name  # never shrinks as the face grows
        assert values[0] == rule[1] and values[-1] == rule[2], name  # clamped: tiny and huge faces
        assert values.min() >= rule[1] and values.max() <= rule[2], name
        middle = rule[1] / rule[0] * 1.01, rule[2] / rule[0] * 0.99  # between the clamps: proportional
        inside = (sides > middle[0]) & (sides < middle[1])
        assert inside.any() and np.allclose(values[inside], rule[0] * sides[inside]), name
    assert mark_sizes(50).point_radius_px < mark_sizes(200).point_radius_px


def test_dots_are_narrower_than_the_gap_between_neighbouring_points():
    """Unclamped, a dot is 0.03 of the face across; the bundled model's neighbouring points are
    0.05 of it apart (median), so the dots of one face do not touch."""
    for side in (60.0, 120.0, 250.0):
        points = face_of_side(side).points
        gaps = np.sort(np.linalg.norm(points[:, None] - points[None], axis=2), axis=1)[:, 1]
        assert 2 * mark_sizes(side).point_radius_px < np.median(gaps)


def test_axis_length_follows_the_face_but_never_below_the_minimum():
    assert mark_sizes(200).axis_length_px(200, 0.5) == 100
    assert mark_sizes(10).axis_length_px(10, 0.5) == AXIS_MIN_PX


def test_face_size_from_the_box_else_the_points_else_a_default():
    assert face_size_px(face_of_side(80)) == pytest.approx(80)
    no_box = face_of_side(80)
    no_box.box_xyxy[:] = np.nan
    assert face_size_px(no_box) == pytest.approx(1.4 * 0.72 * 80)
    nothing = FaceResult(0, [np.nan] * 4, np.full((68, 2), np.nan), np.zeros(68))
    assert face_size_px(nothing) == DEFAULT_FACE_PX
    assert mark_sizes(float("nan")) == mark_sizes(DEFAULT_FACE_PX) == mark_sizes(-3)


def green_blobs(image: np.ndarray) -> np.ndarray:
    """Areas of the connected regions drawn in the point colour."""
    mask = (np.abs(image.astype(int) - POINT_RGB).max(2) < 90).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    return stats[1:, cv2.CC_STAT_AREA]


@pytest.mark.parametrize("side", [45.0, 60.0])
def test_the_points_of_a_small_face_stay_separate_dots_in_the_annotated_video(side):
    """A 640x480 frame with a face of video_01.mp4's size: the fixed 3 px dots drawn before
    merged into one blob; now the outline, eyes, nose and mouth stay separate dots (about 25-30
    regions: the mean face's closed mouth puts inner and outer lip points almost on top of each
    other, and the eyelid points are about 1.5 px apart at this size)."""
    image = np.full((480, 640, 3), 40, np.uint8)
    packet = FramePacket(0, 0.0, image, [face_of_side(side)])
    drawn = draw_overlay(image, packet, draw_boxes=False, draw_ids=False, draw_pose=False)
    blobs = green_blobs(drawn)
    assert len(blobs) >= 20 and blobs.max() < 0.4 * blobs.sum()  # no region holds most (the mouth: a third)


def test_dots_lines_and_axes_of_a_big_face_are_bigger_than_those_of_a_small_one():
    image = np.full((480, 640, 3), 40, np.uint8)
    small, big = face_of_side(50, (80, 80)), face_of_side(300, (420, 260))
    one = lambda face, **kw: draw_overlay(image, FramePacket(0, 0.0, image, [face]), **kw)  # noqa: E731
    dots = {name: np.median(green_blobs(one(f, draw_boxes=False, draw_ids=False, draw_pose=False)))
            for name, f in (("small", small), ("big", big))}
    assert dots["big"] > 4 * dots["small"]
    box_px = {name: (one(f, draw_points=False, draw_ids=False, draw_pose=False) != image).any(2).sum() / f_side
              for name, f, f_side in (("small", small, 50), ("big", big, 300))}
    assert box_px["big"] > 1.5 * box_px["small"]  # per unit of box length: thicker lines
    pose = HeadPose(20.0, 10.0, 0.0)
    small.pose, big.pose = pose, pose
    axes = {name: (one(f, draw_points=False, draw_boxes=False, draw_ids=False) != image).any(2).sum()
            for name, f in (("small", small), ("big", big))}
    assert axes["big"] > 6 * axes["small"] > 0  # longer and thicker
