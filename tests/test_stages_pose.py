"""Head pose: known poses recovered from projected 3D points, FOV/focal conversions, angle
convention, and pose smoothing."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from realtime.core.errors import UserError
from realtime.stages.pose import (
    CameraIntrinsics, PoseEstimate, PoseSmoother, angles_to_rotation, estimate_head_pose, focal_px_from_fov,
    fov_from_focal_px, project_axes, rotation_to_angles,
)

cv2.setNumThreads(1)


def face_model() -> np.ndarray:
    """(14, 3) mm, a rough face in the model frame: x right, y down, z into the head."""
    return np.array([
        [-45, -35, 25], [-20, -35, 15], [20, -35, 15], [45, -35, 25],  # brows / eye corners
        [-30, -25, 20], [30, -25, 20],                                  # eye centres
        [0, -20, 5], [0, 5, -15], [0, 15, -5],                          # nose bridge, tip, base
        [-25, 35, 10], [25, 35, 10], [0, 30, 2], [0, 65, 10],           # mouth corners, lip, chin
        [-70, 0, 80],                                                   # an ear
    ], np.float64)


def project(model, yaw, pitch, roll, tvec, intrinsics):
    rvec = cv2.Rodrigues(angles_to_rotation(yaw, pitch, roll))[0]
    points, _ = cv2.projectPoints(model, rvec, np.asarray(tvec, np.float64), intrinsics.matrix, None)
    return points.reshape(-1, 2)


def test_fov_and_focal_conversions():
    assert focal_px_from_fov(640, 90.0) == pytest.approx(320.0)
    assert fov_from_focal_px(640, 320.0) == pytest.approx(90.0)
    assert fov_from_focal_px(1280, focal_px_from_fov(1280, 63.0)) == pytest.approx(63.0)
    intrinsics = CameraIntrinsics.for_image(640, 480)  # default 60 degrees
    assert intrinsics.focal_px == pytest.approx(320.0 / math.tan(math.radians(30.0)))
    assert (intrinsics.cx, intrinsics.cy) == (319.5, 239.5)
    assert CameraIntrinsics.for_image(640, 480, focal_px=500.0, hfov_deg=10.0).focal_px == 500.0
    with pytest.raises(UserError):
        focal_px_from_fov(640, 180.0)
    with pytest.raises(UserError):
        CameraIntrinsics.for_image(640, 480, focal_px=-1.0)


def test_angle_convention_round_trip_and_signs():
    for angles in [(20.0, -10.0, 5.0), (-35.0, 25.0, -40.0), (0.0, 0.0, 170.0)]:
        back = rotation_to_angles(angles_to_rotation(*angles))
        np.testing.assert_allclose([back.yaw_deg, back.pitch_deg, back.roll_deg], angles, atol=1e-9)
    nose = np.array([0.0, 0.0, -1.0])  # the nose points at the camera in a frontal face
    assert (angles_to_rotation(30, 0, 0) @ nose)[0] < 0  # positive yaw: nose to the image's left
    assert (angles_to_rotation(0, 30, 0) @ nose)[1] > 0  # positive pitch: nose down
    right = np.array([1.0, 0.0, 0.0])
    assert (angles_to_rotation(0, 0, 30) @ right)[1] > 0  # positive roll: clockwise on screen


@pytest.mark.parametrize("angles,tvec", [
    ((20.0, -10.0, 5.0), (30.0, -20.0, 600.0)),
    ((-40.0, 15.0, -20.0), (-150.0, 60.0, 900.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 400.0)),
    ((55.0, 5.0, 10.0), (100.0, 100.0, 1500.0)),
])
def test_known_pose_is_recovered(angles, tvec):
    intrinsics = CameraIntrinsics.for_image(640, 480, hfov_deg=60.0)
    model = face_model()
    points = project(model, *angles, tvec, intrinsics)
    pose = estimate_head_pose(points, model, intrinsics)
    got = [pose.angles.yaw_deg, pose.angles.pitch_deg, pose.angles.roll_deg]
    np.testing.assert_allclose(got, angles, atol=0.5)
    np.testing.assert_allclose(pose.tvec, tvec, rtol=0.01, atol=1.0)
    assert pose.rms_px < 0.01
    noisy = points + np.random.default_rng(0).normal(0.0, 0.3, points.shape)
    again = estimate_head_pose(noisy, model, intrinsics, previous=pose)
    assert again.tvec[2] > 0 and abs(again.angles.yaw_deg - angles[0]) < 3.0


def test_invisible_points_are_skipped_and_too_few_fail():
    intrinsics = CameraIntrinsics.for_image(640, 480)
    model = face_model()
    points = project(model, 10.0, 5.0, 0.0, (0, 0, 500), intrinsics)
    points[3] = np.nan
    pose = estimate_head_pose(points, model, intrinsics)
    assert abs(pose.angles.yaw_deg - 10.0) < 0.5
    with pytest.raises(ValueError):
        estimate_head_pose(points, model, intrinsics, visible=np.arange(len(model)) < 3)
    with pytest.raises(UserError):
        estimate_head_pose(points[:5], model, intrinsics)


def test_axes_project_from_the_face_origin():
    intrinsics = CameraIntrinsics.for_image(640, 480)
    pose = estimate_head_pose(project(face_model(), 0, 0, 0, (0, 0, 500), intrinsics), face_model(), intrinsics)
    axes = project_axes(pose, intrinsics, 50.0)
    np.testing.assert_allclose(axes[0], [319.5, 239.5], atol=0.1)
    assert axes[1, 0] > axes[0, 0] and axes[2, 1] > axes[0, 1]  # x right, y down


def test_pose_smoother_cuts_jitter_and_handles_quaternion_sign():
    intrinsics = CameraIntrinsics.for_image(640, 480)
    model = face_model()
    rng = np.random.default_rng(3)
    smoother = PoseSmoother()
    raw, smooth = [], []
    for i in range(90):
        points = project(model, 15.0, -5.0, 3.0, (0, 0, 600), intrinsics) + rng.normal(0, 1.0, (len(model), 2))
        pose = estimate_head_pose(points, model, intrinsics)
        out = smoother(7, pose, i / 30.0)
        raw.append(pose.angles.yaw_deg)
        smooth.append(out.angles.yaw_deg)
    raw_err, smooth_err = np.std(raw[30:]), np.std(smooth[30:])
    assert smooth_err < raw_err / 3 and abs(np.mean(smooth[30:]) - 15.0) < 1.0
    # a rotation near 180 degrees: q and -q are the same rotation; the filter must not average them
    smoother.reset()
    for i, roll in enumerate([179.0, -179.0, 179.5, -179.5]):
        rvec = cv2.Rodrigues(angles_to_rotation(0.0, 0.0, roll))[0].reshape(3)
        pose = PoseEstimate(rvec, np.array([0, 0, 600.0]), rotation_to_angles(angles_to_rotation(0, 0, roll)), 0.0)
        out = smoother(1, pose, i / 30.0)
        assert abs(abs(out.angles.roll_deg) - 180.0) < 2.0
