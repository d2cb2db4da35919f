"""Dataset readers against tiny fixtures in the real formats (tests/fixtures/make_fixtures.py)."""
from __future__ import annotations

import importlib.util
import logging
import math
import shutil
import sqlite3
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from realtime.core.errors import UserError
from train.data.datasets import describe_specs, open_dataset, parse_spec
from train.data.datasets.aflw import load_aflw19_mat, load_aflw_sqlite
from train.data.datasets.folder import load_folder
from train.data.datasets.ibug300w import load_300w, read_pts
from train.data.datasets.mtfl import load_mtfl

FIX = Path(__file__).parent / "fixtures"


def idents(data) -> list[str]:
    return [s.ident for s in data.samples]


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIX / name, tmp_path / name))


# ---------------------------------------------------------------- 300W and .pts

def test_read_pts_converts_one_based_to_zero_based():
    pts = read_pts(FIX / "300w/afw/134212_1.pts")  # written: x = 1.5 + 3 (k % 10), y = 1.25 + 4 (k // 10)
    assert pts.shape == (68, 2) and pts.dtype == np.float32
    np.testing.assert_allclose(pts[0], [0.5, 0.25])
    np.testing.assert_allclose(pts[67], [21.5, 24.25])


@pytest.mark.parametrize("split, expected", [
    ("train", ["afw/134212_1", "afw/134212_2", "helen/trainset/100032540_1", "lfpw/trainset/image_0001"]),
    ("common", ["helen/testset/296814969_3", "lfpw/testset/image_0001"]),
    ("challenging", ["ibug/image_003_1"]),
    ("full", ["helen/testset/296814969_3", "lfpw/testset/image_0001", "ibug/image_003_1"]),
])
def test_300w_splits(split, expected):
    data = load_300w(FIX / "300w", split)
    assert idents(data) == expected
    assert data.layout == "ibug68" and data.name == f"300w:{split}"
    assert [s.subset for s in data.samples] == [e.rsplit("/", 1)[0] for e in expected]
    for s in data.samples:
        assert s.visible.all() and s.layout == "ibug68" and Path(s.image_path).is_file()


def test_300w_coordinates_per_file_including_crlf():
    full = {s.ident: s for s in load_300w(FIX / "300w", "full").samples}
    np.testing.assert_allclose(full["ibug/image_003_1"].points[0], [0.5, 6.25])  # j = 6
    crlf = full["lfpw/testset/image_0001"]  # the CRLF file, j = 5
    np.testing.assert_allclose(crlf.points[67], [21.5, 29.25])
    assert crlf.image_path.endswith("image_0001.png")


def test_300w_warns_when_complete_tree_has_unofficial_counts(caplog):
    with caplog.at_level(logging.WARNING):
        load_300w(FIX / "300w", "common")
    assert "helen/testset 1 (official 330)" in caplog.text


def test_300w_partial_tree_loads_without_warning(tmp_path, caplog):
    shutil.copytree(FIX / "300w/ibug", tmp_path / "ibug")
    with caplog.at_level(logging.WARNING):
        assert len(load_300w(tmp_path, "challenging")) == 1
    assert "official" not in caplog.text
    with pytest.raises(UserError, match=r"has none of the train split's folders \(afw/, helen/trainset/, lfpw/trainset/\)"):
        load_300w(tmp_path, "train")


def test_300w_partial_train_and_test_say_what_they_found(tmp_path, capsys):
    """The shared copy has afw/ and part of helen/trainset/ only: train reads what is there and
    says so in one line; an evaluation group reads whichever of its test folders exist."""
    shutil.copytree(FIX / "300w/afw", tmp_path / "afw")
    shutil.copytree(FIX / "300w/helen", tmp_path / "helen")
    data = load_300w(tmp_path, "train")
    assert idents(data) == ["afw/134212_1", "afw/134212_2", "helen/trainset/100032540_1"]
    line = capsys.readouterr().err.strip()
    assert line == ("300W train: 3 faces from afw 2 of 337, helen/trainset 1 of 2000 "
                    "(missing: lfpw/trainset)")
    assert idents(load_300w(tmp_path, "full")) == ["helen/testset/296814969_3"]
    assert "(missing: lfpw/testset, ibug)" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"none of the challenging split's folders \(ibug/\)"):
        load_300w(tmp_path, "challenging")


