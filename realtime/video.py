"""Landmarks for a recorded video, an image or a folder of images, headless.

    python -m realtime.video INPUT -o OUT.mp4 --landmarks OUT.jsonl [--csv] [--weights W]
    python -m realtime.video A.mp4 B.mp4 ... -o OUTDIR [--csv]        (several inputs at once)
                             [--detector both|short|full] [--detector-backend auto|opencv|torch]
                             [--focal-px F | --hfov DEG] [--face-model F.npy] [--pose-source pnp|head]
                             [--backend auto|eager|onnxruntime|openvino|...] [--strict]
                             [--keep-stored-orientation] [--no-turned-search]

Every input frame is processed, in order, and gets one landmarks record (JSON line, or CSV rows with
``--csv``): frame index, source file, timestamp, and per face its track id, box, points, scores and
head pose (yaw/pitch/roll degrees, ``realtime/stages/pose.py``'s convention; from the shipped 3D mean face,
``realtime/geometry/meanface.py``, or its 5-point subset; none for layouts without 3D points; or, with
``--pose-source head``, from the weights' attribute head, which must predict yaw, pitch and roll).
An image, or a folder of images, is a set of independent pictures (stills): each is detected afresh,
with no tracking or smoothing carried over from the previous one, so a folder of N photos gives
exactly the points of N single-image runs; the records name each one's file (``source``, its name
inside the folder; for an image or a video, the path as given), and the annotated video shows them
one after the other at ``--rate``. One bad still does not lose the others: a file of a folder that
cannot be read as an image is skipped with one ``warning:`` line, its record says
``"skipped": <reason>`` (JSONL; a CSV gets the short row of a frame without faces), every other
image is processed and written, and the command ends with exit status 3 (``EXIT_SKIPPED``: done,
but not every input was read); ``--strict`` instead stops at the first such file (``error:``,
exit 2, no output). The camera's intrinsics default to a 60 degree horizontal field
of view, typical of webcams. The annotated video is H.264 with the input's audio copied, pose drawn
as axes on each face. Outputs are atomic: bad input (a missing, empty, non-video or truncated file)
prints one ``error:`` line, exits with status 2 and leaves no output; the paths are checked before
any work (``realtime.core.outpaths``: an output that is the input, two outputs on one file, a folder, a
read-only place, a wrong extension). Ctrl-C, SIGTERM or SIGHUP finishes both outputs with the frames
done so far and exits with 128 + the signal (130 for Ctrl-C). The default weights are the bundled
68-point real-face model ``assets/rcn68_faces.safetensors`` (``python -m train.faces68``; model
card in ``assets/README.md``).

Several inputs are processed at once (``realtime.pipeline.runners.run_streams``): ``-o`` is then a folder
that receives ``NAME.mp4`` and ``NAME.jsonl`` (``NAME.csv`` with ``--csv``) for each input
``NAME.ext``; each input keeps its own tracks and filters, each step detects on every input that
needs it in one batch and (on a GPU) runs one landmark batch over the faces of all inputs. On a
CPU the landmarks are computed per input, so every record equals the one a single-input run
writes. An input that turns out bad (a truncated file) leaves no output of its own; the others are
finished, and the command then reports the error (exit 2).

Phone video is processed as it is shown: a file's display rotation (the MP4 display matrix) is
applied to its pixels first, so detection, landmarks, records (``width``, ``height``,
``rotation_deg``, ``mirrored`` say which frame the coordinates refer to) and the annotated video,
written upright with no rotation of its own, are all in the orientation every player shows.
``--keep-stored-orientation`` keeps the pixels as stored instead: the records are then in the
stored frame, and the annotated video carries the input's display rotation, so it still plays like
the input. Faces turned in the picture itself (a camera upside down, a person lying down) are
found by trying the frame turned by a quarter turn when the detector finds no face, or finds one
whose landmarks are unsure (``--no-turned-search`` turns that off; docs/rotation.md).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Callable

from realtime.api import pipeline_config
from realtime.cli.options import add_engine_arguments, add_pose_arguments, add_turned_search_argument
from realtime.core.assets import LANDMARKS_68 as DEFAULT_WEIGHTS, WEIGHTS_HELP, weights_path
from realtime.core.cliargs import SCORE, NumberType, Parser, number
from realtime.core.errors import InputNotFoundError, UserError, require_files, run_command
from realtime.core.outpaths import Output, check_outputs, make_folders
from realtime.core.packet import FramePacket
from realtime.core.signals import deferred, exit_code, interrupted_line, raise_unhandled
from realtime.detect.detector import DEFAULT_DETECTOR, DETECTOR_HELP, DETECTORS
from realtime.io.capture import VideoFileSource, open_source
from realtime.io.video_out import LandmarksWriter, VideoWriter, draw_overlay
from realtime.pipeline.processor import FrameProcessor
from realtime.pipeline.runners import run_file, run_streams
from realtime.pipeline.writer_thread import OrderedWriter


def _progress(total: int | None) -> tuple[Callable[[], None], Callable[[], None], Callable[[str], None]]:
    """(step, close, say) of a tqdm bar on stderr, or of a plain stderr counter without tqdm;
    ``say(line)`` prints a line of its own above the bar."""
    try:
        from tqdm import tqdm
    except ImportError:
        count = [0]

        def step() -> None:
            count[0] += 1
            if count[0] % 25 == 0:
                print(f"\r{count[0]} frames", end="", file=sys.stderr, flush=True)
        return (step, lambda: print(f"\r{count[0]} frames", file=sys.stderr),
                lambda line: print(f"\r{line}", file=sys.stderr))
    bar = tqdm(total=total, unit="frame", file=sys.stderr, dynamic_ncols=True)
    return lambda: bar.update(1), bar.close, lambda line: bar.write(line, file=sys.stderr)


LANDMARK_FORMATS = {".jsonl": "jsonl", ".csv": "csv"}
EXIT_SKIPPED = 3  # every output written, but some stills could not be read (module docstring)
VIDEO_SUFFIXES = (".mp4",)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(prog="python -m realtime.video", description=__doc__.split("\n\n")[0], version_weights=DEFAULT_WEIGHTS)
    parser.add_argument("input", nargs="+", help="a video file, an image, or a folder of images; several: "
                        "processed at once, -o is then a folder")
    parser.add_argument("-o", "--output", required=True, help="annotated H.264 video (.mp4); with several "
                        "inputs, the folder for NAME.mp4 and NAME.jsonl (or .csv) of each input NAME.ext")
    parser.add_argument("--landmarks", help="landmarks file: .jsonl (JSON lines), or .csv (one row per face; the "
                        "format follows the extension); required with one input, not allowed with several")
    parser.add_argument("--csv", action="store_true", help="write the landmarks as CSV (the --landmarks name must "
                        "then end in .csv; a .csv name alone is enough)")
    parser.add_argument("--weights", type=weights_path, default=DEFAULT_WEIGHTS, help=WEIGHTS_HELP)
    parser.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=DETECTOR_HELP)
    add_engine_arguments(parser)
    parser.add_argument("--rate", type=number(float, 0, 1000, lo_open=True), default=30.0,
                        help="frame rate of the annotated video of a folder of images (Hz); each image is still "
                        "processed on its own")
    add_pose_arguments(parser)
    parser.add_argument("--strict", action="store_true", help="stop at the first image of a folder that cannot be "
                        "read (error, exit 2, no output) instead of skipping it with a warning (exit 3 at the end)")
    parser.add_argument("--keep-stored-orientation", action="store_true",
                        help="process a video's pixels as stored, not turned to its display rotation (records in the "
                        "stored frame; the annotated video carries the input's rotation; docs/rotation.md)")
    add_turned_search_argument(parser)
    parser.add_argument("--min-confidence", type=NumberType(float, SCORE), default=None,
                        help="re-detect when a track's mean point score (0-1) falls below this (default: the "
                        "threshold stored in the weights)")
    args = parser.parse_args(argv)
    if len(args.input) == 1:
        if args.landmarks is None:
            parser.error("the following arguments are required: --landmarks")
        args.input = args.input[0]
    elif args.landmarks is not None:
        parser.error("--landmarks names one file: with several inputs, each input's records go to -o "
                     "FOLDER/NAME.jsonl (or .csv with --csv)")
    return args


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


def stream_outputs(inputs: list[str], folder: str, csv: bool) -> list[tuple[Path, Path]]:
    """(video, landmarks) of each input in ``folder``: ``NAME.mp4`` and ``NAME.jsonl`` (``.csv``)
    for an input ``NAME.ext``; two inputs with one NAME are refused (``UserError``)."""
    names: dict[str, str] = {}
    out = []
    for given in inputs:
        name = Path(given.rstrip("/\\")).stem or Path(given).name
        if name in names:
            raise UserError(f"inputs {names[name]} and {given} would both write {name}.mp4 in {folder}: "
                            "rename one, or run them separately")
        names[name] = given
        out.append((Path(folder) / f"{name}.mp4", Path(folder) / f"{name}.{'csv' if csv else 'jsonl'}"))
    return out


def check_paths(args: argparse.Namespace) -> list[Path]:
    """Every path of the command checked before any work (``realtime.core.outpaths``); returns the
    output folders still to create."""

    inputs = args.input if isinstance(args.input, list) else [args.input]
    for given in inputs:
        if not Path(given).exists():
            raise InputNotFoundError(f"input not found: {given}")
    if importlib.util.find_spec("av") is None:
        raise UserError("the annotated video is written with PyAV, which is not installed: "
                        "pip install 'rcn-realtime[video]' (or pip install -e '.[video]' in a checkout)")
    require_files(("--weights", args.weights), ("--face-model", args.face_model))
    if isinstance(args.input, list):  # several inputs: -o is a folder
        args.streams = stream_outputs(args.input, args.output, args.csv)
        args.format = "csv" if args.csv else "jsonl"
        outputs = [Output(args.output, "-o", folder=True)]
        outputs += [Output(path, "-o", suffix) for pair in args.streams for path, suffix in zip(pair, (VIDEO_SUFFIXES, ()))]
        return check_outputs(outputs, inputs=[*inputs, args.weights, args.face_model])
    missing = check_outputs([Output(args.output, "-o", VIDEO_SUFFIXES), Output(args.landmarks, "--landmarks")],
                            inputs=[args.input, args.weights, args.face_model])
    args.format = landmarks_format(args.landmarks, args.csv)
    return missing


def run(args: argparse.Namespace) -> int:
    missing = check_paths(args)
    config = pipeline_config(args.weights, detector=args.detector, device=args.device, backend=args.backend,
                             detector_backend=args.detector_backend, focal_px=args.focal_px, hfov=args.hfov,
                             face_model=args.face_model, pose_source=args.pose_source,
                             min_confidence=args.min_confidence, turned_search=args.turned_search)
    if isinstance(args.input, list):
        return run_many(args, config, missing)
    processor = FrameProcessor.from_config(config)
    source = open_source(args.input, rate_hz=args.rate, skip_unreadable=not args.strict,
                         keep_stored=args.keep_stored_orientation)
    total = _declared_frames(source)
    try:
        make_folders(missing)
        outputs = _open_outputs(source, args.output, args.landmarks, args.format, processor.landmarker.num_points,
                                args.input, args.rate)
    except BaseException:
        source.close()
        raise
    video, landmarks = outputs
    print(f"landmark backend: {processor.landmarker.backend.name}", file=sys.stderr)
    step, close_bar, say = _progress(total)
    skipped: list[str] = []
    writer = OrderedWriter(config.queue_size)  # draws, encodes and writes while the next frame is processed

    def on_packet(packet: FramePacket) -> None:
        raise_unhandled()  # a stop signal whose exception something swallowed: raised before the frame
        if packet.skipped:
            skipped.append(packet.source)
        writer.submit(lambda: (write_frame(video, landmarks, packet, say), step()))

    start = time.monotonic()
    try:
        stats = run_file(source, processor, on_packet, queue_size=config.queue_size)
        writer.finish()
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: keep what is done, both files valid
        close_bar()
        finish_writes(writer, outputs)
        print(interrupted_line(exc, f"wrote the {landmarks.frames} frames done so far"), file=sys.stderr)
        return exit_code(exc)
    except BaseException:  # bad input (a truncated video) or a failure: leave no output
        close_bar()
        writer.stop()
        video.abort()
        landmarks.abort()
        raise
    wall_s = time.monotonic() - start  # to the last frame written
    close_bar()
    if skipped and len(skipped) == stats.processed:
        video.abort()
        landmarks.abort()
        raise UserError(f"none of the {len(skipped)} images of {args.input} could be read")
    video.close()
    landmarks.close()
    print(f"{stats.processed} frames in {wall_s:.1f} s ({stats.processed / max(wall_s, 1e-9):.1f} fps): "
          f"{args.output}, {args.landmarks}{skipped_note(skipped)}", file=sys.stderr)
    return EXIT_SKIPPED if skipped else 0


def finish_writes(writer: OrderedWriter, outputs: list) -> None:
    """After a stop signal: write the frames already processed and close ``outputs`` valid; a
    second signal meanwhile is held until they are (``deferred``) and then ignored: the command
    is stopping already. A write that fails aborts them instead, and its error is raised."""
    try:
        with deferred():
            writer.finish()
    except KeyboardInterrupt:
        pass
    except BaseException:
        for output in outputs:
            output.abort()
        raise
    for output in outputs:
        output.close()


def skipped_note(skipped: list[str]) -> str:
    """The end of a run's summary line: how many inputs were skipped, and the exit status that says so."""
    return f"; {len(skipped)} unreadable image(s) skipped (exit status {EXIT_SKIPPED})" if skipped else ""


