"""300-W (iBUG, Sagonas et al. 2013): images with a ``.pts`` file beside each, 68 points.

Format facts, and where they were confirmed:

- ``.pts`` layout: ``version: 1`` / ``n_points: 68`` / ``{`` / one ``x y`` line per point / ``}``
  (the iBUG ``write_shape`` MATLAB routine quoted on programmerteach.com, "will Mat Type coordinate
  data generation pts file"; menpo's ``pts_importer``, github.com/menpo/menpo menpo/io/input/landmark.py).
- Offset: **1-based**. menpo's docstring says "we make the assumption (as is common) that PTS landmarks
  are 1-based ... we *subtract 1* off each landmark value"; we do the same. The 300-W release itself
  does not state the convention (not confirmed beyond menpo's "as is common").
- Folders and counts: train = ``afw`` (337) + ``helen/trainset`` (2000) + ``lfpw/trainset`` (811) =
  3148; common = ``helen/testset`` (330) + ``lfpw/testset`` (224) = 554; challenging = ``ibug`` (135);
  full = 689 (SinaHonari/RCN preprocessing/create_raw_300W.py: "3148 train images (afw, Helen, lfpw),
  and 689 test images (135 ibug, 330 Helen, 224 lfpw)"; per-folder train counts from public list
  scripts, e.g. "afw/trainset ... 337", "helen/trainset ... 2000", "lfpw/trainset ... 811").
- Some 300-W packagings put AFW under ``afw/trainset``; this reader expects the iBUG zips' ``afw/``
  (not confirmed which packaging is more common).
"""
from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

from realtime.core.errors import UserError
from train.data.datasets.landmark_set import FaceSample, LandmarkSet

log = logging.getLogger(__name__)

PTS_OFFSET = 1.0  # .pts files are 1-based: subtract this to get 0-based pixel centres
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("afw", "helen/trainset", "lfpw/trainset"),
    "common": ("helen/testset", "lfpw/testset"),
    "challenging": ("ibug",),
    "full": ("helen/testset", "lfpw/testset", "ibug"),
}
OFFICIAL_COUNTS: dict[str, int] = {
    "afw": 337, "helen/trainset": 2000, "lfpw/trainset": 811,
    "helen/testset": 330, "lfpw/testset": 224, "ibug": 135,
}