def test_300w_bad_split_pts_without_image_and_wrong_count(tmp_path):
    root = copy_fixture("300w", tmp_path)
    with pytest.raises(UserError, match="unknown 300W split 'test'"):
        load_300w(root, "test")
    (root / "ibug/image_003_1.jpg").unlink()
    with pytest.raises(UserError, match=r"no image beside .*image_003_1\.pts"):
        load_300w(root, "challenging")
    text = (root / "afw/134212_1.pts").read_text().splitlines()
    short = ["version: 1", "n_points: 67"] + text[2:3] + text[4:]  # drop the first point
    (root / "afw/134212_1.pts").write_text("\n".join(short))
    with pytest.raises(UserError, match=r"134212_1\.pts: has 67 points; 300W"):
        load_300w(root, "train")


PTS_BREAKAGE = [  # (what to do to the lines, expected message part)
    (lambda ls: ["version: 2"] + ls[1:], r":1: unsupported version 2"),
    (lambda ls: ls[:1] + ["npoints: 68"] + ls[2:], r":2: expected 'n_points: \.\.\.'"),
    (lambda ls: ls[:1] + ["n_points: many"] + ls[2:], r":2: 'n_points' is not an integer"),
    (lambda ls: ls[:2] + ls[3:], r":3: missing '\{'"),
    (lambda ls: ls[:10] + ["12.0 abc"] + ls[11:], r":11: non-numeric coordinate"),
    (lambda ls: ls[:10] + ["1.0 2.0 3.0"] + ls[11:], r":11: expected 2 numbers 'x y', found 3"),
    (lambda ls: ls[:-1], r"missing closing '\}'"),
    (lambda ls: ls[:3] + ls[4:], r"n_points says 68 but the file has 67 points"),
    (lambda ls: [], r"missing 'version:' line"),
]


@pytest.mark.parametrize("breakage, message", PTS_BREAKAGE)
def test_malformed_pts_names_file_and_line(tmp_path, breakage, message):
    lines = (FIX / "300w/afw/134212_1.pts").read_text().splitlines()
    bad = tmp_path / "bad.pts"
    bad.write_text("\n".join(breakage(lines)) + "\n")
    with pytest.raises(UserError, match=r"bad\.pts") as info:
        read_pts(bad)
    assert info.match(message)


# ---------------------------------------------------------------- AFLW sqlite

def test_aflw_sqlite_points_visibility_pose_and_box():
    data = load_aflw_sqlite(FIX / "aflw/aflw.sqlite")
    assert idents(data) == ["face39341", "face39342", "face39344"]  # 39343 has no landmarks
    assert data.layout == "aflw21"
    assert data.attribute_kinds == {"yaw": "angle", "pitch": "angle", "roll": "angle"}
    full, partial, sparse = data.samples
    i = np.arange(21)
    np.testing.assert_allclose(full.points, np.stack([2 + i, 3 + i / 2], axis=1))
    assert full.visible.all() and full.box == (1.0, 2.0, 26.0, 22.0) and full.subset == "0"
    assert full.attributes["yaw"] == pytest.approx(math.degrees(0.5))
    assert full.attributes["pitch"] == pytest.approx(math.degrees(-0.25))
    assert full.attributes["roll"] == pytest.approx(math.degrees(0.1))
    assert full.image_path == str(FIX / "aflw/flickr/0/image00002.jpg")
    assert list(np.flatnonzero(~partial.visible)) == [2, 12, 16]  # feature ids 3, 13, 17
    assert np.isfinite(partial.points).all()  # placeholders stay finite for masked losses
    np.testing.assert_allclose(partial.points[0], [30, 4])
    assert partial.attributes["yaw"] == pytest.approx(-45.0)
    assert list(np.flatnonzero(sparse.visible)) == [7, 10, 14] and sparse.box is None
    assert all(math.isnan(v) for v in sparse.attributes.values())


