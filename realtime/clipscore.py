"""Accuracy and stability of the live pipeline on a clip with per-frame ground truth.

    python -m realtime.clipscore [--weights W] [--clip assets/demo.mp4] [--truth assets/demo_truth.json]
                                 [--detector both|short|full] [--json OUT.json]

Runs the whole per-frame chain (``FrameProcessor``: detection, tracking, batched landmarks,
smoothing, pose) over every frame of the clip twice, with the One Euro smoothing off ("raw") and
on ("smoothed", the pipeline's defaults), and compares each frame's face with the truth that
``python -m train.democlip`` stored beside the clip:

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.assets import DEMO_CLIP as DEFAULT_CLIP
from realtime.atomic import write_text_atomic
from realtime.errors import UserError, run_command

OUTER_EYE_CORNERS = (36, 45)  # 0-based iBUG indices of points 37 and 46


@dataclass(frozen=True)
class ClipTruth:
    """``points`` (N, 68, 2) frame pixels per frame index; ``still`` the half-open frame range."""

    points: np.ndarray
    still: tuple[int, int]
    layout: str

    @staticmethod
    def load(path: str | Path) -> "ClipTruth":
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            frames = sorted(doc["frames"], key=lambda f: f["index"])
            points = np.asarray([f["points"] for f in frames], np.float64)
            still = tuple(int(v) for v in doc["still_frames"])
            layout = str(doc["layout"])
        except FileNotFoundError:
            raise UserError(f"clip truth not found: {path}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: not a clip truth file ({type(exc).__name__}: {exc})") from None
        if [f["index"] for f in frames] != list(range(len(frames))) or points.ndim != 3:
            raise UserError(f"{path}: frames must be indexed 0..N-1, each with K (x, y) points")
        return ClipTruth(points, (still[0], still[1]), layout)


def nearest_face(faces: list[np.ndarray], truth: np.ndarray) -> np.ndarray | None:
    """The (K, 2) face among ``faces`` whose centroid is nearest the truth's, or None."""
    if not faces:
        return None
    centre = truth.mean(0)
    return min(faces, key=lambda p: float(np.linalg.norm(p.mean(0) - centre)))


def score(predicted: list[np.ndarray | None], truth: ClipTruth) -> dict[str, float]:
    """``predicted[i]`` (K, 2) points of frame i (None: no face) -> found, nme %, jitter %."""
    if len(predicted) != len(truth.points):
        raise UserError(f"the clip gave {len(predicted)} frames but its truth has {len(truth.points)}")
    k = truth.points.shape[1]
    if any(p is not None and p.shape != (k, 2) for p in predicted):
        raise UserError(f"the predictions do not have the truth's {k} points ({truth.layout}): score a {truth.layout} model")
    a, b = OUTER_EYE_CORNERS
    iod = np.linalg.norm(truth.points[:, a] - truth.points[:, b], axis=1)
    found = [i for i, p in enumerate(predicted) if p is not None]
    errors = [np.linalg.norm(predicted[i] - truth.points[i], axis=1).mean() / iod[i] for i in found]
    lo, hi = truth.still
    still = [i for i in found if lo <= i < hi]
    if len(still) >= 2:
        segment = np.stack([predicted[i] for i in still])
        wobble = np.linalg.norm(segment - segment.mean(0), axis=2)
        jitter = float(np.sqrt(np.mean(wobble ** 2)) / iod[still].mean())
    else:
        jitter = float("nan")
    return {"frames": len(predicted), "found": len(found) / len(predicted),
            "nme_pct": 100 * float(np.mean(errors)) if errors else float("nan"),
            "nme_median_pct": 100 * float(np.median(errors)) if errors else float("nan"),
            "still_frames": len(still), "jitter_pct": 100 * jitter}


def track_clip(processor, clip: str | Path, truth: ClipTruth, max_frames: int | None = None) -> list[np.ndarray | None]:
    """``processor``'s (a ``FrameProcessor``) points per frame of ``clip``, the face nearest the
    truth's, in frame order (the first ``max_frames`` frames when given)."""
    from realtime.capture import VideoFileSource

    out: list[np.ndarray | None] = []
    with VideoFileSource(clip) as source:
        for frame in source:
            if max_frames is not None and len(out) >= max_frames:
                source.stop()
                break
            packet = processor(frame)
            i = min(len(out), len(truth.points) - 1)
            out.append(nearest_face([f.points for f in packet.faces], truth.points[i]))
    return out


def score_clip(weights: str | Path, clip: str | Path, truth: ClipTruth, detector: str | None = None) -> dict[str, dict]:
    """``score`` of the whole pipeline on ``clip`` with smoothing off ("raw") and on ("smoothed")."""
    from realtime.detector import DEFAULT_DETECTOR, make_detector
    from realtime.landmarker import Landmarker
    from realtime.pipeline import FrameProcessor
    from realtime.smoothing import SmoothingParams

    landmarker = Landmarker(weights)
    if landmarker.num_points != truth.points.shape[1]:
        raise UserError(f"{weights} gives {landmarker.num_points} points but the clip's truth has "
                        f"{truth.points.shape[1]} ({truth.layout}): score a {truth.layout} model")
    return {name: score(track_clip(FrameProcessor(landmarker, make_detector(detector or DEFAULT_DETECTOR),
                                                  smoothing=SmoothingParams(enabled=smoothing)), clip, truth), truth)
            for name, smoothing in (("raw", False), ("smoothed", True))}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from realtime.video import DEFAULT_WEIGHTS

    from realtime.cliargs import Parser

    p = Parser(prog="python -m realtime.clipscore", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="68-point landmark model (.safetensors)")
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="the clip (default: the bundled demo)")
    p.add_argument("--truth", help="its truth JSON (default: CLIP's stem + _truth.json beside it)")
    from realtime.detector import DEFAULT_DETECTOR, DETECTOR_HELP, DETECTORS

    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=DETECTOR_HELP)
    p.add_argument("--json", help="also write the scores to this .json file")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from realtime.outpaths import Output, prepare_outputs

    clip = Path(args.clip)
    if not clip.is_file():
        raise UserError(f"clip not found: {clip}")
    if not Path(args.weights).is_file():
        raise UserError(f"--weights file not found: {args.weights}")
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
