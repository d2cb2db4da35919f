"""What a detector setting finds, and what the tracker makes of it: the numbers behind docs/detection.md.

    python -m train.tools.score_detector [--detector short|full] [--thresholds 0.5,0.6] [--nms-iou 0.3]
                                   [--clip PATH ...] [--faces300w DIR] [--track] [--json OUT.json]

Detection part, one row per (detector, threshold, NMS IoU), the detector alone on every frame or crop:

- each ``--clip`` (default: the bundled ``assets/demo.mp4`` and the real-footage clip ``video_01.mp4``
  of docs/data.md when it is where that page keeps it): faces per frame as a histogram, the share
  of frames with at least k faces, duplicate pairs (two faces of one frame whose centres are closer
  than half their mean box side: one face found twice), and the median milliseconds of one call
  (letterbox + network + decode);
- ``--faces300w`` (default: the 300-W folder of docs/data.md when it exists): the 300-W training crops
  (``afw/``, ``helen/trainset/``: the face fills about half of the crop) as they are, and "tight"
  (cut to a square 1.25x the annotated points' box, so the face fills the frame, as a face right in
  front of a webcam does). A face is found when a detection has IoU >= 0.3 with the box of its 68
  annotated points; every other detection counts as extra.

Tracking part (``--track``): the whole ``FrameProcessor`` (the pipeline's defaults, the bundled
landmark model) over each clip in order, as ``python -m realtime.video`` runs it: distinct track
ids, faces per frame, duplicate pairs, and how many frames ran the detector.

The clips and crops are read, never copied: nothing of these data sets lands in the repository.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from realtime.core.assets import DEMO_CLIP
from realtime.core.assets import LANDMARKS_68 as DEFAULT_WEIGHTS
from realtime.core.atomic import write_text_atomic
from realtime.core.cliargs import Parser, Range
from realtime.core.errors import UserError, run_command
from realtime.core.outpaths import Output, prepare_outputs
from realtime.detect.detector import (
    DEFAULT_DETECTOR,
    DETECTORS,
    iou_matrix,
    make_detector,
)
from realtime.io.capture import VideoFileSource
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.processor import FrameProcessor
from train.data.datasets.landmark_set import sample_image
from train.data.datasets.ibug300w import SPLITS, load_300w, present_subsets

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DEFAULT_CLIPS = (DEMO_CLIP, SHARED_DATA / "video" / "video_01.mp4")
DEFAULT_300W = SHARED_DATA / "300w"
MATCH_IOU = 0.3
TIGHT_SCALE = 1.25


def read_frames(path: str | Path) -> list[np.ndarray]:
    """Every frame of a video file, (H, W, 3) uint8 RGB."""

    with VideoFileSource(path) as source:
        return [frame.image for frame in source]


def crops_300w(root: str | Path, tight: bool = False) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(RGB image, face box xyxy from its points) for every annotated crop of ``root``'s 300-W
    training split (``train.data.datasets.ibug300w``: whichever of its folders exist); ``tight`` cuts
    each to a square ``TIGHT_SCALE`` x the points' box first."""

    for sample in load_300w(root, "train").samples:
        image, points = sample_image(sample), sample.points.astype(np.float64)
        box = np.concatenate([points.min(0), points.max(0)])
        if tight:
            (cx, cy), half = (box[:2] + box[2:]) / 2, TIGHT_SCALE * float((box[2:] - box[:2]).max()) / 2
            x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
            image = image[y0:round(cy + half), x0:round(cx + half)]
            box = box - [x0, y0, x0, y0]
        yield image, box


def duplicate_pairs(boxes: np.ndarray) -> int:
    """Pairs among (N, 4) xyxy boxes whose centres are closer than half their mean side."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    centres, sides = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]).mean(1)
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    close = gaps < 0.25 * (sides[:, None] + sides[None])
    return int(np.triu(close, 1).sum())


def count_summary(counts: Sequence[int], duplicates: int) -> dict:
    """Faces per frame -> histogram, share of frames with >= k faces, duplicate pairs."""
    counts = np.asarray(counts, int)
    top = int(counts.max()) if len(counts) else 0
    return {"frames": int(len(counts)), "histogram": np.bincount(counts, minlength=top + 1).tolist(),
            "at_least": {k: float(np.mean(counts >= k)) for k in range(1, top + 1)},
            "max_faces": top, "duplicate_pairs": duplicates}


def clip_detections(detector, frames: Sequence[np.ndarray]) -> dict:
    """The detector alone on every frame: ``count_summary`` plus the median ms of a call."""
    detector(frames[0])  # warm-up
    counts, duplicates, ms = [], 0, []
    for frame in frames:
        found = detector(frame)
        ms.append(detector.last_ms)
        counts.append(len(found))
        duplicates += duplicate_pairs(found.boxes)
    return {**count_summary(counts, duplicates), "ms_median": float(np.median(ms))}


def crop_recall(detector, crops: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Faces found (a detection with IoU >= ``MATCH_IOU`` with the points' box) and extra detections."""

    total = found = extra = 0
    for image, box in crops:
        boxes = detector(image).boxes
        iou = iou_matrix(box[None], boxes)[0] if len(boxes) else np.zeros(0)
        total += 1
        found += bool(len(iou) and iou.max() >= MATCH_IOU)
        extra += int(len(iou) - (len(iou) and iou.max() >= MATCH_IOU))
    return {"faces": total, "found": found, "recall": found / max(total, 1), "extra": extra}


