"""A trained network's points as labels for faces that have other points or none of its own.

``python -m train.tools.make_pseudo_labels --teacher W --data SPEC -o OUT`` labels every face of
the dataset ``SPEC`` with the 68 points (or whatever layout ``W`` predicts) of the network ``W``,
so that a student can learn from more faces than people annotated: knowledge distillation through
points, which costs a student nothing per update, where distillation through the teacher's maps
(``--distil-from``/``--distil-data``) runs the teacher on every batch. The faces' own labels only
frame the first crop: MTFL's 10,000 five-point faces (``mtfl:DIR:train``) become 68-point faces.

Each face is labelled in two passes, upright crops framed as training and evaluation frame a face
(``face_box_from_points``): the first crop by the dataset's points (their layout's face box), the
second by the box of the first pass's points, where the network runs on the crop and on its mirror
image (test-time flipping), and the label is the mean of the two. A face is kept when the network is sure of it (mean point score at least
``--min-score``, by default the re-detect threshold stored in ``W``) and the two views agree (mean
distance between them at most ``--max-disagreement`` of the outer-eye-corner distance): the rest
are faces the teacher cannot label well, whose points would teach its mistakes.

OUT holds, for each kept face, a relative link to its image (a copy where links fail) with a ``.json``
beside it (``train.data.datasets.folder``'s schema), readable as ``folder:OUT``, and
``pseudo_labels.json``: the teacher (path, SHA-256), the settings, the counts and every face's
score, disagreement and verdict (a face that cannot be read or framed is recorded as such and
skipped). The set is built in a scratch folder beside OUT and moved there when complete; an
existing OUT is replaced only with ``--overwrite``, and never when it is, holds or lies inside the
data it labels. Labels made from a dataset
inherit its terms (MTFL and 300-W: research, non-commercial): never commit them.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.core.atomic import atomic_folder, json_text, sha256, write_text_atomic
from realtime.core.cliargs import Parser, number
from realtime.core.errors import UserError, run_command
from realtime.core.outpaths import Output, check_outputs
from realtime.geometry.crops import crop_matrix, face_box_from_points
from realtime.geometry.layouts import get_layout
from realtime.stages.landmarker import Landmarker
from train.data.datasets import open_dataset, parse_spec
from train.data.datasets.landmark_set import FaceSample, LandmarkSet, sample_image

MANIFEST = "pseudo_labels.json"
VERDICTS = ("kept", "unsure", "views disagree", "skipped")


def label_face(landmarker: Landmarker, image: np.ndarray, sample: FaceSample, source_layout) -> dict:
    """One face's label: ``points`` (K, 2) image pixels (mean of the direct and mirrored views),
    ``score`` (mean point score of both views) and ``disagreement`` (mean distance between the two
    views over the outer-eye-corner distance of ``points``)."""
    side_in = landmarker.input_size
    layout = landmarker.layout
    cx, cy, side = face_box_from_points(sample.points, sample.visible, source_layout)
    first, _ = landmarker(image, [crop_matrix(cx, cy, side, out_size=side_in)])
    cx, cy, side = face_box_from_points(first[0], np.ones(len(first[0]), dtype=bool), layout)
    width = image.shape[1]
    mirrored = np.ascontiguousarray(image[:, ::-1])
    (direct, s_direct), (flipped, s_flipped) = landmarker.batch([
        (image, [crop_matrix(cx, cy, side, out_size=side_in)]),
        (mirrored, [crop_matrix(width - 1 - cx, cy, side, out_size=side_in)]),
    ])
    back = flipped[0][list(layout.mirror)]  # point k of the face is point mirror[k] of its mirror image
    back[:, 0] = width - 1 - back[:, 0]
    points = (direct[0] + back) / 2
    a, b = layout.outer_eye
    eyes = float(np.linalg.norm(points[a] - points[b]))
    spread = float(np.linalg.norm(direct[0] - back, axis=1).mean())
    return {"points": points, "score": float((s_direct.mean() + s_flipped.mean()) / 2),
            "disagreement": spread / eyes if eyes > 0 else float("inf")}


def _place_image(sample: FaceSample, image: np.ndarray, folder: Path, stem: str) -> Path:
    """The face's image as ``folder/stem`` + its suffix: a relative link to the source file (a
    copy where the file system refuses links), or a PNG of an in-memory image."""
    if sample.image_path is None:
        dest = folder / f"{stem}.png"
        if not cv2.imwrite(str(dest), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise UserError(f"cannot write {dest}")
        return dest
    source = Path(sample.image_path).resolve()
    dest = folder / f"{stem}{source.suffix.lower()}"
    try:
        os.symlink(os.path.relpath(source, folder.resolve()), dest)
    except OSError:
        shutil.copyfile(source, dest)
    return dest


def _check_out(out: Path, spec: str) -> None:
    """UserError unless ``out`` may be (re)built: not a file, and neither the folder of a dataset
    in ``spec`` nor inside or around one (``--overwrite`` replaces OUT whole)."""
    check_outputs([Output(out, "-o", folder=True)])
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out} is a file, not a folder: choose another output name")
    target = out.resolve()
    for part in spec.split(" + "):
        path = parse_spec(part).path
        if not path:
            continue
        root = Path(path).expanduser().resolve()
        root = root if root.is_dir() else root.parent
        if target == root or root in target.parents or target in root.parents:
            raise UserError(f"-o {out} overlaps the data it labels ({path}): choose a folder outside it")


def chosen(data: LandmarkSet, limit: int | None, seed: int) -> list[int]:
    """The faces to label: all, or ``limit`` of them in an order fixed by ``seed``, sorted."""
    order = np.arange(len(data))
    if limit is not None and limit < len(data):
        order = np.sort(np.random.default_rng(seed).permutation(len(data))[:limit])
    return order.tolist()


def build(args: argparse.Namespace) -> dict:
    teacher, out = Path(args.teacher), Path(args.out)
    if not teacher.is_file():
        raise UserError(f"--teacher weights not found: {teacher}")
    _check_out(out, args.data)
    if out.exists() and not args.overwrite:
        raise UserError(f"{out} exists; pass --overwrite to rebuild it (the old set stays until the new one is done)")
    data = open_dataset(args.data)
    if args.threads:
        torch.set_num_threads(args.threads)
    landmarker = Landmarker(teacher)
    if landmarker.layout is None:
        raise UserError(f"{teacher} names no keypoint layout: its points cannot be written as labels")
    min_score = args.min_score if args.min_score is not None else landmarker.track_min_confidence
    if min_score is None:
        raise UserError(f"{teacher} stores no re-detect threshold: give --min-score")
    source_layout = get_layout(data.layout)
    with atomic_folder(out) as scratch:
        faces, kept = [], 0
        for n, i in enumerate(chosen(data, args.limit, args.seed)):
            sample = data.samples[i]
            record = {"ident": sample.ident or str(i)}
            try:
                image = sample_image(sample)
                label = label_face(landmarker, image, sample, source_layout)
            except (UserError, ValueError) as exc:  # an unreadable image, a face with no box: this face only
                faces.append({**record, "verdict": "skipped", "why": str(exc)})
                continue
            verdict = ("kept" if label["score"] >= min_score and label["disagreement"] <= args.max_disagreement
                       else "unsure" if label["score"] < min_score else "views disagree")
            record.update(score=round(label["score"], 4), disagreement=round(label["disagreement"], 4), verdict=verdict)
            if verdict == "kept":
                stem = f"{i:05d}_{Path(sample.image_path).stem if sample.image_path else 'face'}"
                image_file = _place_image(sample, image, scratch, stem)
                write_text_atomic(scratch / f"{stem}.json", json_text({
                    "points": np.round(label["points"], 3).tolist(), "layout": landmarker.layout.name}))
                record["file"] = image_file.name
                kept += 1
            faces.append(record)
            if (n + 1) % 1000 == 0:
                print(f"[pseudo-labels] {n + 1:,} faces, {kept:,} kept", flush=True)
        if not kept:
            raise UserError(f"the teacher kept none of {len(faces)} faces: lower --min-score or raise --max-disagreement")
        verdicts = [f["verdict"] for f in faces]
        manifest = {
            "made_by": "python -m train.tools.make_pseudo_labels " + " ".join(getattr(args, "argv", [])),
            "teacher": {"path": str(teacher), "sha256": sha256(teacher), "layout": landmarker.layout.name},
            "data": args.data, "limit": args.limit, "seed": args.seed,
            "min_score": min_score, "max_disagreement": args.max_disagreement,
            "counts": {v: verdicts.count(v) for v in VERDICTS},
            "terms": "derived from the dataset above: its licence applies (300-W, MTFL: research, non-commercial)",
            "faces": faces,
        }
        write_text_atomic(scratch / MANIFEST, json_text(manifest))
    return manifest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m train.tools.make_pseudo_labels", description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", required=True, help="the labelling network's weights (.safetensors)")
    p.add_argument("--data", required=True, help="dataset spec of the faces to label (e.g. 'mtfl:DIR:train'); "
                   "their own points frame the first crop")
    p.add_argument("-o", "--out", required=True, help="output folder (read back as folder:OUT)")
    p.add_argument("--limit", type=number(int, 1), help="label this many faces, drawn by --seed (default: all)")
    p.add_argument("--seed", type=number(int, 0), default=0, help="which faces --limit draws")
    p.add_argument("--min-score", type=number(float, 0), help="least mean point score kept (default: the teacher's "
                   "stored re-detect threshold)")
    p.add_argument("--max-disagreement", type=number(float, 0, lo_open=True), default=0.05,
                   help="most mean distance between the direct and mirrored views, over the outer-eye distance")
    p.add_argument("--threads", type=number(int, 1), help="torch threads (default: one per core)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT once the new set is built")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    counts = build(args)["counts"]
    total = sum(counts.values())
    print(f"{args.out}: {counts['kept']:,} of {total:,} faces kept ({counts['unsure']:,} unsure, "
          f"{counts['views disagree']:,} whose two views disagree, {counts['skipped']:,} unreadable or unframed); "
          f"read back as folder:{args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
