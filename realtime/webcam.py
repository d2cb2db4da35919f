"""Live landmarks in a window: a camera, or a recorded file played as live at its own rate.

    python -m realtime.webcam [--source 0|/dev/video0|FILE|DIR] [--weights W] [--width W --height H
                              --fps F] [--focal-px F | --hfov DEG] [--detector both|short|full]
                              [--detector-backend auto|opencv|torch]
                              [--face-model MEAN_FACE.npy] [--pose-source pnp|head] [--rotate 0|90|180|270]
                              [--no-turned-search]
                              [--backend auto|eager|onnxruntime|openvino|...] [--screenshot-dir DIR]
                              [--screenshot-after N] [--quit-after N]

Keys: Space pause, S screenshot (PNG into --screenshot-dir), Q or Esc quit; the panel on the right
tunes smoothing, detection, intrinsics and the display live. ``--screenshot-after N`` saves a
screenshot once N frames are drawn and ``--quit-after N`` closes the window after N frames (both
also act at the end of a file), for scripted runs. Without a display, QT_QPA_PLATFORM=offscreen
runs the same window off screen. Bad input prints one ``error:`` line and exits with status 2.
Head pose uses ``--face-model`` (a (K, 3) .npy matching the model's points) or else the shipped
3D mean face's points for the model's layout; a layout with no known 3D points gets no pose.
``--pose-source head`` takes it from the weights' attribute head instead (an error when they
have none predicting yaw, pitch and roll); the panel switches between the two when both exist.
``--rotate N`` turns every frame N degrees clockwise before anything else (a camera mounted
sideways or upside down; also in the panel); a recorded file is first turned to its own display
rotation. Faces rolled in the picture are found at any angle (``--no-turned-search``: upright
detection only; docs/rotation.md).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from realtime.api import pipeline_config
from realtime.cli.options import add_engine_arguments, add_pose_arguments, add_turned_search_argument
from realtime.core.assets import LANDMARKS_68 as DEFAULT_WEIGHTS, WEIGHTS_HELP, weights_path
from realtime.core.cliargs import Parser, number
from realtime.core.errors import require_files, run_command
from realtime.core.outpaths import Output, check_outputs, make_folders
from realtime.detect.detector import DEFAULT_DETECTOR, DETECTOR_HELP, DETECTORS
from realtime.gui import check_qt
from realtime.io.capture import open_source
from realtime.pipeline.live import ROTATIONS_DEG, LiveTuner
from realtime.pipeline.live_pipeline import LivePipeline
from realtime.pipeline.processor import FrameProcessor


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog="python -m realtime.webcam", description=__doc__.split("\n\n")[0], version_weights=DEFAULT_WEIGHTS)
    parser.add_argument("--source", default="0", help="camera index or /dev/video*, a video file, an image or "
                        "a folder of images (files play as live, at their own rate)")
    parser.add_argument("--weights", type=weights_path, default=DEFAULT_WEIGHTS, help=WEIGHTS_HELP)
    parser.add_argument("--width", type=number(int, 16, 8192), help="camera frame width to ask for (pixels)")
    parser.add_argument("--height", type=number(int, 16, 8192), help="camera frame height to ask for (pixels)")
    parser.add_argument("--fps", type=number(float, 0, 1000, lo_open=True), help="camera frame rate to ask for (Hz)")
    add_pose_arguments(parser)
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=DETECTOR_HELP)
    add_engine_arguments(parser)
    parser.add_argument("--rotate", type=int, choices=ROTATIONS_DEG, default=0, metavar="DEG",
                        help="turn the picture this many degrees clockwise, 0, 90, 180 or 270 (a camera mounted "
                        "sideways or upside down; also in the panel)")
    add_turned_search_argument(parser)
    parser.add_argument("--screenshot-dir", default=".", help="folder for screenshots (S key); made if missing")
    parser.add_argument("--screenshot-after", type=number(int, 1), metavar="N", help="save a screenshot after N frames")
    parser.add_argument("--quit-after", type=number(int, 1), metavar="N", help="quit after N frames drawn")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    require_files(("--weights", args.weights), ("--face-model", args.face_model))
    missing = check_outputs([Output(args.screenshot_dir, "--screenshot-dir", folder=True)],
                            [args.source, args.weights, args.face_model])

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our own error says it in one line
    # a folder's unreadable image stops the window with one error line (the view has no skipped frame to show)
    source = open_source(args.source, as_live=True, width=args.width, height=args.height, fps=args.fps,
                         skip_unreadable=False)
    try:
        check_qt()
        processor = FrameProcessor.from_config(pipeline_config(
            args.weights, detector=args.detector, device=args.device, backend=args.backend,
            detector_backend=args.detector_backend, focal_px=args.focal_px, hfov=args.hfov,
            face_model=args.face_model, pose_source=args.pose_source, turned_search=args.turned_search))
        landmarker, tuner = processor.landmarker, LiveTuner(processor, args.rotate)
    except BaseException:
        source.close()
        raise
    from realtime.gui.overlay import run_window  # needs Qt: imported once check_qt found it

    print(f"landmark backend: {landmarker.backend.name}", file=sys.stderr)

    make_folders(missing)  # the screenshot folder, once everything opened
    folder = Path(args.screenshot_dir)

    window = run_window(LivePipeline(source, tuner), tuner, screenshot_dir=folder,
                        screenshot_after=args.screenshot_after, quit_after=args.quit_after)
    for path in window.screenshots:
        print(f"screenshot: {path}", file=sys.stderr)
    if window.error is not None:
        raise window.error
    stats = window.stats
    latency = np.percentile(stats.latencies_ms, [50, 95]) if stats.latencies_ms else (np.nan, np.nan)
    print(f"{stats.processed} frames processed, {stats.dropped} dropped of {stats.decoded}, in {stats.wall_s:.1f} s "
          f"({stats.fps:.1f} fps); {window.frames_drawn} shown at {window.shown_fps:.1f} fps; latency p50 "
          f"{latency[0]:.1f} ms, p95 {latency[1]:.1f} ms", file=sys.stderr)
    return 128 + window.interrupted if window.interrupted else 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(levelname)s: %(message)s")  # e.g. the camera's reconnection warnings
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
