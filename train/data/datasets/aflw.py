"""AFLW (Koestinger et al. 2011): the official ``aflw.sqlite`` (21 points) and the AFLW-Full
19-point protocol file ``AFLWinfo_release.mat`` (Zhu et al., CFSS/CCL).

``aflw.sqlite`` facts, confirmed from public code that queries it (vipy ``vipy/dataset/aflw.py``;
the AFLW toolkit's C++ ``FeaturesCoords``/``FaceData`` classes; several dataset scripts):

- Tables and columns used: ``Faces(face_id, file_id)``, ``FaceImages(file_id, filepath, width,
  height)``, ``FeatureCoords(face_id, feature_id, x, y, annot_type_id)``, ``FeatureCoordTypes
  (feature_id, descr)``, ``FaceRect(face_id, x, y, w, h)``, ``FacePose(face_id, roll, pitch, yaw)``.
- ``feature_id`` 1..21 in the order LeftBrowLeftCorner ... ChinCenter (vipy's SCHEMA; 8 and 11 are
  the eye centres), i.e. layout aflw21. Only visible points are stored ("annotated upon visibility",
  AFLW description page); the toolkit deletes (-1, -1) entries. A missing point gets visible False
  and, as a placeholder, the mean of the face's annotated points (finite, so that masked losses such
  as ``(err * mask).sum()`` stay finite; NaN would poison them).
- Images live under ``data/flickr`` beside ``data/aflw.sqlite``; ``filepath`` is relative to it
  (e.g. ``0/image00002.jpg``). ``FaceRect`` is x, y, w, h -> box (x, y, x + w, y + h).
- Pose angles are radians (scripts compare ``yaw * 180/3.14159`` and ``math.radians(30)``); we store
  degrees. Missing pose -> NaN.
- Not confirmed: column types, and the pixel offset of coordinates (used as written, 0-based).

``AFLWinfo_release.mat`` facts (SAN/SBR ``aflw_from_mat.py``, FaceAlignment_Base ``dataset.py``,
an AFLW loader with test_frontal; paperswithcode "AFLW-19"):

- ``data`` 24386 x 38 = x1..x19 then y1..y19; ``nameList`` 24386 x 1 cell of paths relative to the
  flickr folder; ``mask_new`` 24386 x 19 (1 = visible); ``bbox`` 24386 x 4 = left, right, top,
  bottom; ``ra`` a 1-based permutation: ``ra(1:20000)`` train, the rest (4,386) test. Frontal =
  test faces with every point visible (1,165 per paperswithcode; count not checked here).
- Offset: treated as 1-based (MATLAB), so 1 is subtracted from points and box. Not confirmed: none
  of the public loaders read subtracts 1 from the coordinates (only from ``ra``).
- ``mask_new`` 1 = visible is inferred from loaders that take "frontal" as ``all(mask == 1)``.
  Some loaders (SAN) define frontal as all points inside the box instead; we use the mask.
- Poses are not in the .mat; joining them from the sqlite is not implemented.
"""
from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import numpy as np

from realtime.core.errors import UserError
from realtime.geometry.layouts import AFLW19_FROM_21
from train.data.datasets.landmark_set import FaceSample, LandmarkSet

log = logging.getLogger(__name__)

SQLITE_OFFSET = 0.0
MAT_OFFSET = 1.0
SQLITE_TABLES = ("Faces", "FaceImages", "FeatureCoords", "FeatureCoordTypes", "FaceRect", "FacePose")
MAT_FIELDS = ("data", "nameList", "mask_new", "bbox", "ra")
MAT_SPLITS = ("train", "test", "frontal")
POSE_KINDS = {"yaw": "angle", "pitch": "angle", "roll": "angle"}


def _require_images(samples: list[FaceSample], listed_in: Path, images: Path) -> None:
    if not images.is_dir():
        raise UserError(f"AFLW image folder not found: {images} (pass ?images=DIR)")
    missing = [s.image_path for s in samples if not os.path.isfile(s.image_path)]
    if missing:
        raise UserError(f"{len(missing)} of {len(samples)} images listed in {listed_in} are missing "
                        f"under {images}, e.g. {missing[0]}")


def _open_sqlite(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise UserError(f"AFLW sqlite file not found: {path}")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} is not a readable sqlite database: {exc}") from None
    missing = [t for t in SQLITE_TABLES if t not in tables]
    if missing:
        con.close()
        raise UserError(f"{path} lacks table(s) {', '.join(missing)} of the AFLW schema")
    return con


def _query(con: sqlite3.Connection, path: Path, sql: str) -> list[tuple]:
    try:
        return con.execute(sql).fetchall()
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path}: unexpected AFLW schema ({exc})") from None


