"""The teacher's labels on disk, as ``python -m train.tools.make_teacher_labels`` and
``python -m train.tools.make_faceset`` write them.

The inputs (``find_images``) are images and folders (searched recursively for
.jpg/.jpeg/.png/.bmp); a grid of many faces is just an image. For each accepted face, ``NAME``
being the image's stem (with its sub-folder for folder inputs) plus ``_face`` and its 3-digit
index in reading order, ``label_one`` writes:

- ``NAME.png``: the face with ``--crop-margin`` box sizes of context on each side (clipped to the
  image), lossless, so that ``folder:DIR?layout=ibug68`` reads images and labels together;
- ``NAME.teacher.json``: ``box`` (crop pixels, as the folder reader's JSON ``box``),
  ``box_in_image``, ``crop_origin`` (add it to crop pixels to get image pixels), HOG ``score``
  and ``sub_detector``, ``flip_nme``, ``upsample``, ``image``, ``image_size``, ``face_index``,
  ``layout``, the model file and its SHA-256;
- ``NAME.pts``: the 68 points in crop pixels, iBUG format, 1-based (``read_pts`` subtracts 1);

in that order, each atomically, so a ``.pts`` exists only beside a complete crop and sidecar.
``DIR/teacher_report.json`` lists every face found, accepted or refused, with the reasons.

Existing ``.pts`` files are never replaced (that face is skipped and counted) unless
``--overwrite``; nothing is ever deleted.
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from realtime.core.atomic import atomic_path, json_text, write_text_atomic
from realtime.core.errors import UserError
from train.data.datasets.ibug300w import IMAGE_SUFFIXES
from train.labels.teacher import SUB_DETECTORS, Teacher, TeacherFace, pts_text

REPORT_NAME = "teacher_report.json"


def find_images(inputs: list[str], out: Path) -> list[tuple[Path, Path, bool]]:
    """(image, output stem relative to OUT, named explicitly) for every input, in order."""
    found, stems = [], {}
    out = out.resolve()
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                            and p.is_file() and out not in p.resolve().parents)
            if not images:
                raise UserError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {path}")
            found += [(p, p.relative_to(path).with_suffix(""), False) for p in images]
        elif path.is_file():
            found.append((path, Path(path.stem), True))
        else:
            raise UserError(f"input not found: {path}")
    for image, stem, _ in found:
        if stem in stems:
            raise UserError(f"{image} and {stems[stem]} would write the same labels ({stem}_face*); rename one")
        stems[stem] = image
    return found


def crop_origin(face: TeacherFace, shape_hw: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """Integer pixel range (x0, y0, x1, y1) of the crop: the box grown by ``margin`` sizes, clipped."""
    x0, y0, x1, y1 = face.box
    m = margin * (x1 - x0)
    h, w = shape_hw
    return (max(0, int(np.floor(x0 - m + 0.5))), max(0, int(np.floor(y0 - m + 0.5))),
            min(w, int(np.ceil(x1 + m - 0.5)) + 1), min(h, int(np.ceil(y1 + m - 0.5)) + 1))


def write_face(stem: Path, rgb: np.ndarray, face: TeacherFace, meta: dict, margin: float) -> None:
    """Crop .png, then .teacher.json, then .pts, each atomically (module docstring)."""
    cx0, cy0, cx1, cy1 = crop_origin(face, rgb.shape[:2], margin)
    with atomic_path(stem.with_name(stem.name + ".png")) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb[cy0:cy1, cx0:cx1], cv2.COLOR_RGB2BGR)):
            raise UserError(f"cannot write {stem}.png")
    box = [round(v - o, 3) for v, o in zip(face.box, (cx0, cy0, cx0, cy0))]
    sidecar = {**meta, "box": box, "box_in_image": [round(v, 3) for v in face.box], "crop_origin": [cx0, cy0],
               "score": round(face.score, 4), "sub_detector": SUB_DETECTORS[face.sub_detector],
               "flip_nme": round(face.flip_nme, 4), "upsample": face.upsample, "layout": "ibug68"}
    write_text_atomic(stem.with_name(stem.name + ".teacher.json"), json_text(sidecar))
    write_text_atomic(stem.with_name(stem.name + ".pts"), pts_text(face.points - np.float32([cx0, cy0])))


def label_one(teacher: Teacher, image: Path, rgb: np.ndarray, stem: Path, args: argparse.Namespace,
              model_meta: dict) -> dict:
    faces = teacher(rgb)
    record = {"image": str(image), "image_size": [rgb.shape[1], rgb.shape[0]], "faces": []}
    for index, face in enumerate(faces):
        name = Path(args.out) / stem.parent / f"{stem.name}_face{index:03d}"
        entry = {"index": index, "box": [round(v, 1) for v in face.box], "score": round(face.score, 3),
                 "flip_nme": round(face.flip_nme, 4), "refused": list(face.refused), "written": None}
        if face.ok:
            if name.with_name(name.name + ".pts").exists() and not args.overwrite:
                entry["kept_existing"] = str(name) + ".pts"
            else:
                meta = {**model_meta, "image": str(image), "image_size": record["image_size"], "face_index": index}
                write_face(name, rgb, face, meta, args.crop_margin)
                entry["written"] = str(name) + ".pts"
        record["faces"].append(entry)
    return record


def summary_line(record: dict) -> str:
    faces = record["faces"]
    reasons = Counter(r for f in faces for r in f["refused"])
    refused = sum(1 for f in faces if f["refused"])
    kept = sum(1 for f in faces if "kept_existing" in f)
    why = f" ({', '.join(f'{k} {n}' for k, n in reasons.most_common())})" if reasons else ""
    extra = f", {kept} kept existing" if kept else ""
    return (f"{record['image']}: {len(faces)} found, {len(faces) - refused} labelled{extra}, "
            f"{refused} refused{why}")
