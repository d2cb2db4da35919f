"""The bundled clip as phones store it and as upside-down cameras see it: NME and cost per case.

    python tools/rotation_check.py [--out DIR] [--frames N] [--json OUT.json]

Cases (docs/rotation.md has the numbers this printed): ``plain`` (the clip re-encoded as is, the
reference every ratio is taken against), ``meta_180`` and ``meta_-90`` (the pixels stored upside
down or sideways, with the display rotation that shows them upright: what phones write),
``pixels_90``, ``pixels_180`` and ``pixels_270`` (the picture itself turned counter-clockwise, no
metadata: a camera mounted sideways or upside down, a person lying down; the truth turned with it),
and each ``pixels_*`` case again as ``*_no_search``, with ``turned_search`` off (what it changes:
at 180 degrees, the failure it fixes).

Every case runs the default pipeline (``FrameProcessor`` of ``PipelineConfig``, pose off) over the
clip read by ``VideoFileSource``, as ``realtime.video`` reads it, and scores the face nearest the
truth per frame: NME over the 68 points and over the 7 points the iBUG and MediaPipe layouts share
(the issue's measure), both in % of the outer-eye-corner distance; and counts the detector passes
(upright and turned). The two metadata cases also go through ``python -m realtime.video`` once,
and the annotated video's first frame is checked to be upright (its size, no rotation tag).
Correctness only: it times nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from realtime.compare.mediapipe_mesh import IBUG_INDICES
from realtime.core.assets import DEMO_CLIP, DEMO_TRUTH, LANDMARKS_68
from realtime.geometry.crops import transform_points
from realtime.geometry.orientation import Orientation
from realtime.io.capture import VideoFileSource
from realtime.pipeline.cliptruth import OUTER_EYE_CORNERS, ClipTruth, score, track_clip
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.processor import FrameProcessor
from realtime.video import main as video_main

# name -> (display orientation written beside the pixels, or None for none; turn of the picture itself)
CASES = {
    "plain": (None, Orientation()),
    "meta_180": (Orientation(2), Orientation()),
    "meta_-90": (Orientation(3), Orientation()),
    "pixels_90": (None, Orientation(1)),
    "pixels_180": (None, Orientation(2)),
    "pixels_270": (None, Orientation(3)),
}


def write_case(path: Path, frames: list[np.ndarray], rate: float, display: Orientation | None, turn: Orientation) -> None:
    """The frames turned by ``turn``, stored so that ``display`` shows them (stored = its inverse)."""
    import av  # the video extra

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round(rate))
        shown = [turn.apply(f) for f in frames]
        stored = shown if display is None else [display.inverse().apply(f) for f in shown]
        stream.width, stream.height, stream.pix_fmt = stored[0].shape[1], stored[0].shape[0], "yuv420p"
        stream.options = {"crf": "18", "preset": "medium"}
        if display is not None:
            stream.set_display_matrix(display.display_matrix())
        for image in stored:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def nme_7(points: list[np.ndarray | None], truth: ClipTruth) -> float:
    """Mean over found frames of the 7 shared points' mean error, % of the outer-eye-corner distance."""
    a, b = OUTER_EYE_CORNERS
    errors = [np.linalg.norm(p[IBUG_INDICES] - truth.points[i][IBUG_INDICES], axis=1).mean()
              / np.linalg.norm(truth.points[i, a] - truth.points[i, b]) for i, p in enumerate(points) if p is not None]
    return 100 * float(np.mean(errors)) if errors else float("nan")


def run_case(clip: Path, truth: ClipTruth, turned_search: bool) -> dict:
    config = PipelineConfig(Path(LANDMARKS_68), face_model_3d=None, turned_search=turned_search)
    processor = FrameProcessor.from_config(config)
    calls = [0]
    detect_batch = processor.detector.detect_batch

    def counted(images):
        calls[0] += len(images)
        return detect_batch(images)

    processor.detector.detect_batch = counted
    points = track_clip(processor, clip, truth)
    s = score(points, truth)
    return {"found": s["found"], "nme68_pct": s["nme_pct"], "nme7_pct": nme_7(points, truth),
            "detector_passes": calls[0], "turned_passes": processor.turned_search.passes}


def check_output(clip: Path, folder: Path) -> dict:
    """``realtime.video`` on ``clip``: the annotated video's first frame size and rotation tag."""
    import av

    out, marks = folder / f"{clip.stem}_out.mp4", folder / f"{clip.stem}_out.jsonl"
    if video_main([str(clip), "-o", str(out), "--landmarks", str(marks)]) != 0:
        return {"cli": "failed"}
    record = json.loads(marks.read_text().splitlines()[0])
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        return {"out_size": [frame.width, frame.height], "out_rotation": frame.rotation,
                "record_size": [record["width"], record["height"]], "record_rotation_deg": record["rotation_deg"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="folder for the generated clips and outputs (default: a temporary one)")
    parser.add_argument("--frames", type=int, default=0, help="use the first N frames only (default: all)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    with VideoFileSource(DEMO_CLIP) as source:
        frames, rate = [f.image for f in source], source.rate_hz
    frames = frames[:args.frames or None]
    full = ClipTruth.load(DEMO_TRUTH)
    height, width = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.out or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        results = {}
        searchless = [(f"{name}_no_search", case) for name, case in CASES.items() if name.startswith("pixels")]
        for name, (display, turn) in [*CASES.items(), *searchless]:
            clip = folder / f"{name.removesuffix('_no_search')}.mp4"
            if not clip.exists():
                write_case(clip, frames, rate, display, turn)
            truth = replace(full, points=transform_points(full.points[:len(frames)], turn.matrix(width, height)))
            results[name] = run_case(clip, truth, turned_search=not name.endswith("no_search"))
            if display is not None:
                results[name].update(check_output(clip, folder))
            plain = results["plain"]
            results[name]["nme7_ratio"] = results[name]["nme7_pct"] / plain["nme7_pct"]
            results[name]["nme68_ratio"] = results[name]["nme68_pct"] / plain["nme68_pct"]
            print(f"{name:22s} " + " ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}"
                                              for k, v in results[name].items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"frames": len(frames), "cases": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
