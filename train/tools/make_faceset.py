"""The real-face set: teacher-labelled crops of every usable face in a few photos, split by person.

``python -m train.tools.make_faceset build --faces DIR -o data/faces68`` (needs the ``teacher`` extra) runs,
in a scratch folder beside OUT:

1. the teacher (``train.labels.teacher``: dlib HOG + 68-point predictor, its refusal rules) over every
   photo under ``--faces`` and over scikit-image's astronaut (``--astronaut``), writing each
   accepted face as ``NAME.png`` (the face with half a box of context), ``NAME.pts`` and
   ``NAME.teacher.json`` exactly as ``python -m train.tools.make_teacher_labels`` does;
2. head pose per face (yaw/pitch/roll by solvePnP against ``assets/mean_face_68.npy``,
   ``python -m train.tools.make_mean_face pose``) into the sidecars, so pose is an attribute for training;
3. identities: dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, from
   the same ``face-recognition-models`` package) embeds every face, and dlib's Chinese-whispers
   clustering joins faces closer than ``--same-person`` (0.5; dlib calls two faces the same person
   below 0.6 and uses 0.5 for clustering). The shared grid photo shows the same people many
   times, so a random split of faces would put one person on both sides;
4. the split: whole identities, in an order fixed by ``--seed``, go to ``heldout/`` until it holds
   at least ``--heldout`` of the faces; the rest go to ``train/``. The astronaut is held out by
   default, so the bundled clip (made from it) measures a face the model never saw;

and only then moves the finished set to OUT (an existing OUT is replaced only with
``--overwrite``, and only after the new set is complete). ``OUT/faceset.json`` records the
sources (with SHA-256), the settings, every face's identity and split, and the counts; the
teacher's report of every face found, accepted or refused, is ``OUT/teacher_report.json``.

Read it back with ``folder:OUT/train?layout=ibug68`` and ``folder:OUT/heldout?layout=ibug68``.
The photos are not part of this repository: docs/data.md says where they come from (the npm
package ``@vladmandic/human@3.3.6``; ``npm pack`` it and untar).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from argparse import Namespace
from collections import Counter
from pathlib import Path

import numpy as np

from realtime.core.assets import MEAN_FACE
from realtime.core.atomic import atomic_folder, json_text, sha256, write_text_atomic
from realtime.core.cliargs import Parser, number
from realtime.core.errors import UserError, model_file, run_command
from train.data.datasets.landmark_set import read_image_rgb
from train.data.datasets.ibug300w import read_pts
from train.labels.democlip import astronaut as astronaut_image
from train.labels.headpose import label_folder
from train.labels.teacher import Teacher, _import_dlib, default_model_path
from train.labels.teacher_files import REPORT_NAME, find_images, label_one, summary_line

MANIFEST = "faceset.json"
SPLITS = ("train", "heldout")
RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
ASTRONAUT_NAME = "astronaut"


def recognition_model_path(path: str | Path | None) -> Path:
    """The face-recognition ResNet's file: ``path``, else face-recognition-models' copy."""
    return model_file(path, lambda: default_model_path(RECOGNITION_MODEL),
                      "face-recognition-models is not installed (pip install -e '.[teacher]'), "
                      f"or pass --recognition-model PATH/{RECOGNITION_MODEL}", "face recognition model")


class Identities:
    """dlib's face descriptor (128-d, unit scale: same person below about 0.6) and clustering."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        self.dlib = _import_dlib()
        self.net = self.dlib.face_recognition_model_v1(str(recognition_model_path(model_path)))

    def descriptor(self, rgb: np.ndarray, box: tuple[float, float, float, float], points: np.ndarray) -> np.ndarray:
        """(128,) float64 embedding of the face with teacher ``box`` (outer edges) and 68 ``points``."""
        d = self.dlib
        rect = d.rectangle(*(int(round(v)) for v in (box[0] + 0.5, box[1] + 0.5, box[2] - 0.5, box[3] - 0.5)))
        shape = d.full_object_detection(rect, [d.point(int(round(x)), int(round(y))) for x, y in points])
        return np.asarray(self.net.compute_face_descriptor(np.ascontiguousarray(rgb), shape), dtype=np.float64)

    def cluster(self, descriptors: list[np.ndarray], threshold: float) -> list[int]:
        """Identity label per descriptor (Chinese whispers over the graph of pairs closer than threshold)."""
        if len(descriptors) == 1:
            return [0]
        vectors = [self.dlib.vector(list(map(float, v))) for v in descriptors]
        return [int(label) for label in self.dlib.chinese_whispers_clustering(vectors, threshold)]


def split_identities(labels: list[int], fixed: dict[int, str], fraction: float, seed: int) -> dict[int, str]:
    """Split name per identity: ``fixed`` ones as given; the others, shuffled by ``seed``, go to
    held-out until it holds at least ``fraction`` of all faces, then to train."""
    sizes = Counter(labels)
    split = dict(fixed)
    held = sum(sizes[i] for i, s in fixed.items() if s == "heldout")
    free = sorted(i for i in sizes if i not in fixed)
    for i in np.random.default_rng(seed).permutation(free):
        i = int(i)
        split[i] = "heldout" if held < fraction * len(labels) else "train"
        held += sizes[i] if split[i] == "heldout" else 0
    return split


