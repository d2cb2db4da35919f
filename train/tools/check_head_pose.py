"""How head pose from the mean face tracks the demo clip's known motion.

    python -m train.tools.check_head_pose [--truth assets/demo_truth.json] [--mean-face assets/mean_face_68.npy]

For every frame of the clip, ``realtime.stages.pose.estimate_head_pose`` runs on the TRUE 68 points
(``demo_truth.json``) against the mean face, with the live pipeline's default intrinsics (60
degree horizontal FOV, principal point at the centre), each frame starting from the previous
pose as the live pipeline does. The recovered angles, minus frame 0's (the astronaut's own pose
in the portrait), are compared with the clip's motion parameters:

- roll with ``angle_deg``, the in-plane rotation: comparable one to one;
- yaw and pitch with ``yaw_deg`` / ``pitch_deg``, the tilt of the picture plane. A tilted flat
  photo is not a turned head (the nose does not move against the eyes), so only the direction is
  comparable, not the size. Both the camera-frame angles and the angles relative to the line of
  sight (the rotation that takes the optical axis onto the ray through the face removed) are
  reported: a face moved sideways in the frame is seen from the side in the camera frame,
  exactly as a real head would be, which the clip's tilt parameters do not include.

Per angle: Pearson correlation, the least-squares slope of recovered on true, and the RMS of
recovered minus true.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from realtime.core.assets import DEMO_TRUTH
from realtime.core.cliargs import Parser
from realtime.core.errors import run_command
from realtime.geometry.meanface import load_mean_face
from realtime.stages.pose import (
    CameraIntrinsics,
    estimate_head_pose,
    rotation_to_angles,
)
from train.labels.democlip import load_truth

TRUTH = DEMO_TRUTH
PAIRS = (("roll", "angle_deg"), ("yaw", "yaw_deg"), ("pitch", "pitch_deg"))


def line_of_sight_rotation(tvec: np.ndarray) -> np.ndarray:
    """(3, 3): the smallest rotation taking the optical axis (0, 0, 1) onto the ray to ``tvec``."""
    d = np.asarray(tvec, np.float64) / np.linalg.norm(tvec)
    axis = np.cross([0.0, 0.0, 1.0], d)
    angle = np.arctan2(np.linalg.norm(axis), d[2])
    if np.linalg.norm(axis) < 1e-12:
        return np.eye(3)
    return cv2.Rodrigues(axis / np.linalg.norm(axis) * angle)[0]


def clip_angles(truth: dict, model: np.ndarray, hfov_deg: float = 60.0) -> dict[str, np.ndarray]:
    """Per frame (N,): camera-frame ``yaw``/``pitch``/``roll`` and line-of-sight ``yaw_los``/
    ``pitch_los``/``roll_los``, degrees, and ``rms_px`` (reprojection error)."""
    intrinsics = CameraIntrinsics.for_image(truth["width"], truth["height"], hfov_deg=hfov_deg)
    names = ("yaw", "pitch", "roll", "yaw_los", "pitch_los", "roll_los", "rms_px")
    out: dict[str, list[float]] = {k: [] for k in names}
    previous = None
    for points in truth["points"]:
        previous = estimate_head_pose(points, model, intrinsics, previous=previous)
        rotation = cv2.Rodrigues(previous.rvec)[0]
        camera = previous.angles
        sight = rotation_to_angles(line_of_sight_rotation(previous.tvec).T @ rotation)
        for key, value in (("yaw", camera.yaw_deg), ("pitch", camera.pitch_deg), ("roll", camera.roll_deg),
                           ("yaw_los", sight.yaw_deg), ("pitch_los", sight.pitch_deg),
                           ("roll_los", sight.roll_deg), ("rms_px", previous.rms_px)):
            out[key].append(value)
    return {k: np.array(v) for k, v in out.items()}


def compare(recovered: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Correlation, slope and RMS (degrees) of ``recovered - recovered[0]`` against ``true``."""
    delta = recovered - recovered[0]
    return {"corr": float(np.corrcoef(delta, true)[0, 1]), "slope": float(np.polyfit(true, delta, 1)[0]),
            "rms_deg": float(np.sqrt(((delta - true) ** 2).mean()))}


def check(truth_path: str | Path = TRUTH, mean_face: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """``{"roll": {...}, "yaw": {...}, "pitch": {...}, "yaw_los": ..., "pitch_los": ..., "roll_los": ...}``
    (``compare``'s numbers) plus ``"frame0"``: the angles of frame 0 and the mean reprojection error."""

    truth = load_truth(truth_path)
    model = load_mean_face() if mean_face is None else mean_face
    angles = clip_angles(truth, model)
    motion = {key: np.array([f["motion"][key] for f in truth["frames"]]) for _, key in PAIRS}
    result = {}
    for name, key in PAIRS:
        result[name] = compare(angles[name], motion[key])
        result[f"{name}_los"] = compare(angles[f"{name}_los"], motion[key])
    result["frame0"] = {"yaw": float(angles["yaw"][0]), "pitch": float(angles["pitch"][0]),
                        "roll": float(angles["roll"][0]), "mean_rms_px": float(angles["rms_px"].mean())}
    return result


def main(argv: list[str] | None = None) -> int:
    def parse(argv: list[str] | None) -> argparse.Namespace:
        p = Parser(prog="python -m train.tools.check_head_pose", description=__doc__.split("\n\n")[0])
        p.add_argument("--truth", default=str(TRUTH), help="the clip's ground truth (demo_truth.json)")
        p.add_argument("--mean-face", help="3D face (68, 3) .npy (default: the shipped one)")
        return p.parse_args(argv)

    return run_command(parse, _report, argv)


def _report(args: argparse.Namespace) -> int:
    result = check(args.truth, load_mean_face(args.mean_face) if args.mean_face else None)
    f0 = result.pop("frame0")
    print(f"frame 0 (the portrait's own pose): yaw {f0['yaw']:.1f}, pitch {f0['pitch']:.1f}, roll {f0['roll']:.1f} "
          f"degrees; mean reprojection error {f0['mean_rms_px']:.2f} px")
    print(f"{'recovered':<12}{'vs':<11}{'corr':>7}{'slope':>7}{'RMS deg':>9}")
    for name, key in PAIRS:
        for suffix, label in (("", name), ("_los", f"{name} (los)")):
            r = result[name + suffix]
            print(f"{label:<12}{key:<11}{r['corr']:>7.3f}{r['slope']:>7.2f}{r['rms_deg']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
