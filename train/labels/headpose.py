"""Head pose as a training label: yaw/pitch/roll of a labelled face in a photo, by solvePnP
against the 3D mean face (``assets/mean_face_68.npy``, derived by ``python -m train.tools.make_mean_face
derive``).

``label_folder`` (``python -m train.tools.make_mean_face pose``): for every face of a ``folder:``
dataset (``train/data/datasets/folder.py``: an image with a ``.pts`` or ``.json`` beside it),
yaw/pitch/roll by solvePnP against the mean face, written as ``attributes`` with
``attribute_kinds`` "angle" into the face's ``.json`` or, for a ``.pts`` face, into its
``.teacher.json`` sidecar, so ``folder:DIR`` exposes them to ``--attribute-weight``.
The camera of a photo is unknown: the face is put on the optical axis (principal point at the
points' centroid), ``DISTANCE_MM`` away (focal length = that distance x the points' spread /
the mean face's spread), which is close to the weak perspective of a portrait.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from realtime.core.atomic import atomic_path, json_text
from realtime.core.errors import UserError
from realtime.stages.pose import CameraIntrinsics, estimate_head_pose
from train.data.datasets.folder import _annotations, read_json_annotation
from train.data.datasets.ibug300w import read_pts

DISTANCE_MM = 1000.0
# the sidecars' record of how the angles were made, as written before this module moved out of train.meanface
# (the tool is now train.tools.make_mean_face): kept, so the sidecars stay as they were
POSE_NOTE = "train.meanface.photo_pose: solvePnP against the 3D mean face, the face on the optical axis 1 m away"


def photo_pose(points: np.ndarray, model: np.ndarray, distance_mm: float = DISTANCE_MM):
    """Head pose (``realtime.stages.pose.PoseEstimate``) of a face in a photo of unknown camera: the face
    on the optical axis, ``distance_mm`` away (module docstring). ``points`` (K, 2), ``model`` (K, 3)."""
    points = np.asarray(points, np.float64)
    centre = points.mean(0)
    spread_px = np.linalg.norm(points - centre, axis=1).mean()
    spread_mm = np.linalg.norm(model[:, :2] - model[:, :2].mean(0), axis=1).mean()
    focal = distance_mm * spread_px / spread_mm
    return estimate_head_pose(points, model, CameraIntrinsics(focal, float(centre[0]), float(centre[1])))


def pose_attributes(points: np.ndarray, model: np.ndarray) -> dict[str, float]:
    angles = photo_pose(points, model).angles
    return {"yaw": round(angles.yaw_deg, 2), "pitch": round(angles.pitch_deg, 2), "roll": round(angles.roll_deg, 2)}


def label_folder(root: Path, model: np.ndarray) -> int:
    """Write yaw/pitch/roll into every face of a folder dataset (module docstring); returns the count."""

    pairs, _ = _annotations(root)
    if not pairs:
        raise UserError(f"no images with a .pts or .json beside them under {root}")
    kinds = {"yaw": "angle", "pitch": "angle", "roll": "angle"}
    for image, ann in pairs:
        points = read_pts(ann) if ann.suffix == ".pts" else read_json_annotation(ann)["points"]
        if len(points) != len(model):
            raise UserError(f"{ann} has {len(points)} points; the mean face has {len(model)}")
        target = ann.with_suffix(".teacher.json") if ann.suffix == ".pts" else ann
        doc = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else {}
        doc["attributes"] = {**doc.get("attributes", {}), **pose_attributes(points, model)}
        doc["attribute_kinds"] = {**doc.get("attribute_kinds", {}), **kinds}
        doc["pose_model"] = POSE_NOTE
        with atomic_path(target) as tmp:
            tmp.write_text(json_text(doc))
    return len(pairs)