def test_aflw_sqlite_19_points_drops_ears():
    data = load_aflw_sqlite(FIX / "aflw/aflw.sqlite", points=19)
    assert data.layout == "aflw19" and data.samples[0].points.shape == (19, 2)
    np.testing.assert_allclose(data.samples[0].points[12], [2 + 13, 3 + 13 / 2])  # NoseLeft, id 14
    assert list(np.flatnonzero(~data.samples[1].visible)) == [2]


def test_aflw_sqlite_malformed(tmp_path):
    root = copy_fixture("aflw", tmp_path)
    con = sqlite3.connect(root / "aflw.sqlite")
    con.execute("DROP TABLE FacePose")
    con.commit()
    con.close()
    with pytest.raises(UserError, match=r"aflw\.sqlite lacks table\(s\) FacePose"):
        load_aflw_sqlite(root / "aflw.sqlite")
    (root / "fake.sqlite").write_text("not a database\n" * 200)
    with pytest.raises(UserError, match=r"fake\.sqlite is not a readable sqlite database"):
        load_aflw_sqlite(root / "fake.sqlite")
    with pytest.raises(UserError, match="AFLW sqlite file not found"):
        load_aflw_sqlite(root / "missing.sqlite")


def test_aflw_sqlite_image_root(tmp_path):
    shutil.copy(FIX / "aflw/aflw.sqlite", tmp_path / "aflw.sqlite")
    with pytest.raises(UserError, match=r"image folder not found: .*flickr \(pass \?images=DIR\)"):
        load_aflw_sqlite(tmp_path / "aflw.sqlite")
    data = load_aflw_sqlite(tmp_path / "aflw.sqlite", images=FIX / "aflw/flickr")
    assert len(data) == 3
    shutil.copytree(FIX / "aflw/flickr", tmp_path / "flickr")
    (tmp_path / "flickr/2/image13.jpg").unlink()
    with pytest.raises(UserError, match=r"1 of 3 images listed in .*aflw\.sqlite are missing"):
        load_aflw_sqlite(tmp_path / "aflw.sqlite")


# ---------------------------------------------------------------- AFLW-19 .mat

def test_aflw19_mat_splits_offsets_and_mask():
    mat = FIX / "aflw/AFLWinfo_release.mat"
    train = load_aflw19_mat(mat, "train", n_train=3)
    assert idents(train) == ["row3", "row1", "row5"] and train.layout == "aflw19"
    row1 = train.samples[1]  # written 1-based: x_i = 1 + i, y_i = 2 + i / 2; bbox [1, 20, 2, 25]
    i = np.arange(19)
    np.testing.assert_allclose(row1.points, np.stack([i, 1 + i / 2], axis=1))
    assert row1.box == (0.0, 1.0, 19.0, 24.0) and row1.visible.all() and row1.subset == "train"
    assert row1.image_path == str(FIX / "aflw/flickr/0/image00002.jpg")
    test = load_aflw19_mat(mat, "test", n_train=3)
    assert idents(test) == ["row2", "row4"] and test.samples[0].subset == "test"
    assert list(np.flatnonzero(~test.samples[0].visible)) == [3, 8]
    assert idents(load_aflw19_mat(mat, "frontal", n_train=3)) == ["row4"]
    assert len(load_aflw19_mat(mat, "train")) == 5  # the official 20,000 exceed this file


def mat_fields() -> dict:
    mat = loadmat(str(FIX / "aflw/AFLWinfo_release.mat"))
    return {k: mat[k] for k in ("data", "nameList", "mask_new", "bbox", "ra")}


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("ra"), r"lacks field\(s\) ra"),
    (lambda m: m.update(ra=np.array([[1, 1, 2, 3, 4]])), "ra is not a permutation of 1..5"),
    (lambda m: m.update(data=m["data"][:, :30]), r"field data has shape \(5, 30\), expected \(5, 38\)"),
    (lambda m: m.update(bbox=m["bbox"] * np.nan), "field bbox has non-finite values"),
])
def test_aflw19_mat_malformed(tmp_path, change, message):
    fields = mat_fields()
    change(fields)
    savemat(tmp_path / "bad.mat", fields)
    with pytest.raises(UserError, match=message):
        load_aflw19_mat(tmp_path / "bad.mat", images=FIX / "aflw/flickr")


