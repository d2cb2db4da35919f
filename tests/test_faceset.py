"""The real-face set builder (``python -m train.tools.make_faceset build``).

The build runs against a fake teacher and fake identity model (no dlib needed); the real build
over the shared photos runs only where the ``teacher`` extra is installed.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import train.tools.make_faceset as faceset
from realtime.core.assets import ASTRONAUT_PTS
from train.data.datasets.folder import load_folder
from train.data.datasets.ibug300w import read_pts
from train.labels.teacher import TeacherFace
from cli_errors import one_error_line

cv2.setNumThreads(1)


def face_like(x0: float, y0: float, size: float = 60.0) -> TeacherFace:
    """A face-shaped 68-point set (the astronaut's, scaled) in the box at (x0, y0)."""
    pts = read_pts(ASTRONAUT_PTS)
    lo, hi = pts.min(0), pts.max(0)
    points = np.float32([x0, y0]) + (pts - lo) / (hi - lo).max() * size
    return TeacherFace(points=points, box=(x0, y0, x0 + size, y0 + size), score=1.0, sub_detector=0,
                       upsample=1, flip_nme=0.01)


class FakeTeacher:
    """Two faces in every photo, none in the astronaut; ``model_path`` a real file (it is hashed)."""

    model_file: Path

    def __init__(self, model_path=None) -> None:
        self.model_path = self.model_file

    def __call__(self, rgb):
        if rgb.shape[:2] == (512, 512):
            return []
        return [face_like(20, 30), face_like(120, 32)]


class FakeIdentities:
    """Descriptor = the crop's mean colour; one identity per distinct colour."""

    def __init__(self, model_path=None) -> None:
        pass

    def descriptor(self, rgb, box, points):
        return rgb.reshape(-1, 3).mean(0)

    def cluster(self, descriptors, threshold):
        keys = [tuple(np.round(d).astype(int)) for d in descriptors]
        return [sorted(set(keys)).index(k) for k in keys]


@pytest.fixture
def photos(tmp_path, monkeypatch):
    """Six photos of three 'people' (colours), two faces each."""
    FakeTeacher.model_file = tmp_path / "model.dat"
    FakeTeacher.model_file.write_bytes(b"fake model")
    monkeypatch.setattr(faceset, "Teacher", FakeTeacher)
    monkeypatch.setattr(faceset, "Identities", FakeIdentities)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, grey in enumerate([60, 60, 120, 120, 180, 180]):
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((200, 240, 3), grey, np.uint8))
    return folder


def test_split_keeps_people_whole_and_is_seeded():
    labels = [0] * 5 + [1] * 3 + [2] * 3 + [3] * 2 + [4] * 2 + [5]
    split = faceset.split_identities(labels, {5: "heldout"}, 0.3, seed=3)
    held = sum(1 for label in labels if split[label] == "heldout")
    assert split[5] == "heldout" and held >= 0.3 * len(labels)
    assert set(split) == set(labels)
    # the held-out set stops growing as soon as it is big enough: dropping its last identity would
    # take it below the fraction (the astronaut, fixed, aside)
    free_held = [i for i, s in split.items() if s == "heldout" and i != 5]
    assert min(held - labels.count(i) for i in free_held) < 0.3 * len(labels)
    assert faceset.split_identities(labels, {5: "heldout"}, 0.3, seed=3) == split
    assert any(faceset.split_identities(labels, {5: "heldout"}, 0.3, seed=s) != split for s in range(10))


def test_build_writes_split_sets_the_folder_reader_reads(photos, tmp_path):
    out = tmp_path / "set"
    assert faceset.main(["build", "--faces", str(photos), "-o", str(out), "--heldout", "0.3"]) == 0
    manifest = json.loads((out / "faceset.json").read_text())
    assert manifest["counts"]["train"]["faces"] + manifest["counts"]["heldout"]["faces"] == 12
    assert manifest["counts"]["heldout"]["faces"] >= 4
    people = {}
    for face in manifest["faces"]:
        people.setdefault(face["identity"], set()).add(face["split"])
        assert (out / face["split"] / f"{face['face']}.pts").is_file()
    assert all(len(splits) == 1 for splits in people.values()) and len(people) == 3
    assert len(manifest["sources"]) == 7 and manifest["sources"][-1]["accepted"] == 0  # the astronaut: none
    train = load_folder(out / "train")
    assert train.layout == "ibug68" and train.attribute_kinds == {"pitch": "angle", "roll": "angle", "yaw": "angle"}
    assert all(abs(s.attributes["roll"]) < 45 for s in train.samples)
    assert not list(tmp_path.glob(".set.*")), "scratch folder left behind"


def test_missing_faces_folder_is_one_line(tmp_path, capsys):
    assert faceset.main(["build", "--faces", str(tmp_path / "nope"), "-o", str(tmp_path / "set")]) == 2
    assert "faces folder not found" in one_error_line(capsys)
    assert not (tmp_path / "set").exists()


def test_existing_set_is_kept_without_overwrite_and_after_a_failed_rebuild(photos, tmp_path, capsys, monkeypatch):
    out = tmp_path / "set"
    assert faceset.main(["build", "--faces", str(photos), "-o", str(out)]) == 0
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert faceset.main(["build", "--faces", str(photos), "-o", str(out)]) == 2
    assert "--overwrite" in one_error_line(capsys)
    monkeypatch.setattr(FakeTeacher, "__call__", lambda self, rgb: [])
    assert faceset.main(["build", "--faces", str(photos), "-o", str(out), "--overwrite"]) == 2
    assert "no face accepted" in one_error_line(capsys)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert not list(tmp_path.glob(".set.*"))


def test_unreadable_photo_is_skipped_with_a_warning(photos, tmp_path, capsys):
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    assert faceset.main(["build", "--faces", str(photos), "-o", str(tmp_path / "set")]) == 0
    assert "warning: skipped" in capsys.readouterr().err


def test_missing_recognition_model_is_a_clear_error(tmp_path, capsys, monkeypatch):
    pytest.importorskip("dlib")
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), np.zeros((64, 64, 3), np.uint8))
    code = faceset.main(["build", "--faces", str(photos), "-o", str(tmp_path / "set"),
                         "--recognition-model", str(tmp_path / "nope.dat")])
    assert code == 2 and "not found" in one_error_line(capsys)


def test_real_build_over_the_shared_photos(tmp_path, shared_faces):
    pytest.importorskip("dlib")
    if importlib.util.find_spec("face_recognition_models") is None:  # importing it needs pkg_resources
        pytest.skip("face-recognition-models is not installed")
    out = tmp_path / "faces68"
    assert faceset.main(["build", "--faces", str(shared_faces), "-o", str(out)]) == 0
    manifest = json.loads((out / "faceset.json").read_text())
    astronaut = next(f for f in manifest["faces"] if f["face"] == "astronaut_face000")
    assert astronaut["split"] == "heldout"
    assert manifest["counts"]["train"]["faces"] >= 70 and manifest["counts"]["heldout"]["faces"] >= 15
    # the grid shows one man many times: his faces must form one identity on one side
    sizes = sorted((sum(1 for f in manifest["faces"] if f["identity"] == i) for i in
                    {f["identity"] for f in manifest["faces"]}), reverse=True)
    assert sizes[0] >= 10
