"""Head pose from 2D landmarks and a 3D mean face: cv2.solvePnP with explicit camera intrinsics.

numpy + cv2 only. Pure calls: ``estimate_head_pose(points, model_points, intrinsics)``; for
angles predicted in a face crop (``realtime/stages/pose_head.py``), ``crop_pose_to_image`` turns them
into the image's frame and ``place_rotation`` gives them a position.

Frames. The camera frame is OpenCV's: x to the image's right, y down, z along the optical axis
away from the camera. The 3D face model must use the same axes for a face looking straight into
the camera: x towards the image's right (the subject's left), y down (towards the chin), z away
from the camera (into the head), any length unit (tvec comes out in that unit). A frontal face
then has rotation identity.

Angles (degrees), with ``R = Ry(yaw) @ Rx(pitch) @ Rz(roll)`` the model-to-camera rotation
(intrinsic yaw, then pitch, then roll; ``Rx``, ``Ry``, ``Rz`` right-handed rotations about the
camera's axes):

- yaw, about the vertical axis: positive turns the nose towards the image's left;
- pitch, about the horizontal axis: positive tips the nose down (chin down);
- roll, about the optical axis: positive turns the face clockwise as displayed.

Intrinsics: square pixels, principal point at the image centre ((W - 1) / 2, (H - 1) / 2 in
pixel-centre coordinates), no lens distortion, and a focal length in pixels given directly or
from the horizontal field of view: ``focal_px = (W / 2) / tan(hfov / 2)``. The default horizontal
FOV of 60 degrees is typical of laptop and USB webcams (most are 55-78 degrees); a wrong focal
length mostly changes the estimated distance and, for faces off the image centre, biases yaw
and pitch by a few degrees.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np

from realtime.core.errors import UserError
from realtime.core.packet import HeadPose
from realtime.stages.smoothing import SmoothingParams, TrackSmoother

DEFAULT_HFOV_DEG = 60.0


def focal_px_from_fov(width_px: int, hfov_deg: float) -> float:
    """Focal length in pixels for an image ``width_px`` wide with horizontal FOV ``hfov_deg``."""
    if not 0.0 < hfov_deg < 180.0:
        raise UserError(f"horizontal field of view must be between 0 and 180 degrees, got {hfov_deg}")
    return (width_px / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)


def fov_from_focal_px(width_px: int, focal_px: float) -> float:
    """Horizontal FOV in degrees of an image ``width_px`` wide with focal length ``focal_px``."""
    if focal_px <= 0:
        raise UserError(f"focal length must be positive, got {focal_px} px")
    return math.degrees(2.0 * math.atan((width_px / 2.0) / focal_px))


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole camera: ``focal_px`` (fx = fy) and principal point (``cx``, ``cy``) in pixels."""

    focal_px: float
    cx: float
    cy: float

    @staticmethod
    @lru_cache(maxsize=16)  # asked every frame by the pipeline and the window; one object per camera setting
    def for_image(width_px: int, height_px: int, focal_px: float | None = None,
                  hfov_deg: float = DEFAULT_HFOV_DEG) -> "CameraIntrinsics":
        """Centred intrinsics; ``focal_px`` wins over ``hfov_deg`` when given."""
        if focal_px is None:
            focal_px = focal_px_from_fov(width_px, hfov_deg)
        elif focal_px <= 0:
            raise UserError(f"focal length must be positive, got {focal_px} px")
        return CameraIntrinsics(float(focal_px), (width_px - 1) / 2.0, (height_px - 1) / 2.0)

    @cached_property
    def matrix(self) -> np.ndarray:
        """(3, 3) float64 camera matrix K (made once; do not write to it)."""
        return np.array([[self.focal_px, 0.0, self.cx], [0.0, self.focal_px, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class PoseEstimate:
    """``rvec`` (3,) Rodrigues and ``tvec`` (3,) model units: model-to-camera, as cv2.solvePnP;
    ``angles`` yaw/pitch/roll degrees (module docstring); ``rms_px`` reprojection error."""

    rvec: np.ndarray
    tvec: np.ndarray
    angles: HeadPose
    rms_px: float


def rotation_to_angles(rotation: np.ndarray) -> HeadPose:
    """(3, 3) rotation -> yaw, pitch, roll degrees with R = Ry(yaw) Rx(pitch) Rz(roll)."""
    (_, _, r02), (r10, r11, r12), (_, _, r22) = np.asarray(rotation, dtype=np.float64).tolist()
    pitch = math.asin(min(1.0, max(-1.0, -r12)))
    yaw = math.atan2(r02, r22)
    roll = math.atan2(r10, r11)
    return HeadPose(math.degrees(yaw), math.degrees(pitch), math.degrees(roll))


def angles_to_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Inverse of ``rotation_to_angles``: (3, 3) R = Ry(yaw) Rx(pitch) Rz(roll)."""
    a, b, c = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz


def crop_pose_to_image(angles: HeadPose, crop_rotation_deg: float) -> np.ndarray:
    """(3, 3) model-to-camera rotation in the image's frame of a pose measured in a crop.

    ``angles`` were seen in a crop whose content the crop matrix turned by ``crop_rotation_deg``
    (``crops.crop_matrix``'s sense: counter-clockwise as displayed; not mirrored). The crop's
    camera frame is the image's turned about the optical axis, so ``R_image = Rz(crop_rotation_deg)
    @ R_crop``: for a frontal face, roll in the image = roll in the crop + ``crop_rotation_deg``
    (a crop levelled on a face rolled clockwise by 10 degrees turns it by 10). Taking the crop's
    turn as one about the optical axis is exact for faces at the image centre and, like a crop of
    a perspective image, close for others (weak perspective).
    """
    turn = angles_to_rotation(0.0, 0.0, crop_rotation_deg)
    return turn @ angles_to_rotation(angles.yaw_deg, angles.pitch_deg, angles.roll_deg)


def place_rotation(rotation: np.ndarray, centre_px: np.ndarray, size_px: float,
                   intrinsics: CameraIntrinsics) -> PoseEstimate:
    """A ``PoseEstimate`` for a (3, 3) rotation known without a 3D face: the model's origin on
    the ray through ``centre_px`` (2,) image pixels, at the depth where one model unit spans
    ``size_px`` pixels (tvec in face sizes); ``rms_px`` NaN, as no reprojection was fitted."""
    depth = intrinsics.focal_px / size_px
    cx, cy = np.asarray(centre_px, np.float64)
    tvec = np.array([(cx - intrinsics.cx) / size_px, (cy - intrinsics.cy) / size_px, depth])
    return PoseEstimate(cv2.Rodrigues(np.asarray(rotation, np.float64))[0].reshape(3), tvec,
                        rotation_to_angles(rotation), float("nan"))


def _initial_guess(points: np.ndarray, model: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """tvec (3,) placing the frontal model in front of the camera at the points' scale."""
    model_size = np.linalg.norm(model[:, :2] - model[:, :2].mean(0), axis=1).mean()
    image_size = np.linalg.norm(points - points.mean(0), axis=1).mean()
    depth = intrinsics.focal_px * model_size / max(image_size, 1e-6)
    centre = points.mean(0)
    return np.array([(centre[0] - intrinsics.cx) * depth / intrinsics.focal_px,
                     (centre[1] - intrinsics.cy) * depth / intrinsics.focal_px, depth]) - model.mean(0) * [1, 1, 0]


def estimate_head_pose(points: np.ndarray, model_points: np.ndarray, intrinsics: CameraIntrinsics,
                       visible: np.ndarray | None = None,
                       previous: PoseEstimate | None = None) -> PoseEstimate:
    """Head pose from ``points`` (K, 2) image pixels matched to ``model_points`` (K, 3).

    ``visible`` (K,) bool selects the points to use (at least 4, not all coplanar for a stable
    answer). The solver (iterative Levenberg-Marquardt) starts from ``previous`` when given, else
    from a frontal face in front of the camera at the distance implied by its size, which keeps
    it away from the mirrored solution behind the camera.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    model = np.asarray(model_points, dtype=np.float64).reshape(-1, 3)
    if len(points) != len(model):
        raise UserError(f"{len(points)} landmarks but the 3D face model has {len(model)} points")
    use = np.isfinite(points).all(1) if visible is None else np.asarray(visible, bool) & np.isfinite(points).all(1)
    if use.sum() < 4:
        raise ValueError(f"head pose needs at least 4 usable points, got {int(use.sum())}")
    if not use.all():
        points, model = points[use], model[use]
    if previous is not None and previous.tvec[2] > 0:
        rvec, tvec = previous.rvec.astype(np.float64).copy(), previous.tvec.astype(np.float64).copy()
    else:
        rvec, tvec = np.zeros(3), _initial_guess(points, model, intrinsics)
    ok, rvec, tvec = cv2.solvePnP(model, points, intrinsics.matrix, None, rvec.reshape(3, 1),
                                  tvec.reshape(3, 1), useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    rvec, tvec = rvec.reshape(3), tvec.reshape(3)
    projected, _ = cv2.projectPoints(model, rvec, tvec, intrinsics.matrix, None)
    rms_px = float(np.sqrt(((projected.reshape(-1, 2) - points) ** 2).sum(1).mean()))
    return PoseEstimate(rvec, tvec, rotation_to_angles(cv2.Rodrigues(rvec)[0]), rms_px)


def project_axes(pose: PoseEstimate, intrinsics: CameraIntrinsics, length: float,
                 origin: np.ndarray | None = None) -> np.ndarray:
    """(4, 2) image pixels of the model's origin (or ``origin`` (3,)) and its x, y, z axis tips,
    ``length`` model units long: for drawing the pose as axes on the face."""
    o = np.zeros(3) if origin is None else np.asarray(origin, dtype=np.float64)
    ends = np.vstack([o, o + np.eye(3) * length])
    projected, _ = cv2.projectPoints(ends, pose.rvec, pose.tvec, intrinsics.matrix, None)
    return projected.reshape(4, 2)


def _rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """(3, 3) -> (4,) unit quaternion (w, x, y, z) with w >= 0."""
    (r00, r01, r02), (r10, r11, r12), (r20, r21, r22) = np.asarray(rotation, np.float64).tolist()
    q = [1.0 + r00 + r11 + r22, 1.0 + r00 - r11 - r22, 1.0 - r00 + r11 - r22, 1.0 - r00 - r11 + r22]
    i = q.index(max(q))  # the largest of 4|w|^2, 4|x|^2, ...: the best-conditioned branch only
    s = math.sqrt(max(q[i], 1e-12)) * 2.0
    if i == 0:
        w_x_y_z = [s / 4, (r21 - r12) / s, (r02 - r20) / s, (r10 - r01) / s]
    elif i == 1:
        w_x_y_z = [(r21 - r12) / s, s / 4, (r01 + r10) / s, (r02 + r20) / s]
    elif i == 2:
        w_x_y_z = [(r02 - r20) / s, (r01 + r10) / s, s / 4, (r12 + r21) / s]
    else:
        w_x_y_z = [(r10 - r01) / s, (r02 + r20) / s, (r12 + r21) / s, s / 4]
    norm = math.sqrt(sum(v * v for v in w_x_y_z)) * (1.0 if w_x_y_z[0] >= 0 else -1.0)
    return np.array(w_x_y_z) / norm


def _quaternion_to_rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class PoseSmoother:
    """One Euro smoothing of head poses per track: rotation as a unit quaternion (sign kept
    continuous with the previous output, renormalised after filtering), translation alike.

    Quaternion components move about half a radian per radian turned, so ``params.beta`` acts
    on the turning speed in (roughly) half-radians per second; ``scale`` is 1. Translation is
    filtered with its distance as the scale (speed in distances per second).
    """

    def __init__(self, params: SmoothingParams | None = None, max_gap_s: float = 0.5) -> None:
        self.params = params if params is not None else SmoothingParams(min_cutoff=0.3, beta=2.0, d_cutoff=1.0)
        self._rotation = TrackSmoother(self.params, max_gap_s)
        self._translation = TrackSmoother(self.params, max_gap_s)
        self._last_q: dict[int, np.ndarray] = {}

    def __call__(self, track_id: int, pose: PoseEstimate, t: float) -> PoseEstimate:
        """Smooth one track's pose observed at ``t`` seconds; returns the smoothed estimate."""
        q = _rotation_to_quaternion(cv2.Rodrigues(pose.rvec)[0])
        last = self._last_q.get(track_id)
        if last is not None and float(q @ last) < 0.0:
            q = -q
        q_hat = self._rotation(track_id, q[None], t, 1.0)[0]
        q_hat /= np.linalg.norm(q_hat)
        self._last_q[track_id] = q_hat
        distance = max(float(np.linalg.norm(pose.tvec)), 1e-9)
        tvec = self._translation(track_id, pose.tvec[None], t, distance)[0]
        rotation = _quaternion_to_rotation(q_hat)
        return PoseEstimate(cv2.Rodrigues(rotation)[0].reshape(3), tvec, rotation_to_angles(rotation), pose.rms_px)

    def prune(self, keep_ids: Iterable[int]) -> None:
        keep = set(keep_ids)
        self._rotation.prune(keep)
        self._translation.prune(keep)
        self._last_q = {k: v for k, v in self._last_q.items() if k in keep}

    def reset(self, track_id: int | None = None) -> None:
        self._rotation.reset(track_id)
        self._translation.reset(track_id)
        if track_id is None:
            self._last_q.clear()
        else:
            self._last_q.pop(track_id, None)