def write_frame(video, landmarks, packet, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> bool:
    """One processed frame into its outputs: the annotated image and the record, written whole or
    not at all (on the main thread a stop signal waits until both are done; the commands call it
    on their writer thread, ``realtime.pipeline.writer_thread``, where no signal lands). A skipped
    input (``packet.skipped``) gets its record and one ``warning:`` line (through ``say``: above
    the progress bar), no video frame; returns whether it was one."""
    if packet.skipped:
        say(f"warning: skipped {packet.source}: {packet.skipped}")
        with deferred():
            landmarks.write(packet)
        return True
    image = draw_overlay(packet.image, packet)
    with deferred():
        video.write(image, packet.t_capture)
        landmarks.write(packet)
    return False


def _open_outputs(source, video_path, landmarks_path, fmt: str, num_points: int, input_path: str, rate: float) -> list:
    """The (video, landmarks) writers of one input; what was opened is aborted if one fails. The
    annotated video is tagged with the input's display rotation where the pixels were kept as stored."""

    is_video = isinstance(source, VideoFileSource)
    outputs: list = []
    try:
        outputs.append(VideoWriter(video_path, rate_hz=source.rate_hz if is_video else rate,
                                   audio_from=input_path if is_video else None,
                                   display=source.display if is_video and source.orientation.is_identity else None))
        outputs.append(LandmarksWriter(landmarks_path, fmt, num_points))
    except BaseException:
        for output in outputs:
            output.abort()
        raise
    return outputs


def _declared_frames(source) -> int | None:
    return (source.declared_frames or None) if isinstance(source, VideoFileSource) else len(getattr(source, "files", [0]))


def run_many(args: argparse.Namespace, config, missing: list[Path]) -> int:
    """Several inputs at once (module docstring): one processor per input over one shared
    landmarker and detector, ``run_streams`` driving them, one pair of outputs per input."""

    first = FrameProcessor.from_config(config)
    processors = [first] + [FrameProcessor.from_config(config, first.landmarker, first.detector)
                            for _ in args.input[1:]]
    sources: list = []
    writers: list[list] = []
    open_ = [True] * len(args.input)
    try:
        for path in args.input:
            sources.append(open_source(path, rate_hz=args.rate, skip_unreadable=not args.strict,
                                       keep_stored=args.keep_stored_orientation))
        make_folders(missing)
        for source, path, (video_path, landmarks_path) in zip(sources, args.input, args.streams):
            writers.append(_open_outputs(source, video_path, landmarks_path, args.format,
                                         first.landmarker.num_points, path, args.rate))
    except BaseException:
        for source in sources:
            source.close()
        for pair in writers:
            for output in pair:
                output.abort()
        raise
    print(f"landmark backend: {first.landmarker.backend.name}; {len(sources)} inputs at once", file=sys.stderr)
    totals = [_declared_frames(s) for s in sources]
    step, close_bar, say = _progress(None if None in totals else sum(totals))
    skipped: list[str] = []

    def on_packet(i: int, packet) -> None:
        raise_unhandled()  # a stop signal whose exception something swallowed: raised before the frame
        if write_frame(*writers[i], packet, say):
            skipped.append(packet.source)
        step()

    def on_end(i: int, error: BaseException | None) -> None:
        open_[i] = False
        for output in writers[i]:  # a failed input leaves nothing; the error is reported at the end
            output.close() if error is None else output.abort()

    def finish(keep: bool) -> None:
        close_bar()
        for i, pair in enumerate(writers):
            if open_[i]:
                open_[i] = False
                for output in pair:
                    output.close() if keep else output.abort()

    try:
        stats = run_streams(sources, processors, on_packet, on_end, queue_size=config.queue_size)
    except KeyboardInterrupt as exc:  # keep what is done: every unfinished output closed valid
        finish(keep=True)
        print(interrupted_line(exc, "wrote the frames done so far of every input"), file=sys.stderr)
        return exit_code(exc)
    except BaseException:
        finish(keep=False)
        raise
    finish(keep=True)
    frames = sum(st.processed for st in stats)
    wall = max(st.wall_s for st in stats)
    print(f"{frames} frames of {len(stats)} inputs in {wall:.1f} s ({frames / wall if wall else 0:.1f} fps "
          f"in all): {args.output}{skipped_note(skipped)}", file=sys.stderr)
    return EXIT_SKIPPED if skipped else 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
