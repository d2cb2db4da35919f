"""Stills are stills: an image or a folder of images is a set of independent pictures.

A folder of N photos must give exactly the records of N single-image runs (no track, smoothing
or pose carried from one photo to the next), every record naming its file (``source``), in JSONL
and CSV alike. The photos are made at test time (frames of the bundled clip, and crops from
``../shared/data/300w`` when present, copied to ``tmp_path``): nothing of them is committed.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("av")

from realtime.video import main

torch.set_num_threads(1)
cv2.setNumThreads(1)

ENGINE = ["--backend", "eager", "--detector-backend", "opencv"]  # fixed, so both runs take one path


def records(folder_or_image: Path, out: Path, *extra: str) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    marks = out / "marks.jsonl"
    assert main([str(folder_or_image), "-o", str(out / "o.mp4"), "--landmarks", str(marks), *ENGINE, *extra]) == 0
    return [json.loads(line) for line in marks.read_text().splitlines()]


def photo_folder(tmp_path: Path, clip_frames, extra_photos: dict[str, np.ndarray] = {}) -> Path:
    """A folder of unrelated pictures: the clip's face far apart in time, a flipped one, a blank
    picture between them (a track carried over would report a face there), of several sizes."""
    folder = tmp_path / "photos"
    folder.mkdir()
    frames = dict(zip((0, 150, 299), (cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in clip_frames(0, 150, 299))))
    cv2.imwrite(str(folder / "a_first.png"), frames[0])
    cv2.imwrite(str(folder / "b_blank.png"), np.full((300, 400, 3), 127, np.uint8))
    cv2.imwrite(str(folder / "c_late.jpg"), frames[299])
    cv2.imwrite(str(folder / "d_mirrored.png"), frames[150][:, ::-1])
    cv2.imwrite(str(folder / "e_crop.png"), frames[150][60:420, 120:520])
    for name, image in extra_photos.items():
        cv2.imwrite(str(folder / name), image)
    return folder


def faces_of(record: dict) -> list[dict]:
    return record["faces"]


def check_folder_equals_single_runs(tmp_path: Path, folder: Path) -> list[dict]:
    together = records(folder, tmp_path / "folder")
    names = sorted(p.name for p in folder.iterdir())
    assert [r["source"] for r in together] == names
    assert [r["frame_id"] for r in together] == list(range(len(names)))
    for record, name in zip(together, names):
        (alone,) = records(folder / name, tmp_path / "single" / name)
        assert alone["source"] == str(folder / name)  # an image is named as given
        assert (alone["width"], alone["height"]) == (record["width"], record["height"])
        assert faces_of(alone) == faces_of(record), name  # exactly: points, boxes, scores, pose, ids
    return together


def test_a_folder_of_photos_gives_exactly_the_records_of_single_image_runs(tmp_path, clip_frames):
    together = check_folder_equals_single_runs(tmp_path, photo_folder(tmp_path, clip_frames))
    found = {r["source"]: len(r["faces"]) for r in together}
    assert found["b_blank.png"] == 0, "a face from the previous photo was carried over"
    assert found["a_first.png"] >= 1 and found["c_late.jpg"] >= 1 and found["d_mirrored.png"] >= 1
    for record in together:  # every face of every photo is a fresh detection, never a track
        assert all(face["detection_score"] is not None for face in record["faces"])


def test_shared_300w_crops_in_a_folder_equal_single_runs(tmp_path, shared_300w):
    crops = sorted((shared_300w / "afw").glob("*.jpg"))[:3] + sorted((shared_300w / "helen").rglob("*.jpg"))[:3]
    if len(crops) < 4:
        pytest.skip(f"needs the shared 300-W crops in {shared_300w}/afw and helen; too few there")
    folder = tmp_path / "photos"
    folder.mkdir()
    for crop in crops:  # copied into tmp_path only: shared data never enters the repo
        shutil.copy(crop, folder / crop.name)
    together = check_folder_equals_single_runs(tmp_path, folder)
    assert sum(len(r["faces"]) > 0 for r in together) >= len(crops) // 2


def test_csv_rows_name_their_photo_and_video_records_their_file(tmp_path, clip_frames):
    folder = photo_folder(tmp_path, clip_frames)
    marks = tmp_path / "marks.csv"
    assert main([str(folder), "-o", str(tmp_path / "o.mp4"), "--landmarks", str(marks), "--csv", *ENGINE]) == 0
    rows = list(csv.DictReader(marks.open()))
    names = sorted(p.name for p in folder.iterdir())
    assert sorted({row["source"] for row in rows}) == names
    blank = [row for row in rows if row["source"] == "b_blank.png"]
    assert len(blank) == 1 and blank[0]["track_id"] is None  # the short row of a photo without a face
    assert all(row["x0"] not in ("", None) for row in rows if row["source"] == "a_first.png")

    from test_pipeline_capture import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    assert {r["source"] for r in records(clip, tmp_path / "video")} == {str(clip)}
