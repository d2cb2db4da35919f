"""Landmarks for a recorded video, an image or a folder of images, headless.

    python -m realtime.video INPUT -o OUT.mp4 --landmarks OUT.jsonl [--csv] [--weights W]
                             [--detector both|short|full] [--detector-backend auto|opencv|torch]
                             [--focal-px F | --hfov DEG] [--face-model F.npy] [--pose-source pnp|head]
                             [--backend auto|eager|onnxruntime|openvino|...]

Every input frame is processed, in order, and gets one landmarks record (JSON line, or CSV rows with
``--csv``): frame index, source file, timestamp, and per face its track id, box, points, scores and
head pose (yaw/pitch/roll degrees, ``realtime/pose.py``'s convention; from the shipped 3D mean face,
``realtime/meanface.py``, or its 5-point subset; none for layouts without 3D points; or, with
``--pose-source head``, from the weights' attribute head, which must predict yaw, pitch and roll).
An image, or a folder of images, is a set of independent pictures (stills): each is detected afresh,
with no tracking or smoothing carried over from the previous one, so a folder of N photos gives
exactly the points of N single-image runs; the records name each one's file (``source``, its name
inside the folder; for an image or a video, the path as given), and the annotated video shows them
one after the other at ``--rate``. The camera's intrinsics default to a 60 degree horizontal field
of view, typical of webcams. The annotated video is H.264 with the input's audio copied, pose drawn
as axes on each face. Outputs are atomic: bad input (a missing, empty, non-video or truncated file)
prints one ``error:`` line, exits with status 2 and leaves no output; the paths are checked before
any work (``realtime.outpaths``: an output that is the input, two outputs on one file, a folder, a
read-only place, a wrong extension). Ctrl-C, SIGTERM or SIGHUP finishes both outputs with the frames
done so far and exits with 128 + the signal (130 for Ctrl-C). The default weights are the bundled
68-point real-face model ``assets/rcn68_faces.safetensors`` (``python -m train.faces68``; model
card in ``assets/README.md``).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Callable

from realtime.assets import LANDMARKS_68 as DEFAULT_WEIGHTS
from realtime.cliargs import SCORE, NumberType, Parser, add_engine_arguments, add_pose_arguments, number  # noqa: F401  (add_*: re-exported)
from realtime.errors import UserError, require_files, run_command



def _progress(total: int | None) -> tuple[Callable[[], None], Callable[[], None]]:
    """(step, close) of a tqdm bar on stderr, or of a plain stderr counter without tqdm."""
    try:
        from tqdm import tqdm
    except ImportError:
        count = [0]

        def step() -> None:
            count[0] += 1
            if count[0] % 25 == 0:
                print(f"\r{count[0]} frames", end="", file=sys.stderr, flush=True)
        return step, lambda: print(f"\r{count[0]} frames", file=sys.stderr)
    bar = tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True)
    return lambda: bar.update(1), bar.close


LANDMARK_FORMATS = {".jsonl": "jsonl", ".csv": "csv"}
VIDEO_SUFFIXES = (".mp4",)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from realtime.detector import DEFAULT_DETECTOR, DETECTOR_HELP, DETECTORS

    parser = Parser(prog="python -m realtime.video", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="a video file, an image, or a folder of images")
    parser.add_argument("-o", "--output", required=True, help="annotated H.264 video (.mp4)")
    parser.add_argument("--landmarks", required=True, help="landmarks file: .jsonl (JSON lines), or .csv (one row "
                        "per face; the format follows the extension)")
    parser.add_argument("--csv", action="store_true", help="write the landmarks as CSV (the --landmarks name must "
                        "then end in .csv; a .csv name alone is enough)")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="landmark model (.safetensors)")
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=DETECTOR_HELP)
    add_engine_arguments(parser)
    parser.add_argument("--rate", type=number(float, 0, 1000, lo_open=True), default=30.0,
                        help="frame rate of the annotated video of a folder of images (Hz); each image is still "
                        "processed on its own")
    add_pose_arguments(parser)
    parser.add_argument("--min-confidence", type=NumberType(float, SCORE), default=None,
                        help="re-detect when a track's mean point score (0-1) falls below this (default: the "
                        "threshold stored in the weights)")
    return parser.parse_args(argv)


def landmarks_format(path: str, csv: bool) -> str:
    """The landmarks format: the extension's (.jsonl or .csv); ``--csv`` with a .jsonl name is a
    contradiction and any other extension is refused (``UserError``)."""
    suffix = Path(path).suffix.lower()
    if suffix not in LANDMARK_FORMATS:
        raise UserError(f"--landmarks {path}: expected a .jsonl or .csv file name (the format follows the "
                        f"extension), not {suffix or 'no extension'!r}")
    if csv and suffix != ".csv":
        raise UserError(f"--csv writes CSV but --landmarks {path} ends in {suffix}: name it .csv, or drop --csv")
    return LANDMARK_FORMATS[suffix]


def check_paths(args: argparse.Namespace) -> list[Path]:
    """Every path of the command checked before any work (``realtime.outpaths``); returns the
    output folders still to create."""
    from realtime.outpaths import Output, check_outputs

    if not Path(args.input).exists():
        raise UserError(f"input not found: {args.input}")
    if importlib.util.find_spec("av") is None:
        raise UserError("the annotated video is written with PyAV, which is not installed: "
                        "pip install 'rcn-realtime[video]' (or pip install -e '.[video]' in a checkout)")
    require_files(("--weights", args.weights), ("--face-model", args.face_model))
    missing = check_outputs([Output(args.output, "-o", VIDEO_SUFFIXES), Output(args.landmarks, "--landmarks")],
                            inputs=[args.input, args.weights, args.face_model])
    args.format = landmarks_format(args.landmarks, args.csv)
    return missing


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from realtime.capture import VideoFileSource, open_source
    from realtime.meanface import load_face_model
    from realtime.packet import FramePacket
    from realtime.pipeline import FrameProcessor, PipelineConfig, run_file
    from realtime.tracker import TrackerConfig
    from realtime.outpaths import make_folders
    from realtime.signals import deferred, exit_code, interrupted_line
    from realtime.video_out import LandmarksWriter, VideoWriter, draw_overlay

    missing = check_paths(args)
    tracker = TrackerConfig()
    if args.min_confidence is not None:
        tracker = replace(tracker, min_confidence=args.min_confidence)
    face_model = "auto" if args.face_model is None else load_face_model(args.face_model)
    config = PipelineConfig(Path(args.weights), args.detector, args.device, tracker=tracker, face_model_3d=face_model,
                            focal_px=args.focal_px, hfov_deg=args.hfov, pose_source=args.pose_source,
                            backend=args.backend, detector_backend=args.detector_backend)
    processor = FrameProcessor.from_config(config)
    source = open_source(args.input, rate_hz=args.rate)
    is_video = isinstance(source, VideoFileSource)
    total = (source.declared_frames or None) if is_video else len(getattr(source, "files", [0]))
    outputs: list = []
    try:
        make_folders(missing)
        outputs.append(VideoWriter(args.output, rate_hz=source.rate_hz if is_video else args.rate,
                                   audio_from=args.input if is_video else None))
        outputs.append(LandmarksWriter(args.landmarks, args.format,
                                       processor.landmarker.num_points))
    except BaseException:
        source.close()
        for output in outputs:
            output.abort()
        raise
    video, landmarks = outputs
    print(f"landmark backend: {processor.landmarker.backend.name}", file=sys.stderr)
    step, close_bar = _progress(total)

    def on_packet(packet: FramePacket) -> None:
        image = draw_overlay(packet.image, packet)
        with deferred():  # a frame's video and record are written whole, or not at all
            video.write(image, packet.t_capture)
            landmarks.write(packet)
        step()

    try:
        stats = run_file(source, processor, on_packet, queue_size=config.queue_size)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: keep what is done, both files valid
        close_bar()
        video.close()
        landmarks.close()
        print(interrupted_line(exc, f"wrote the {landmarks.frames} frames done so far"), file=sys.stderr)
        return exit_code(exc)
    except BaseException:  # bad input (a truncated video) or a failure: leave no output
        close_bar()
        video.abort()
        landmarks.abort()
        raise
    close_bar()
    video.close()
    landmarks.close()
    print(f"{stats.processed} frames in {stats.wall_s:.1f} s ({stats.fps:.1f} fps): "
          f"{args.output}, {args.landmarks}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