def read_pts(path: str | Path) -> np.ndarray:
    """Read an iBUG ``.pts`` file -> (K, 2) float32 (x, y), converted to 0-based pixel centres.

    Raises UserError naming the file and line for a bad header, a non-numeric value, a point
    count that disagrees with ``n_points``, or a missing ``{``/``}``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines()) if ln.strip()]

    def bad(lineno: int, what: str) -> UserError:
        return UserError(f"{path}:{lineno}: {what} (expected the iBUG .pts format: "
                         "'version: 1', 'n_points: N', '{', N lines 'x y', '}')")

    header = {"version": None, "n_points": None}
    pos = 0
    for key in header:
        if pos >= len(lines):
            raise bad(lines[-1][0] if lines else 1, f"missing '{key}:' line")
        lineno, ln = lines[pos]
        name, sep, value = ln.partition(":")
        if not sep or name.strip() != key:
            raise bad(lineno, f"expected '{key}: ...', found {ln[:40]!r}")
        try:
            header[key] = int(value.strip())
        except ValueError:
            raise bad(lineno, f"'{key}' is not an integer: {value.strip()[:20]!r}") from None
        pos += 1
    if header["version"] != 1:
        raise bad(lines[0][0], f"unsupported version {header['version']}")
    if pos >= len(lines) or lines[pos][1] != "{":
        raise bad(lines[pos][0] if pos < len(lines) else lines[-1][0], "missing '{'")
    body = lines[pos + 1:]
    if not body or body[-1][1] != "}":
        raise bad(body[-1][0] if body else lines[pos][0], "missing closing '}'")
    points = []
    for lineno, ln in body[:-1]:
        fields = ln.split()
        if len(fields) != 2:
            raise bad(lineno, f"expected 2 numbers 'x y', found {len(fields)} fields")
        try:
            points.append((float(fields[0]), float(fields[1])))
        except ValueError:
            raise bad(lineno, f"non-numeric coordinate in {ln[:40]!r}") from None
    n_points = header["n_points"]
    if len(points) != n_points:
        raise bad(body[-1][0], f"n_points says {n_points} but the file has {len(points)} points")
    out = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if not np.isfinite(out).all():
        raise UserError(f"{path}: non-finite coordinate (nan/inf)")
    return out - np.float32(PTS_OFFSET)


def _image_beside(pts_path: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (pts_path.with_suffix(suffix), pts_path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    raise UserError(f"no image beside {pts_path} (looked for {', '.join(IMAGE_SUFFIXES)})")


def _read_subset(root: Path, subset: str) -> list[FaceSample]:
    folder = root / subset
    pts_files = sorted(folder.glob("*.pts"))
    if not pts_files:
        raise UserError(f"no .pts files in {folder}")
    samples = []
    for pts_path in pts_files:
        points = read_pts(pts_path)
        if len(points) != 68:
            raise UserError(f"{pts_path}: has {len(points)} points; 300W (layout ibug68) needs 68")
        samples.append(FaceSample(
            points=points, visible=np.ones(68, dtype=bool), layout="ibug68", subset=subset,
            image_path=str(_image_beside(pts_path)), ident=f"{subset}/{pts_path.stem}",
        ))
    return samples


def present_subsets(root: Path, split: str) -> list[str]:
    """The folders of ``split`` that exist under ``root``: a partial 300-W tree (say AFW and part
    of HELEN's training set) is read as far as it goes."""
    return [sub for sub in SPLITS[split] if (root / sub).is_dir()]


def describe_counts(split: str, counts: dict[str, int], only: list[str] | None = None) -> str:
    """One line: which subsets of ``split`` were found, with their face counts against the
    official ones, and which are missing (of ``only`` when the reader was asked for some)."""
    found = ", ".join(f"{sub} {n}" + ("" if n == OFFICIAL_COUNTS[sub] else f" of {OFFICIAL_COUNTS[sub]}")
                      for sub, n in counts.items())
    missing = [sub for sub in (only or SPLITS[split]) if sub not in counts]
    return (f"300W {split}{' (' + ', '.join(only) + ' only)' if only else ''}: {sum(counts.values())} faces from {found}"
            + (f" (missing: {', '.join(missing)})" if missing else ""))


def load_300w(root: str | Path, split: str = "train", only: list[str] | None = None) -> LandmarkSet:
    """Read one split of 300-W from its root folder (see the module docstring for the splits).

    A split is read from whichever of its folders exist (one line on stderr names them and their
    counts); a split none of whose folders exist is an error that lists what was looked for.
    ``only`` keeps those of the split's folders (e.g. ``["afw"]``); naming a folder that is not in
    the split, or not there, is an error.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"300W folder not found: {root}")
    if split not in SPLITS:
        raise UserError(f"unknown 300W split {split!r}; choose one of {', '.join(SPLITS)}")
    subsets = present_subsets(root, split)
    if only is not None:
        unknown = [s for s in only if s not in SPLITS[split]]
        if unknown:
            raise UserError(f"300W {split} has no folder {', '.join(unknown)}; its folders: {', '.join(SPLITS[split])}")
        absent = [s for s in only if s not in subsets]
        if absent:
            raise UserError(f"300W folder {root} lacks {', '.join(s + '/' for s in absent)}")
        subsets = [s for s in subsets if s in only]
    if not subsets:
        raise UserError(f"300W folder {root} has none of the {split} split's folders "
                        f"({', '.join(s + '/' for s in SPLITS[split])})")
    samples: list[FaceSample] = []
    counts: dict[str, int] = {}
    for subset in subsets:
        part = _read_subset(root, subset)
        counts[subset] = len(part)
        samples.extend(part)
    if all((root / sub).is_dir() for sub in OFFICIAL_COUNTS):
        off = [f"{sub} {n} (official {OFFICIAL_COUNTS[sub]})"
               for sub, n in counts.items() if n != OFFICIAL_COUNTS[sub]]
        if off:
            log.warning("300W at %s looks complete but its counts differ from the official ones: %s",
                        root, "; ".join(off))
    print(describe_counts(split, counts, only), file=sys.stderr, flush=True)
    log.info("300W %s: %d faces from %s", split, len(samples), root)
    name = f"300w:{split}" + (f"?subset={','.join(only)}" if only else "")
    return LandmarkSet(name=name, layout="ibug68", samples=samples)


# iBUG-68 (0-based) -> MTFL's 5 points, in MTFL's order (image left first, as MTFL's training.txt):
# left eye = centre of the image-left eye's six contour points (iBUG 36-41, the subject's right eye),
# right eye = centre of 42-47, nose tip 30, mouth corners 48 (image left) and 54.
MTFL5_FROM_IBUG68 = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47), (30,), (48,), (54,))


def to_mtfl5(data: LandmarkSet) -> LandmarkSet:
    """The same faces with the 5 MTFL points derived from their 68 (``MTFL5_FROM_IBUG68``): how the
    2016 paper's AFW test set is scored here (300-W's re-annotation of AFW, 337 faces; the paper used
    TCDCN's 377 with their own 5 points). A derived point is visible when all its sources are."""
    if data.layout != "ibug68":
        raise UserError(f"5 MTFL points can be derived from ibug68 faces only, not {data.layout}")
    samples = []
    for sample in data.samples:
        pts = np.stack([sample.points[list(group)].mean(axis=0) for group in MTFL5_FROM_IBUG68]).astype(np.float32)
        vis = np.array([sample.visible[list(group)].all() for group in MTFL5_FROM_IBUG68])
        samples.append(dataclasses.replace(sample, points=pts, visible=vis, layout="mtfl5"))
    return LandmarkSet(name=data.name + ("&" if "?" in data.name else "?") + "layout=mtfl5", layout="mtfl5", samples=samples,
                       attribute_kinds=dict(data.attribute_kinds))
