"""``python -m train.compare``: our landmarks against MediaPipe's face mesh on human-annotated
faces, on the 7 points the two layouts share.

    python -m train.compare [--data '300w:300W_FOLDER:train?part=val'] [--weights W]   # docs/data.md
                            [--detector both|short|full] [--limit N] [-o docs/compare_mediapipe]

Both systems get the same input, each face's image as a still (for the 300-W folder of docs/data.md:
the crop, twice the face box), and find the face with their own detectors:

- **ours**: the live pipeline's per-frame chain from a fresh start (BlazeFace, a crop from the
  detection, landmarks, a second crop from them, landmarks again; ``realtime.pipeline.processor.FrameProcessor``);
- **MediaPipe**: its own detector and 468-point mesh in static-image mode (a detection on every
  image; ``realtime.compare.mediapipe_mesh``, skipped with the reason when mediapipe is missing);
- **ours, true box**: the landmark model alone on the crop the tracker would cut from the true
  points (no detector): what the network does when the framing is right.

A face a system does not find counts as not found (the count is reported); when it finds several
the one nearest the truth is scored. The measure is the mean distance over the 7 shared points
(outer and inner eye corners, mouth corners, nose tip; iBUG-68 -> mesh-468 indices in
``realtime/compare/mediapipe_mesh.py``) over the true outer-eye-corner distance (iBUG 36-45, 0-based), in
%: the mean and median over the faces found, failures (> 10%) among them, and the mean over the
faces every system found (the fair comparison). Ours also gets its 68-point NME. Writes
``OUT/compare.json`` and ``OUT/compare.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from realtime.compare import mediapipe_mesh as mpm
from realtime.core.assets import LANDMARKS_68 as DEFAULT_WEIGHTS
from realtime.core.atomic import write_text_atomic
from realtime.core.cliargs import Parser, number
from realtime.core.errors import UserError, run_command
from realtime.core.measure import machine, shown_path
from realtime.core.outpaths import Output, check_outputs, make_folders
from realtime.detect.detector import (
    DEFAULT_DETECTOR,
    DETECTOR_HELP,
    DETECTORS,
    make_detector,
)
from realtime.geometry.crops import crop_matrix
from realtime.io.capture import CapturedFrame
from realtime.pipeline.cliptruth import OUTER_EYE_CORNERS, nearest_face
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.processor import FrameProcessor
from realtime.stages.landmarker import Landmarker
from realtime.stages.tracker import box_from_landmarks
from train.data.datasets import open_dataset
from train.data.datasets.landmark_set import sample_image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = "300w:../shared/data/300w:train?part=val"  # --data's default: the 300-W folder (docs/data.md)
SYSTEMS = {"ours": "ours (BlazeFace + landmarks)", "mediapipe": "MediaPipe face mesh 0.10.21 (static mode)",
           "ours_true_box": "ours, crop from the true box (no detector)"}


def predict(spec: str, weights: Path, detector: str, device: str, backend: str, limit: int | None) -> dict:
    """Per system, per face: the (7, 2) shared points or None; plus ours' 68 points, the truths
    (N, 68, 2) and mean ms per image. MediaPipe's entry is {"skipped": reason} when it cannot run."""

    dataset = open_dataset(spec)
    if dataset.layout != "ibug68":
        raise UserError(f"{spec} has layout {dataset.layout}; the comparison needs ibug68 (68-point) faces")
    samples = dataset.samples[:limit]
    landmarker = Landmarker(weights, device, backend=backend)
    if landmarker.num_points != 68:
        raise UserError(f"{weights} gives {landmarker.num_points} points; the comparison needs a 68-point model")
    det = make_detector(detector, "auto", device)
    config = PipelineConfig(Path(weights), detector, device, face_model_3d=None, backend=backend)
    reason = mpm.missing_reason()
    mesh = mpm.MediaPipeMesh(video=False) if reason is None else None
    landmarker.warmup()  # first calls (backend set-up, detector) stay out of the timings, for both systems
    blank = np.zeros((128, 128, 3), np.uint8)
    det(blank)
    if mesh is not None:
        mesh(blank)
    shared: dict[str, list] = {name: [] for name in SYSTEMS}
    ours68, truths, busy = [], [], {"ours": 0.0, "mediapipe": 0.0}
    for sample in samples:
        rgb, truth = sample_image(sample), np.asarray(sample.points, np.float64)
        if not np.linalg.norm(truth[36] - truth[45]) > 0:
            raise UserError(f"{sample.ident or sample.image_path}: its true outer eye corners (iBUG 36, 45) coincide")
        truths.append(truth)
        processor = FrameProcessor.from_config(config, landmarker, det)  # a fresh start per image: no tracks, no smoothing
        start = time.perf_counter()
        packet = processor(CapturedFrame(0, 0.0, rgb))
        busy["ours"] += time.perf_counter() - start
        face = nearest_face([f.points for f in packet.faces], truth)
        ours68.append(face)
        shared["ours"].append(None if face is None else mpm.shared_from_ibug(face))
        box, roll = box_from_landmarks(truth, landmarker.layout)
        points, _ = landmarker(rgb, [crop_matrix(*box, landmarker.input_size, rotation_deg=roll)])
        shared["ours_true_box"].append(mpm.shared_from_ibug(points[0]))
        if mesh is not None:
            start = time.perf_counter()
            faces = mesh(rgb)
            busy["mediapipe"] += time.perf_counter() - start
            shared["mediapipe"].append(nearest_face([mpm.shared_from_mesh(f) for f in faces],
                                                    mpm.shared_from_ibug(truth)))
    if mesh is not None:
        mesh.close()
    return {"dataset": dataset.name, "shared": shared, "ours68": ours68, "truths": np.array(truths),
            "ms_per_image": {k: 1e3 * v / max(len(samples), 1) for k, v in busy.items()},
            "mediapipe_skipped": reason, "settings": None if mesh is None else mesh.settings}


