"""Options that several runtime command lines share: the engine (device, landmark backend,
detector backend) and head pose (camera intrinsics, 3D face, pose source)."""
from __future__ import annotations

import argparse

from realtime.backends.registry import BACKENDS
from realtime.core.cliargs import FOCAL_PX, HFOV_DEG, NumberType
from realtime.detect.detector import DETECTOR_BACKENDS


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--detector-backend``, ``--device`` and ``--backend``: shared by the video and webcam CLIs."""

    parser.add_argument("--detector-backend", choices=DETECTOR_BACKENDS, default="auto",
                        help="run BlazeFace through OpenCV dnn, OpenVINO (the PyTorch port exported) or the "
                        "PyTorch port on --device; auto: torch on CUDA, else OpenVINO when installed (the "
                        "fastest on CPU), else OpenCV")
    parser.add_argument("--device", default="cpu", help="torch device for the landmark model (and the torch detector)")
    parser.add_argument("--backend", default="auto",
                        help="inference backend of the landmark model: auto (the fastest whose landmarks stay "
                        "within 0.1 crop px of eager fp32; decided once per machine and model, then cached) "
                        f"or one of {', '.join(BACKENDS)} (docs/backends.md)")


def add_pose_arguments(parser: argparse.ArgumentParser) -> None:
    """``--focal-px``/``--hfov``, ``--face-model``, ``--pose-source``: shared by the video and webcam CLIs."""
    intrinsics = parser.add_mutually_exclusive_group()
    intrinsics.add_argument("--focal-px", type=NumberType(float, FOCAL_PX), help="camera focal length in pixels (head pose)")
    intrinsics.add_argument("--hfov", type=NumberType(float, HFOV_DEG), default=60.0,
                            help="horizontal field of view in degrees, for head pose when --focal-px is not "
                            "given (default 60, typical of webcams)")
    parser.add_argument("--face-model", help="3D face (K, 3) .npy for head pose, K the model's point count "
                        "(default: the shipped mean face, mean_face_68.npy, or its subset)")
    parser.add_argument("--pose-source", choices=("pnp", "head"), default="pnp",
                        help="head pose by solvePnP against the 3D face (default), or from the weights' "
                        "attribute head (needs one predicting yaw, pitch and roll)")


def add_turned_search_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-turned-search`` (sets ``turned_search`` False): shared by the video and webcam CLIs."""
    parser.add_argument("--no-turned-search", dest="turned_search", action="store_false",
                        help="detect faces in the upright frame only; by default the frame turned by 90, 180 or 270 "
                        "degrees is tried too when no face is found or one is unsure (faces at any roll; "
                        "docs/rotation.md)")