def test_aflw19_mat_not_a_mat_and_bad_split(tmp_path):
    (tmp_path / "x.mat").write_text("hello")
    with pytest.raises(UserError, match=r"x\.mat is not a readable MATLAB"):
        load_aflw19_mat(tmp_path / "x.mat")
    with pytest.raises(UserError, match="unknown AFLW-19 split 'val'"):
        load_aflw19_mat(FIX / "aflw/AFLWinfo_release.mat", "val")


# ---------------------------------------------------------------- MTFL

def test_mtfl_train_points_attributes_and_backslash_paths():
    data = load_mtfl(FIX / "mtfl", "train")
    assert idents(data) == ["lfw_5590/Aaron_Eckhart_0001.jpg", "net_7876/prefix_0_1.jpg"]
    assert data.attribute_kinds == {"gender": "class:2", "smile": "class:2", "glasses": "class:2",
                                    "pose": "class:5"}
    first, second = data.samples
    np.testing.assert_allclose(first.points, [[10.5, 11], [20.25, 11], [15, 17.5], [12, 22], [19, 22]])
    assert first.attributes == {"gender": 0, "smile": 1, "glasses": 1, "pose": 2}  # codes 1 2 2 3
    assert second.attributes == {"gender": 1, "smile": 0, "glasses": 0, "pose": 4}  # codes 2 1 1 5
    assert first.subset == "lfw_5590" and first.layout == "mtfl5" and first.visible.all()
    assert Path(second.image_path).is_file()
    test = load_mtfl(FIX / "mtfl", "test")
    assert idents(test) == ["AFLW/0001-image20056.jpg"] and test.samples[0].subset == "AFLW"


@pytest.mark.parametrize("line, message", [
    ("lfw_5590\\a.jpg 1 2 3 4 5 6 7 8 9 10 1 1 1", r"training\.txt:2: expected 15 columns .* found 14"),
    ("lfw_5590\\a.jpg 1 2 3 4 5 6 7 8 9 x 1 1 1 1", r"training\.txt:2: non-numeric value"),
    ("lfw_5590\\a.jpg 1 2 3 4 5 6 7 8 9 10 3 1 1 1", r"training\.txt:2: gender code 3 is outside 1\.\.2"),
    ("lfw_5590\\a.jpg 1 2 3 4 5 6 7 8 9 10 1 1 1 6", r"training\.txt:2: pose code 6 is outside 1\.\.5"),
])
def test_mtfl_malformed_lines(tmp_path, line, message):
    root = copy_fixture("mtfl", tmp_path)
    first = (root / "training.txt").read_text().splitlines()[0]
    (root / "training.txt").write_text(first + "\n" + line + "\n")
    with pytest.raises(UserError, match=message):
        load_mtfl(root, "train")


def test_mtfl_missing_files(tmp_path):
    root = copy_fixture("mtfl", tmp_path)
    (root / "AFLW/0001-image20056.jpg").unlink()
    with pytest.raises(UserError, match=r"1 of 1 images listed in .*testing\.txt are missing"):
        load_mtfl(root, "test")
    (root / "testing.txt").unlink()
    with pytest.raises(UserError, match=r"MTFL annotation file not found: .*testing\.txt"):
        load_mtfl(root, "test")
    with pytest.raises(UserError, match="unknown MTFL split"):
        load_mtfl(root, "val")


# ---------------------------------------------------------------- generic folder