def _label_sources(teacher: Teacher, faces_dir: Path, astronaut: bool, scratch: Path) -> list[dict]:
    """Teacher pass into ``scratch/all``; returns the teacher's per-image records."""
    args = Namespace(out=str(scratch / "all"), crop_margin=0.5, overwrite=False)
    meta = {"teacher": "dlib HOG frontal face detector + 68-point shape predictor",
            "model": teacher.model_path.name, "model_sha256": sha256(teacher.model_path)}
    records = []
    for image, stem, _ in find_images([str(faces_dir)], scratch):
        try:
            rgb = read_image_rgb(image)
        except UserError as exc:
            print(f"warning: skipped {exc}", file=sys.stderr)
            continue
        records.append(label_one(teacher, image, rgb, stem, args, meta))
        print(summary_line(records[-1]), flush=True)
    if astronaut:
        records.append(label_one(teacher, Path("skimage.data.astronaut()"), astronaut_image(),
                                 Path(ASTRONAUT_NAME), args, meta))
        print(summary_line(records[-1]), flush=True)
    return records


def _descriptors(scratch: Path, ident: Identities) -> tuple[list[str], list[np.ndarray]]:
    """Face names (stems under ``scratch/all``) and their identity descriptors."""
    names, descriptors = [], []
    for pts in sorted((scratch / "all").rglob("*.pts")):
        side = json.loads(pts.with_suffix(".teacher.json").read_text(encoding="utf-8"))
        rgb = read_image_rgb(pts.with_suffix(".png"))
        names.append(pts.relative_to(scratch / "all").with_suffix("").as_posix())
        descriptors.append(ident.descriptor(rgb, tuple(side["box"]), read_pts(pts)))
    return names, descriptors


def build(args: argparse.Namespace) -> dict:
    """The whole build (module docstring); returns the manifest."""

    faces_dir, out = Path(args.faces), Path(args.out)
    if not faces_dir.is_dir():
        raise UserError(f"faces folder not found: {faces_dir}")
    if out.exists() and not args.overwrite:
        raise UserError(f"{out} exists; pass --overwrite to rebuild it (the old set stays until the new one is done)")
    if not 0.0 < args.heldout < 1.0:
        raise UserError(f"--heldout must be a fraction in (0, 1), got {args.heldout}")
    mean_face_path = Path(args.mean_face or MEAN_FACE)
    if not mean_face_path.is_file():
        raise UserError(f"3D mean face not found: {mean_face_path}")
    teacher = Teacher(args.model)
    identities = Identities(args.recognition_model)  # fails on a missing model before the slow pass
    with atomic_folder(out) as scratch:
        records = _label_sources(teacher, faces_dir, args.astronaut != "none", scratch)
        names, descriptors = _descriptors(scratch, identities)
        if not names:
            found = sum(len(r["faces"]) for r in records)
            raise UserError(f"no face accepted by the teacher under {faces_dir} ({found} found, all refused)")
        label_folder(scratch / "all", np.load(mean_face_path))
        labels = identities.cluster(descriptors, args.same_person)
        fixed = {}
        if args.astronaut != "none" and ASTRONAUT_NAME + "_face000" in names:
            fixed[labels[names.index(ASTRONAUT_NAME + "_face000")]] = args.astronaut
        split = split_identities(labels, fixed, args.heldout, args.seed)
        faces = []
        for name, label in zip(names, labels):
            dest = scratch / split[label] / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            for suffix in (".png", ".teacher.json", ".pts"):
                (scratch / "all" / (name + suffix)).rename(dest.with_name(dest.name + suffix))
            faces.append({"face": name, "identity": label, "split": split[label]})
        shutil.rmtree(scratch / "all")
        manifest = {
            "command": "python -m train.tools.make_faceset " + " ".join(sys.argv[1:]) if sys.argv[1:] else None,
            "sources": [{"image": r["image"], "sha256": sha256(Path(r["image"])) if Path(r["image"]).is_file() else None,
                         "found": len(r["faces"]), "accepted": sum(1 for f in r["faces"] if f["written"])}
                        for r in records],
            "settings": {"same_person": args.same_person, "heldout": args.heldout, "seed": args.seed,
                         "astronaut": args.astronaut, "mean_face": str(mean_face_path),
                         "mean_face_sha256": sha256(mean_face_path)},
            "counts": {s: {"faces": sum(1 for f in faces if f["split"] == s),
                           "identities": len({f["identity"] for f in faces if f["split"] == s})} for s in SPLITS},
            "faces": faces,
        }
        write_text_atomic(scratch / MANIFEST, json_text(manifest))
        write_text_atomic(scratch / REPORT_NAME, json_text({"images": records}))
    return manifest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="python -m train.tools.make_faceset", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    b = sub.add_parser("build", help="label, embed, cluster and split the faces of a photo folder")
    b.add_argument("--faces", required=True, help="folder of photos (searched recursively)")
    b.add_argument("-o", "--out", required=True, help="output folder (train/, heldout/, faceset.json)")
    b.add_argument("--astronaut", choices=["heldout", "train", "none"], default="heldout",
                   help="where scikit-image's astronaut goes")
    b.add_argument("--heldout", type=number(float, 0, 1, lo_open=True, hi_open=True), default=0.2, help="least fraction of faces held out (whole people)")
    b.add_argument("--seed", type=number(int, 0), default=0, help="order in which identities are held out")
    b.add_argument("--same-person", type=number(float, 0, 2, lo_open=True), default=0.5, help="descriptor distance that joins two faces")
    b.add_argument("--mean-face", help="3D mean face for pose (default: assets/mean_face_68.npy)")
    b.add_argument("--model", help="teacher's shape_predictor_68_face_landmarks.dat (default: installed)")
    b.add_argument("--recognition-model", help=f"{RECOGNITION_MODEL} (default: installed)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing OUT once the new set is built")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    manifest = build(args)
    counts = manifest["counts"]
    print(f"{args.out}: train {counts['train']['faces']} faces / {counts['train']['identities']} people, "
          f"held out {counts['heldout']['faces']} faces / {counts['heldout']['identities']} people")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