def load_aflw_sqlite(path: str | Path, images: str | Path | None = None, points: int = 21) -> LandmarkSet:
    """Every face with at least one landmark in ``aflw.sqlite``; ``points=19`` drops the ears."""
    path = Path(path)
    if points not in (19, 21):
        raise UserError(f"AFLW points must be 19 or 21, not {points}")
    images = Path(images) if images is not None else path.parent / "flickr"
    con = _open_sqlite(path)
    try:
        ids = {row[0] for row in _query(con, path, "SELECT feature_id FROM FeatureCoordTypes")}
        if not set(range(1, 22)) <= ids:
            raise UserError(f"{path}: FeatureCoordTypes lacks some of the 21 AFLW feature ids 1..21")
        faces = _query(con, path, """
            SELECT f.face_id, i.filepath, r.x, r.y, r.w, r.h, p.yaw, p.pitch, p.roll
            FROM Faces f JOIN FaceImages i ON i.file_id = f.file_id
            LEFT JOIN FaceRect r ON r.face_id = f.face_id
            LEFT JOIN FacePose p ON p.face_id = f.face_id
            ORDER BY f.face_id""")
        coords = _query(con, path, "SELECT face_id, feature_id, x, y FROM FeatureCoords "
                                   "WHERE feature_id BETWEEN 1 AND 21")
    finally:
        con.close()
    by_face: dict[int, np.ndarray] = {}
    for face_id, feature_id, x, y in coords:
        pts = by_face.setdefault(face_id, np.full((21, 2), np.nan, dtype=np.float32))
        try:
            pts[feature_id - 1] = (float(x) - SQLITE_OFFSET, float(y) - SQLITE_OFFSET)
        except (TypeError, ValueError):
            raise UserError(f"{path}: non-numeric FeatureCoords for face_id {face_id}") from None
    samples, seen = [], set()
    for face_id, filepath, x, y, w, h, yaw, pitch, roll in faces:
        if face_id not in by_face or face_id in seen:  # no landmarks, or a second rect/pose row
            continue
        seen.add(face_id)
        pts = by_face[face_id]
        visible = np.isfinite(pts).all(axis=1)
        pts = np.where(visible[:, None], pts, pts[visible].mean(axis=0))
        if points == 19:
            visible = visible[list(AFLW19_FROM_21)]
            pts = pts[list(AFLW19_FROM_21)]
        if not visible.any():  # only ears annotated, and ears dropped
            continue
        box = None if None in (x, y, w, h) else (float(x), float(y), float(x + w), float(y + h))
        angles = {k: float("nan") if v is None else float(np.degrees(v))
                  for k, v in (("yaw", yaw), ("pitch", pitch), ("roll", roll))}
        samples.append(FaceSample(
            points=pts, visible=visible, layout=f"aflw{points}",
            subset=str(Path(filepath).parent.as_posix()), image_path=str(images / filepath),
            attributes=angles, box=box, ident=f"face{face_id}",
        ))
    if not samples:
        raise UserError(f"{path} has no faces with landmarks")
    _require_images(samples, path, images)
    log.info("AFLW sqlite: %d faces from %s", len(samples), path)
    return LandmarkSet(name=f"aflw{points}", layout=f"aflw{points}", samples=samples,
                       attribute_kinds=dict(POSE_KINDS))


def _mat_str(value: object) -> str:
    """Unwrap scipy's nested object arrays around one MATLAB string."""
    while isinstance(value, np.ndarray):
        if value.size != 1:
            return "" if value.size == 0 else str(value.ravel()[0])
        value = value.ravel()[0]
    return str(value)


def _read_mat(path: Path) -> dict[str, np.ndarray]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError
    if not path.is_file():
        raise UserError(f"AFLW .mat file not found: {path}")
    try:
        mat = loadmat(str(path))
    except (MatReadError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise UserError(f"{path} is not a readable MATLAB (v5/v7) file: {exc}") from None
    missing = [k for k in MAT_FIELDS if k not in mat]
    if missing:
        raise UserError(f"{path} lacks field(s) {', '.join(missing)} of AFLWinfo_release.mat")
    n = len(mat["nameList"])
    want = {"data": (n, 38), "mask_new": (n, 19), "bbox": (n, 4)}
    for key, shape in want.items():
        if np.shape(mat[key]) != shape:
            raise UserError(f"{path}: field {key} has shape {np.shape(mat[key])}, expected {shape}")
        try:
            mat[key] = np.asarray(mat[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise UserError(f"{path}: field {key} is not numeric") from None
        if not np.isfinite(mat[key]).all():
            raise UserError(f"{path}: field {key} has non-finite values")
    ra = np.asarray(mat["ra"]).ravel()
    if ra.size != n or not np.array_equal(np.sort(ra), np.arange(1, n + 1)):
        raise UserError(f"{path}: field ra is not a permutation of 1..{n}")
    return mat


def load_aflw19_mat(path: str | Path, split: str = "train", images: str | Path | None = None,
                    n_train: int = 20000) -> LandmarkSet:
    """AFLW-Full: split ``train`` (ra[:n_train]), ``test`` (the rest) or ``frontal`` (all-visible test)."""
    path = Path(path)
    if split not in MAT_SPLITS:
        raise UserError(f"unknown AFLW-19 split {split!r}; choose one of {', '.join(MAT_SPLITS)}")
    images = Path(images) if images is not None else path.parent / "flickr"
    mat = _read_mat(path)
    n = len(mat["nameList"])
    if n != 24386:
        log.warning("%s has %d faces, not the official 24,386 of AFLW-Full", path, n)
    order = np.asarray(mat["ra"]).ravel().astype(np.int64) - 1
    mask = np.asarray(mat["mask_new"]) != 0
    index = order[:n_train] if split == "train" else order[n_train:]
    if split == "frontal":
        index = index[mask[index].all(axis=1)]
    data, bbox = mat["data"], mat["bbox"]
    samples = []
    for i in index:
        pts = np.stack([data[i, :19], data[i, 19:]], axis=1).astype(np.float32) - np.float32(MAT_OFFSET)
        left, right, top, bottom = bbox[i] - MAT_OFFSET
        samples.append(FaceSample(
            points=pts, visible=mask[i].copy(), layout="aflw19",
            subset="train" if split == "train" else "test",
            image_path=str(images / _mat_str(mat["nameList"][i])),
            box=(float(left), float(top), float(right), float(bottom)), ident=f"row{i + 1}",
        ))
    if samples:
        _require_images(samples, path, images)
    log.info("AFLW-19 %s: %d faces from %s", split, len(samples), path)
    return LandmarkSet(name=f"aflw19:{split}", layout="aflw19", samples=samples)