def track_clip(processor, clip: str | Path) -> dict:
    """The whole per-frame chain over ``clip`` in order: ``count_summary`` of the faces it reports,
    distinct track ids, frames that ran the detector, and the fps of the processing alone."""

    counts, ids, duplicates, busy_s = [], set(), 0, 0.0
    detector, calls = processor.detector, [0]

    def counted(image: np.ndarray):
        calls[0] += 1
        return detector(image)

    processor.detector = counted
    with VideoFileSource(clip) as source:
        for frame in source:
            start = time.perf_counter()
            packet = processor(frame)
            busy_s += time.perf_counter() - start
            counts.append(len(packet.faces))
            ids |= {face.track_id for face in packet.faces}
            duplicates += duplicate_pairs(np.array([face.box_xyxy for face in packet.faces]))
    processor.detector = detector
    return {**count_summary(counts, duplicates), "distinct_ids": len(ids), "detector_frames": calls[0],
            "process_fps": len(counts) / busy_s if busy_s else 0.0}


def _floats(text: str, what: str, valid) -> list[float]:
    """A comma list of numbers, each finite and inside ``valid`` (a ``realtime.core.cliargs.Range``)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(valid.contains(v) for v in values):
        raise UserError(f"{what} must be a comma list of numbers in {valid.text()}, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m train.tools.score_detector", description=__doc__.split("\n\n")[0])
    p.add_argument("--detector", action="append", choices=DETECTORS,
                   help=f"BlazeFace model(s) to score, repeatable (default: {DEFAULT_DETECTOR})")
    p.add_argument("--thresholds", default=None, help="comma list of score thresholds, each in (0, 1) (default: "
                   "the model's)")
    p.add_argument("--nms-iou", default=None, help="comma list of NMS IoU thresholds, each in (0, 1] (default: the "
                   "detector's)")
    p.add_argument("--clip", action="append", help="video(s) to score, repeatable (default: the bundled clip "
                   "and ../shared/data/video/video_01.mp4 when present: docs/data.md)")
    p.add_argument("--faces300w", default=None, help="300-W folder with afw/ and/or helen/trainset/ "
                   "(default: ../shared/data/300w when present, docs/data.md; 'none' to skip)")
    p.add_argument("--track", action="store_true", help="also run the whole pipeline (default settings) "
                   "over each clip: track ids, faces per frame")
    p.add_argument("--json", help="also write every number to this .json file")
    return p.parse_args(argv)


def _detector(model: str, threshold: float | None, nms_iou: float | None):
    detector = make_detector(model, "auto", "cpu", score_threshold=threshold)
    if nms_iou is not None:
        detector.nms_iou = nms_iou
    return detector


def _line(name: str, s: dict) -> str:
    shares = ", ".join(f">={k}: {100 * v:.0f}%" for k, v in s["at_least"].items())
    return f"  {name}: faces/frame histogram {s['histogram']} ({shares}); duplicate pairs {s['duplicate_pairs']}"


def run(args: argparse.Namespace) -> int:
    models = args.detector or [DEFAULT_DETECTOR]
    thresholds = _floats(args.thresholds, "--thresholds", Range(0, 1, True, True)) if args.thresholds else [None]
    nms_values = _floats(args.nms_iou, "--nms-iou", Range(0, 1, lo_open=True)) if args.nms_iou else [None]
    clips = [Path(c) for c in args.clip] if args.clip else [c for c in DEFAULT_CLIPS if c.is_file()]
    for clip in clips:
        if not clip.is_file():
            raise UserError(f"clip not found: {clip}")
    prepare_outputs([Output(args.json, "--json", (".json",))], clips)
    faces_root = None if args.faces300w == "none" else Path(args.faces300w or DEFAULT_300W)
    if faces_root is not None and not present_subsets(faces_root, "train"):
        if args.faces300w:
            raise UserError(f"{faces_root} holds none of {', '.join(SPLITS['train'])}")
        faces_root = None
    frames = {str(clip): read_frames(clip) for clip in clips}
    crops = {kind: list(crops_300w(faces_root, kind == "tight")) for kind in ("as_is", "tight")} if faces_root else {}
    results: dict = {"command": " ".join(["python -m train.tools.score_detector", *(args.argv or [])]), "detection": []}
    for model in models:
        for threshold in thresholds:
            for nms_iou in nms_values:
                detector = _detector(model, threshold, nms_iou)
                row = {"detector": model, "threshold": detector.score_threshold, "nms_iou": detector.nms_iou,
                       "clips": {name: clip_detections(detector, f) for name, f in frames.items()},
                       "faces300w": {kind: crop_recall(detector, c) for kind, c in crops.items()}}
                results["detection"].append(row)
                print(f"{model} threshold {row['threshold']:.2f} nms {row['nms_iou']:.2f}", flush=True)
                for name, s in row["clips"].items():
                    print(_line(Path(name).name, s) + f"; {s['ms_median']:.2f} ms a call")
                for kind, s in row["faces300w"].items():
                    print(f"  300-W crops {kind}: found {s['found']} of {s['faces']} ({100 * s['recall']:.1f}%), "
                          f"extra {s['extra']}")
    if args.track:
        results["tracking"] = []
        for model in models:
            for name in frames:
                processor = FrameProcessor.from_config(PipelineConfig(DEFAULT_WEIGHTS, detector=model))
                processor.detector.score_threshold = thresholds[0] or processor.detector.score_threshold
                processor.detector.nms_iou = nms_values[0] or processor.detector.nms_iou
                s = {"detector": model, "threshold": processor.detector.score_threshold, "clip": name,
                     **track_clip(processor, name)}
                results["tracking"].append(s)
                print(f"tracking, {model} threshold {s['threshold']:.2f}, {Path(name).name}: {s['distinct_ids']} "
                      f"distinct ids, detector on {s['detector_frames']} of {s['frames']} frames, "
                      f"{s['process_fps']:.0f} fps (processing only)\n" + _line("reported faces", s), flush=True)
    if args.json:
        write_text_atomic(Path(args.json), json.dumps(results, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
