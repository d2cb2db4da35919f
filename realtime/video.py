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
prints one ``error:`` line, exits with status 2 and leaves no output; Ctrl-C finishes both outputs
with the frames done so far and exits with status 130. The default weights are the bundled
68-point real-face model ``assets/rcn68_faces.safetensors`` (``python -m train.faces68``; model
card in ``assets/README.md``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from realtime.errors import exit_status

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "rcn68_faces.safetensors"


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


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--detector-backend``, ``--device`` and ``--backend``: shared by the video and webcam CLIs."""
    from realtime.backends.registry import BACKENDS

    parser.add_argument("--detector-backend", choices=("auto", "opencv", "torch"), default="auto",
                        help="run BlazeFace through OpenCV dnn or the PyTorch port on --device; auto: torch "
                        "on CUDA, else OpenCV (faster on CPU)")
    parser.add_argument("--device", default="cpu", help="torch device for the landmark model (and the torch detector)")
    parser.add_argument("--backend", default="auto",
                        help="inference backend of the landmark model: auto (the fastest whose landmarks stay "
                        "within 0.1 crop px of eager fp32; decided once per machine and model, then cached) "
                        f"or one of {', '.join(BACKENDS)} (README: Inference backends)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from realtime.detector import DEFAULT_DETECTOR, DETECTOR_HELP, DETECTORS

    parser = argparse.ArgumentParser(prog="python -m realtime.video", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="a video file, an image, or a folder of images")
    parser.add_argument("-o", "--output", required=True, help="annotated H.264 video (.mp4)")
    parser.add_argument("--landmarks", required=True, help="landmarks file (.jsonl, or .csv with --csv)")
    parser.add_argument("--csv", action="store_true", help="write the landmarks as CSV, one row per face")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="landmark model (.safetensors)")
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=DETECTOR_HELP)
    add_engine_arguments(parser)
    parser.add_argument("--rate", type=float, default=30.0, help="frame rate of the annotated video of a folder "
                        "of images (Hz); each image is still processed on its own")
    intrinsics = parser.add_mutually_exclusive_group()
    intrinsics.add_argument("--focal-px", type=float, help="camera focal length in pixels (head pose)")
    intrinsics.add_argument("--hfov", type=float, default=60.0, help="horizontal field of view in degrees, "
                            "for head pose when --focal-px is not given (default 60, typical of webcams)")
    parser.add_argument("--face-model", help="3D face (K, 3) .npy for head pose, K the model's point count "
                        "(default: the shipped mean face, assets/mean_face_68.npy, or its subset)")
    parser.add_argument("--pose-source", choices=("pnp", "head"), default="pnp",
                        help="head pose by solvePnP against the 3D face (default), or from the weights' "
                        "attribute head (needs one predicting yaw, pitch and roll)")
    parser.add_argument("--min-confidence", type=float, default=None,
                        help="re-detect when a track's mean point score falls below this")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from realtime.capture import VideoFileSource, open_source
    from realtime.meanface import load_face_model
    from realtime.packet import FramePacket
    from realtime.pipeline import FrameProcessor, PipelineConfig, run_file
    from realtime.tracker import TrackerConfig
    from realtime.video_out import LandmarksWriter, VideoWriter, draw_overlay

    tracker = TrackerConfig()
    if args.min_confidence is not None:
        tracker = replace(tracker, min_confidence=args.min_confidence)
    face_model = "auto" if args.face_model is None else load_face_model(args.face_model)
    processor = FrameProcessor.from_config(PipelineConfig(Path(args.weights), args.detector, args.device,
                                                          tracker=tracker, face_model_3d=face_model,
                                                          focal_px=args.focal_px, hfov_deg=args.hfov,
                                                          pose_source=args.pose_source, backend=args.backend,
                                                          detector_backend=args.detector_backend))
    source = open_source(args.input, rate_hz=args.rate)
    is_video = isinstance(source, VideoFileSource)
    total = (source.declared_frames or None) if is_video else len(getattr(source, "files", [0]))
    outputs: list = []
    try:
        outputs.append(VideoWriter(args.output, rate_hz=source.rate_hz if is_video else args.rate,
                                   audio_from=args.input if is_video else None))
        outputs.append(LandmarksWriter(args.landmarks, "csv" if args.csv else "jsonl",
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
        video.write(draw_overlay(packet.image, packet), packet.t_capture)
        landmarks.write(packet)
        step()

    try:
        stats = run_file(source, processor, on_packet)
    except KeyboardInterrupt:  # keep what is done: both files valid and complete so far
        close_bar()
        video.close()
        landmarks.close()
        print(f"interrupted: wrote the {landmarks.frames} frames done so far", file=sys.stderr)
        return 130
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
    args = parse_args(argv)
    return exit_status(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
