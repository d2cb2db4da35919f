"""Accuracy and stability of the live pipeline on a clip with per-frame ground truth.

    python -m realtime.clipscore [--weights W] [--clip assets/demo.mp4] [--truth assets/demo_truth.json]
                                 [--detector both|short|full] [--json OUT.json]

Runs the whole per-frame chain (``FrameProcessor``: detection, tracking, batched landmarks,
smoothing, pose) over every frame of the clip twice, with the One Euro smoothing off ("raw") and
on ("smoothed", the pipeline's defaults), and compares each frame's face with the truth that
``python -m train.tools.make_demo_clip`` stored beside the clip:

- ``found``: the fraction of frames with a face (the one nearest the truth when there are several);
- ``nme``: mean over found frames of the mean point error divided by the truth's outer-eye-corner
  distance (iBUG points 37 and 46; the 300-W "inter-ocular" convention), in %;
- ``jitter``: on the still segment (``still_frames``, where the truth does not move but the
  sensor noise and lighting do), the RMS over frames and points of each point's distance from its
  own mean over the segment, in % of the outer-eye-corner distance. It measures wobble, not bias.

Only 68-point (ibug68) models can be scored: the truth has 68 points.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from realtime.core.assets import DEMO_CLIP as DEFAULT_CLIP
from realtime.core.assets import LANDMARKS_68 as DEFAULT_WEIGHTS, WEIGHTS_HELP, weights_path
from realtime.core.atomic import write_text_atomic
from realtime.core.cliargs import Parser
from realtime.core.errors import UserError, require_files, run_command
from realtime.core.outpaths import Output, prepare_outputs
from realtime.detect.detector import DEFAULT_DETECTOR, DETECTOR_HELP, DETECTORS
from realtime.pipeline.cliptruth import (  # noqa: F401  (re-exported for the command line's users)
    OUTER_EYE_CORNERS,
    ClipTruth,
    nearest_face,
    score,
    score_clip,
    track_clip,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m realtime.clipscore", description=__doc__.split("\n\n")[0], version_weights=DEFAULT_WEIGHTS)
    p.add_argument("--weights", type=weights_path, default=DEFAULT_WEIGHTS, help=WEIGHTS_HELP)
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="the clip (default: the bundled demo)")
    p.add_argument("--truth", help="its truth JSON (default: CLIP's stem + _truth.json beside it)")

    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=DETECTOR_HELP)
    p.add_argument("--json", help="also write the scores to this .json file")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    clip = Path(args.clip)
    if not clip.is_file():
        raise UserError(f"clip not found: {clip}")
    require_files(("--weights", args.weights))
    prepare_outputs([Output(args.json, "--json", (".json",))], [clip, args.weights, args.truth])
    truth = ClipTruth.load(args.truth or clip.with_name(clip.stem + "_truth.json"))
    scores = score_clip(args.weights, clip, truth, args.detector)
    for name, s in scores.items():
        print(f"{name:8s}: face found in {100 * s['found']:.1f}% of {s['frames']} frames; NME {s['nme_pct']:.2f}% "
              f"(median {s['nme_median_pct']:.2f}%); still-segment jitter {s['jitter_pct']:.3f}% of the "
              f"outer-eye-corner distance (RMS, {s['still_frames']} frames)")
    if args.json:
        write_text_atomic(Path(args.json), json.dumps({"weights": str(args.weights), "clip": str(clip),
                                                       "detector": args.detector, **scores}, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
