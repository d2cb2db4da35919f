"""MTFL (Zhang et al., ECCV 2014, TCDCN): ``training.txt`` / ``testing.txt`` and image folders, 5 points.

Format facts, and where they were confirmed (the dataset's ``readme.txt``, copy at
github.com/vyom1911/Facial-Landmark-Detection MTFL/readme.txt, and SinaHonari/RCN
preprocessing/create_raw_MTFL.py):

- One face per line: ``#image path #x1...x5,y1..y5 #gender #smile #wearing glasses #head pose``, the
  points being "left eye, right eye, nose, left mouth corner, right mouth corner" (layout mtfl5).
- Paths use backslashes, e.g. ``lfw_5590\\Aaron_Eckhart_0001.jpg``; RCN's reader splits on ``/`` or
  ``\\`` and strips the folder name, so lines may start with a space.
- Codes: gender 1 male / 2 female; smile 1 smiling / 2 not; glasses 1 wearing / 2 not; head pose
  1 left profile, 2 left, 3 frontal, 4 right, 5 right profile. We store code - 1, as RCN does:
  gender 0 = male, smile 0 = smiling, glasses 0 = wearing, pose 0..4 (``class:2`` / ``class:5``).
- ``training.txt`` = 10,000 faces, ``testing.txt`` = the AFLW test set, 2,995 faces (the
  RCN code's files; docs/data.md).

Not confirmed: the pixel offset. Neither the readme nor RCN says; coordinates are used as written
(treated as 0-based pixel centres, ``MTFL_OFFSET = 0``). The folder names in ``testing.txt`` are not
confirmed either; the reader takes whatever relative path each line gives.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from realtime.core.errors import UserError
from train.data.datasets.landmark_set import FaceSample, LandmarkSet

log = logging.getLogger(__name__)

MTFL_OFFSET = 0.0
SPLIT_FILES = {"train": "training.txt", "test": "testing.txt"}
ATTRIBUTES = (("gender", 2), ("smile", 2), ("glasses", 2), ("pose", 5))
NUM_COLUMNS = 1 + 10 + len(ATTRIBUTES)


def _parse_line(path: Path, lineno: int, line: str) -> tuple[str, np.ndarray, dict[str, float]]:
    """One annotation line -> (relative image path with '/', (5, 2) points, attributes)."""
    fields = line.split()
    if len(fields) != NUM_COLUMNS:
        raise UserError(f"{path}:{lineno}: expected {NUM_COLUMNS} columns (image path, x1..x5, y1..y5, "
                        f"gender, smile, glasses, pose), found {len(fields)}")
    try:
        coords = np.array([float(v) for v in fields[1:11]], dtype=np.float32)
        codes = [int(v) for v in fields[11:]]
    except ValueError:
        raise UserError(f"{path}:{lineno}: non-numeric value in {line.strip()[:60]!r}") from None
    if not np.isfinite(coords).all():
        raise UserError(f"{path}:{lineno}: non-finite coordinate")
    attributes: dict[str, float] = {}
    for (name, n), code in zip(ATTRIBUTES, codes):
        if not 1 <= code <= n:
            raise UserError(f"{path}:{lineno}: {name} code {code} is outside 1..{n}")
        attributes[name] = code - 1
    points = np.stack([coords[:5], coords[5:]], axis=1) - np.float32(MTFL_OFFSET)
    rel = fields[0].replace("\\", "/").strip("/")
    return rel, points, attributes


def load_mtfl(root: str | Path, split: str = "train") -> LandmarkSet:
    """Read MTFL's ``training.txt`` (split ``train``) or ``testing.txt`` (split ``test``)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"MTFL folder not found: {root}")
    if split not in SPLIT_FILES:
        raise UserError(f"unknown MTFL split {split!r}; choose one of {', '.join(SPLIT_FILES)}")
    path = root / SPLIT_FILES[split]
    if not path.is_file():
        raise UserError(f"MTFL annotation file not found: {path}")
    samples = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            rel, points, attributes = _parse_line(path, lineno, line)
            samples.append(FaceSample(
                points=points, visible=np.ones(5, dtype=bool), layout="mtfl5",
                subset=rel.split("/")[0] if "/" in rel else "", image_path=str(root / rel),
                attributes=attributes, ident=rel,
            ))
    if not samples:
        raise UserError(f"{path} has no annotation lines")
    missing = [s.image_path for s in samples if not os.path.isfile(s.image_path)]
    if missing:
        raise UserError(f"{len(missing)} of {len(samples)} images listed in {path} are missing, "
                        f"e.g. {missing[0]}")
    log.info("MTFL %s: %d faces from %s", split, len(samples), path)
    return LandmarkSet(name=f"mtfl:{split}", layout="mtfl5", samples=samples,
                       attribute_kinds={name: f"class:{n}" for name, n in ATTRIBUTES})