def test_folder_pts_and_json(caplog):
    with caplog.at_level(logging.WARNING):
        data = load_folder(FIX / "folder")
    assert "1 image(s)" in caplog.text  # unlabelled.png
    assert idents(data) == ["face_a", "sub/face_b", "sub/face_c"] and data.layout == "ibug68"
    a, b, c = data.samples
    k = np.arange(68)
    np.testing.assert_allclose(a.points, np.stack([1 + k % 8, k // 8 * 3], axis=1))  # .pts: 1-based
    # the .json is already 0-based
    np.testing.assert_allclose(b.points, np.stack([1 + k % 10 * 2.5, 2 + k // 10 * 4], axis=1))
    assert list(np.flatnonzero(~b.visible)) == [30, 31] and b.box == (0.5, 1.5, 30.0, 31.0)
    assert b.attributes == {"smile": 1, "yaw": 12.5} and b.subset == "sub" and a.subset == ""
    np.testing.assert_allclose(c.points, 5.0)  # the .json wins over the .pts beside it
    assert data.attribute_kinds == {"smile": "class:2", "yaw": "scalar"}
    assert math.isnan(a.attributes["smile"]) and math.isnan(c.attributes["yaw"])


def write_json(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIX / "folder/face_a.png", path.with_suffix(".png"))
    path.write_text(text)


def test_folder_layout_from_count_option_or_error(tmp_path):
    five = "[" + ", ".join(["[1, 2]"] * 5) + "]"
    write_json(tmp_path / "five/a.json", f'{{"points": {five}}}')
    assert load_folder(tmp_path / "five").layout == "mtfl5"
    seven = "[" + ", ".join(["[1, 2]"] * 7) + "]"
    write_json(tmp_path / "seven/a.json", f'{{"points": {seven}}}')
    with pytest.raises(UserError, match=r"have 7 points .* pass \?layout=NAME"):
        load_folder(tmp_path / "seven")
    with pytest.raises(UserError, match="layout ibug68 has 68 points but the faces .* have 7"):
        load_folder(tmp_path / "seven", layout="ibug68")
    with pytest.raises(UserError, match="unknown keypoint layout 'nope'"):
        load_folder(tmp_path / "five", layout="nope")


@pytest.mark.parametrize("text, message", [
    ('{"points": [[1, 2],', r"a\.json:1: invalid JSON"),
    ('[1, 2]', r"a\.json: expected an object with a \"points\" list"),
    ('{"points": [[1, "x"]]}', r"\"points\" must be a non-empty list of \[x, y\] number pairs"),
    ('{"points": [[1, 2]], "visible": [true, false]}', r"\"visible\" must be a list of 1 booleans"),
    ('{"points": [[1, 2]], "attributes": {"a": "b"}}', r"\"attributes\" must map names to numbers"),
    ('{"points": [[1, 2]], "box": [1, 2, 3]}', r"\"box\" must be \[x0, y0, x1, y1\]"),
    ('{"points": [[1, 2]], "layout": "nope"}', "unknown keypoint layout 'nope'"),
])
def test_folder_malformed_json(tmp_path, text, message):
    write_json(tmp_path / "a.json", text)
    with pytest.raises(UserError, match=message):
        load_folder(tmp_path)


def test_folder_mixed_point_counts_and_empty(tmp_path):
    root = copy_fixture("folder", tmp_path)
    write_json(root / "zz/odd.json", '{"points": [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]}')
    with pytest.raises(UserError, match=r"odd\.json has 5 points but .*face_a\.pts has 68"):
        load_folder(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images with a .pts or .json"):
        load_folder(tmp_path / "empty")


# ---------------------------------------------------------------- specs

@pytest.mark.parametrize("spec, kind, path, split, options", [
    ("300w:/data/300W:common", "300w", "/data/300W", "common", {}),
    ("300w:/data/300W", "300w", "/data/300W", "train", {}),
    ("MTFL:data/mtfl:test", "mtfl", "data/mtfl", "test", {}),
    ("aflw:C:\\data\\aflw.sqlite?points=19&images=D:\\img", "aflw", "C:\\data\\aflw.sqlite", "all",
     {"points": "19", "images": "D:\\img"}),
    ("aflw19:x/AFLWinfo_release.mat:frontal?images=/img", "aflw19", "x/AFLWinfo_release.mat", "frontal",
     {"images": "/img"}),
    ("folder:faces?layout=ibug68", "folder", "faces", "all", {"layout": "ibug68"}),
    ("synth", "synth", "", "train", {}),
    ("synth:val?n=5&seed=3", "synth", "", "val", {"n": "5", "seed": "3"}),
])
def test_parse_spec(spec, kind, path, split, options):
    parsed = parse_spec(spec)
    assert (parsed.kind, parsed.path, parsed.split, parsed.options) == (kind, path, split, options)


@pytest.mark.parametrize("spec, message", [
    ("imagenet:/data", "unknown dataset kind 'imagenet'"),
    ("300w:", "has no path; expected 300w:ROOT"),
    ("300w:/data:test", "unknown split 'test' for 300w datasets; choose one of train, common"),
    ("mtfl:/data?layout=x", r"unknown option 'layout' for mtfl datasets \(known: part, holdout, holdout_seed\)"),
    ("aflw:/a.sqlite?points", "bad option 'points'"),
    ("aflw:/a.sqlite?points=19&points=21", "option 'points' given twice"),
    ("synth:a:b", "bad split 'a:b'"),
])
def test_bad_specs(spec, message):
    with pytest.raises(UserError, match=message):
        parse_spec(spec)


@pytest.mark.parametrize("spec, message", [
    ("300w:/no/such/place", "dataset path not found: /no/such/place"),
    (f"aflw:{FIX}/aflw/aflw.sqlite?points=20", "option points='20' must be 19 or 21"),
    (f"aflw19:{FIX}/aflw/AFLWinfo_release.mat:test", "selects no faces"),
    (f"folder:{FIX}/folder?layout=mtfl5", "layout=mtfl5 but"),
])
def test_open_dataset_errors(spec, message):
    with pytest.raises(UserError, match=message):
        open_dataset(spec)


@pytest.mark.parametrize("spec, n, layout", [
    (f"300w:{FIX}/300w:full", 3, "ibug68"),
    (f"aflw:{FIX}/aflw/aflw.sqlite?points=19", 3, "aflw19"),
    (f"aflw:{FIX}/aflw/aflw.sqlite?images={FIX}/aflw/flickr", 3, "aflw21"),
    (f"aflw19:{FIX}/aflw/AFLWinfo_release.mat", 5, "aflw19"),
    (f"mtfl:{FIX}/mtfl:test", 1, "mtfl5"),
    (f"folder:{FIX}/folder?layout=ibug68", 3, "ibug68"),
])
def test_open_dataset_every_kind(spec, n, layout):
    data = open_dataset(spec)
    assert len(data) == n and data.layout == layout


def test_synth_is_imported_lazily_with_parsed_arguments(monkeypatch):
    calls = []
    fake = types.ModuleType("train.data.synthetic")
    fake.load_synthetic = lambda split, n, seed: calls.append((split, n, seed)) or [object()]
    monkeypatch.setitem(sys.modules, "train.data.synthetic", fake)
    open_dataset("synth:val?n=7&seed=3")
    open_dataset("synth")
    assert calls == [("val", 7, 3), ("train", None, 0)]
    for spec, message in (("synth?n=abc", "n='abc' is not an integer"),
                          ("synth?n=0", "n=0 must be at least 1")):
        with pytest.raises(UserError, match=message):
            open_dataset(spec)
    monkeypatch.setitem(sys.modules, "train.data.synthetic", None)
    with pytest.raises(UserError, match="train.data.synthetic is missing"):
        open_dataset("synth")


def test_describe_specs_lists_every_kind():
    text = describe_specs()
    for form in ("300w:ROOT[:SPLIT]", "aflw:aflw.sqlite", "aflw19:AFLWinfo_release.mat", "mtfl:ROOT",
                 "folder:DIR", "synth[:SPLIT][?n=N&seed=S]", "challenging", "frontal"):
        assert form in text


def test_make_fixtures_regenerates_the_same_annotations(tmp_path):
    spec = importlib.util.spec_from_file_location("make_fixtures", FIX / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    loaders = [
        lambda r: load_300w(r / "300w", "full"), lambda r: load_aflw_sqlite(r / "aflw/aflw.sqlite"),
        lambda r: load_aflw19_mat(r / "aflw/AFLWinfo_release.mat", "test", n_train=3),
        lambda r: load_mtfl(r / "mtfl", "train"), lambda r: load_folder(r / "folder"),
    ]
    for load in loaders:
        new, old = load(tmp_path), load(FIX)
        assert idents(new) == idents(old)
        for a, b in zip(new.samples, old.samples):
            np.testing.assert_array_equal(a.points, b.points)
            np.testing.assert_array_equal(a.visible, b.visible)


# ---------------------------------------------------------------- AFW with MTFL's 5 points, NME as the 2016 paper

def test_300w_subset_and_the_5_points_derived_from_68():
    """``300w:ROOT:train?subset=afw&layout=mtfl5``: only AFW's faces, each with MTFL's 5 points taken
    from its 68 (eye centres = mean of each eye's 6 contour points, nose tip 30, mouth corners 48, 54),
    checked against the fixture's .pts by hand."""
    from train.data.datasets import open_dataset
    from train.data.datasets.ibug300w import read_pts

    data = open_dataset(f"300w:{FIX / '300w'}:train?subset=afw&layout=mtfl5")
    assert data.layout == "mtfl5" and len(data) == 2 and {s.subset for s in data.samples} == {"afw"}
    for sample in data.samples:
        pts68 = read_pts(Path(sample.image_path).with_suffix(".pts"))
        expected = [pts68[36:42].mean(0), pts68[42:48].mean(0), pts68[30], pts68[48], pts68[54]]
        np.testing.assert_allclose(sample.points, expected, atol=1e-5)
    with pytest.raises(UserError, match="has no folder ibug"):
        open_dataset(f"300w:{FIX / '300w'}:train?subset=ibug")
    with pytest.raises(UserError, match="layout must be ibug68 or mtfl5"):
        open_dataset(f"300w:{FIX / '300w'}:train?layout=aflw19")


def test_nme_on_mtfl_by_the_eye_centre_distance_is_the_hand_computed_one():
    """The 2016 paper's measure on MTFL: mean point error over the inter-ocular (eye-centre) distance.
    Every prediction moved by (3, 4) px is 5 px off; the fixture's first face has its eyes 9.75 px apart."""
    from realtime.geometry.layouts import get_layout
    from train.data.datasets import open_dataset
    from train.evaluation.metrics import nme, normalising_distance

    data = open_dataset(f"mtfl:{FIX / 'mtfl'}:train")
    gt = np.stack([s.points for s in data.samples]).astype(np.float64)
    mask = np.stack([s.visible for s in data.samples])
    errors = nme(gt + [3.0, 4.0], gt, mask, normalising_distance(gt, mask, get_layout("mtfl5"), "eye_centres"))
    eyes = np.linalg.norm(gt[:, 1] - gt[:, 0], axis=1)
    np.testing.assert_allclose(errors, 5.0 / eyes)
    assert errors[0] == pytest.approx(5.0 / 9.75)


def test_the_derived_points_follow_mtfls_order_on_real_faces(shared_300w, shared_data):
    """On the real AFW faces and the real MTFL ones alike, the first point (MTFL's "left eye") is the
    image-left eye in nearly every face, and the 4th the image-left mouth corner."""
    from train.data.datasets import open_dataset

    for spec in (f"300w:{shared_300w}:train?subset=afw&layout=mtfl5", f"mtfl:{shared_data / 'mtfl'}:train"):
        pts = np.stack([s.points for s in open_dataset(spec).samples])
        assert np.mean(pts[:, 0, 0] < pts[:, 1, 0]) > 0.95 and np.mean(pts[:, 3, 0] < pts[:, 4, 0]) > 0.95, spec