def summarise(pred: dict) -> dict:
    truths, shared = pred["truths"], pred["shared"]
    out: dict = {"faces": len(truths), "systems": {}}
    ran = [k for k in SYSTEMS if not (k == "mediapipe" and pred["mediapipe_skipped"])]
    both = [i for i in range(len(truths)) if all(shared[k][i] is not None for k in ran)]
    for name in SYSTEMS:
        if name not in ran:
            out["systems"][name] = {"skipped": pred["mediapipe_skipped"]}
            continue
        r = mpm.score7(shared[name], truths)
        r["not_found"] = sum(p is None for p in shared[name])
        r["nme_common_pct"] = mpm.score7([shared[name][i] for i in both], truths[both])["nme_pct"]
        if name in pred["ms_per_image"]:
            r["ms_per_image"] = pred["ms_per_image"][name]
        out["systems"][name] = r
    a, b = OUTER_EYE_CORNERS
    e68 = [np.linalg.norm(p - t, axis=1).mean() / np.linalg.norm(t[a] - t[b])
           for p, t in zip(pred["ours68"], truths) if p is not None]
    out["systems"]["ours"]["nme68_pct"] = 100 * float(np.mean(e68)) if e68 else float("nan")
    out["common_faces"] = len(both)
    return out


def render(doc: dict) -> str:
    s = doc["summary"]
    lines = ["# Ours against MediaPipe's face mesh on human-annotated faces", "",
             f"`{doc['command']}`: {s['faces']} faces of `{doc['data']}` ({doc['dataset']}), weights "
             f"`{doc['weights']}`, our detector `{doc['detector']}`; {doc['machine']}.", "",
             "NME over the 7 points the layouts share (outer and inner eye corners, mouth corners, nose tip), "
             "in % of the true outer-eye-corner distance. Each system finds the face in the same image with "
             "its own detector; faces it misses are counted, not scored.", "",
             f"| system | found | not found | NME mean | median | > 10% | NME on the {s['common_faces']} faces "
             "all found |", "|---|---|---|---|---|---|---|"]
    for name, label in SYSTEMS.items():
        r = s["systems"][name]
        if "skipped" in r:
            lines.append(f"| {label} | skipped: {r['skipped']} | | | | | |")
            continue
        lines.append(f"| {label} | {r['faces'] - r['not_found']} | {r['not_found']} | {r['nme_pct']:.2f}% | "
                     f"{r['nme_median_pct']:.2f}% | {r['failures_pct']:.1f}% | {r['nme_common_pct']:.2f}% |")
    pairs = ", ".join(f"{i}->{j}" for i, j in zip(doc["points"]["ibug68"], doc["points"]["mesh468"]))
    lines += ["", f"Ours on all 68 points (faces found): NME {s['systems']['ours']['nme68_pct']:.2f}%.", "",
              f"Shared points, iBUG-68 -> mesh-468 (0-based): {pairs} (`realtime/compare/mediapipe_mesh.py`). "
              "Speed is the bench's (`python -m realtime.bench --parts mediapipe`); `compare.json` keeps each "
              "system's mean ms per image here as a rough figure only (one image at a time, on whatever load the "
              "machine had).", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m train.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="dataset spec of ibug68 faces (python -m train --help-specs; "
                   "the default reads the 300-W folder where docs/data.md keeps it)")
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="68-point landmark model (.safetensors)")
    p.add_argument("--detector", choices=DETECTORS, default=DEFAULT_DETECTOR, help=DETECTOR_HELP)
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:N")
    p.add_argument("--backend", default="eager", help="our landmark backend (eager: the reference)")
    p.add_argument("--limit", type=number(int, 1), help="only the first N faces (a quick check)")
    p.add_argument("-o", "--out", default="docs/compare_mediapipe", help="folder for compare.json and compare.md")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    weights = Path(args.weights)
    if not weights.is_file():
        raise UserError(f"weights not found: {weights}")
    missing = check_outputs([Output(args.out, "-o", folder=True)], [weights])
    pred = predict(args.data, weights, args.detector, args.device, args.backend, args.limit)
    if pred["mediapipe_skipped"]:
        print(f"[mediapipe] skipped: {pred['mediapipe_skipped']}", file=sys.stderr)
    doc = {"command": " ".join(["python -m train.compare", *args.argv]), "machine": machine(), "data": args.data,
           "dataset": pred["dataset"], "weights": shown_path(weights), "detector": args.detector,
           "points": {"ibug68": mpm.IBUG_INDICES.tolist(), "mesh468": mpm.MESH_INDICES.tolist()},
           "mediapipe_settings": pred["settings"], "summary": summarise(pred)}
    for name, r in doc["summary"]["systems"].items():
        print(f"{name:14s}: " + (f"skipped ({r['skipped']})" if "skipped" in r else
                                 f"found {r['faces'] - r['not_found']} of {r['faces']}, NME7 {r['nme_pct']:.2f}% "
                                 f"(median {r['nme_median_pct']:.2f}%, > 10%: {r['failures_pct']:.1f}%), "
                                 f"on the faces all found {r['nme_common_pct']:.2f}%"))
    out = Path(args.out)
    make_folders(missing)
    write_text_atomic(out / "compare.json", json.dumps(doc, indent=1, default=float) + "\n")
    write_text_atomic(out / "compare.md", render(doc))
    print(f"wrote {out / 'compare.json'}, {out / 'compare.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
