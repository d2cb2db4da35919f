"""A teacher's points as labels (``python -m train.tools.make_pseudo_labels``) and the recipe's
``--extra-data``, which joins such a set to 300-W's training part."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from unittest import mock

import cv2
import numpy as np
import pytest

from realtime.core.assets import ASTRONAUT_PTS, DEMO_PHOTO as ASTRONAUT, LANDMARKS_68 as TEACHER
from realtime.geometry.layouts import get_layout
from dataclasses import replace

from realtime.core.errors import UserError
from train import faces68
from train.recipes import faces68_recipe as recipe68
from train.data.datasets import open_dataset
from train.data.datasets.ibug300w import read_pts
from train.evaluation.metrics import nme, normalising_distance
from train.tools import make_pseudo_labels as pseudo



@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A folder dataset of two faces: the astronaut with its committed 68 points, and its mirror image."""
    root = tmp_path_factory.mktemp("faces")
    image, points = cv2.imread(str(ASTRONAUT)), read_pts(ASTRONAUT_PTS).astype(np.float64)
    shutil.copyfile(ASTRONAUT, root / "astronaut.jpg")
    (root / "astronaut.json").write_text(json.dumps({"points": points.tolist(), "layout": "ibug68"}))
    mirrored = points[list(get_layout("ibug68").mirror)]
    mirrored[:, 0] = image.shape[1] - 1 - mirrored[:, 0]
    cv2.imwrite(str(root / "mirrored.png"), image[:, ::-1])
    (root / "mirrored.json").write_text(json.dumps({"points": mirrored.tolist(), "layout": "ibug68"}))
    return root


def _nme(pred: np.ndarray, truth: np.ndarray) -> float:
    layout, visible = get_layout("ibug68"), np.ones((1, 68), dtype=bool)
    return float(nme(pred[None], truth[None], visible, normalising_distance(truth[None], visible, layout, "outer_eye"))[0])


def test_labels_are_the_teachers_points_read_back_as_a_folder_set(faces, tmp_path):
    out = tmp_path / "labels"
    assert pseudo.main(["--teacher", str(TEACHER), "--data", f"folder:{faces}", "-o", str(out), "--threads", "1"]) == 0
    labelled = open_dataset(f"folder:{out}")
    source = open_dataset(f"folder:{faces}")
    assert labelled.layout == "ibug68" and len(labelled) == 2
    by_name = {s.ident.split("_", 1)[1]: s for s in labelled.samples}
    for truth in source.samples:
        # the bundled model on a face it never trained on: close to the committed labels
        assert _nme(by_name[truth.ident].points, truth.points) < 0.04
    # test-time flipping maps the mirror view back point by point: a wrong permutation or a
    # mirrored x off by a pixel would make the two faces' labels disagree far more than this
    width = cv2.imread(str(ASTRONAUT)).shape[1]
    back = by_name["mirrored"].points[list(get_layout("ibug68").mirror)].astype(np.float64)
    back[:, 0] = width - 1 - back[:, 0]
    assert _nme(back, by_name["astronaut"].points.astype(np.float64)) < 0.01
    manifest = json.loads((out / pseudo.MANIFEST).read_text())
    assert manifest["counts"] == {"kept": 2, "unsure": 0, "views disagree": 0, "skipped": 0}
    assert manifest["teacher"]["layout"] == "ibug68" and len(manifest["faces"]) == 2
    assert all(f["score"] >= manifest["min_score"] and f["disagreement"] <= 0.05 for f in manifest["faces"])


def test_the_set_joins_another_and_keeps_dotted_names_unreadable_faces_skipped(faces, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(faces, source)
    (source / "astronaut.jpg").rename(source / "astro.v2.jpg")
    (source / "astronaut.json").rename(source / "astro.v2.json")
    (source / "broken.png").write_bytes(b"not an image")
    (source / "broken.json").write_text((source / "mirrored.json").read_text())
    out = tmp_path / "labels"
    assert pseudo.main(["--teacher", str(TEACHER), "--data", f"folder:{source}", "-o", str(out),
                        "--max-disagreement", "1e-6"]) == 2  # every view pair differs by more: nothing kept
    assert pseudo.main(["--teacher", str(TEACHER), "--data", f"folder:{source}", "-o", str(out)]) == 0
    manifest = json.loads((out / pseudo.MANIFEST).read_text())
    assert manifest["counts"] == {"kept": 2, "unsure": 0, "views disagree": 0, "skipped": 1}
    assert [f["why"] for f in manifest["faces"] if f["verdict"] == "skipped"][0].count("broken.png") == 1
    assert sorted(p.name for p in out.iterdir() if p.is_symlink()) == ["00000_astro.v2.jpg", "00002_mirrored.png"]
    assert not Path(os.readlink(out / "00000_astro.v2.jpg")).is_absolute()  # a relative link survives a move
    joined = open_dataset(f"folder:{faces} + folder:{out}")
    assert len(joined) == 4 and joined.layout == "ibug68"


def test_an_output_overlapping_the_data_is_refused(faces, tmp_path, capsys):
    for out in (faces, faces / "labels", faces.parent):
        code = pseudo.main(["--teacher", str(TEACHER), "--data", f"folder:{faces}", "-o", str(out), "--overwrite"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "overlaps the data it labels" in err[0]
    assert sorted(p.name for p in faces.iterdir()) == ["astronaut.jpg", "astronaut.json", "mirrored.json", "mirrored.png"]
    a_file = tmp_path / "file.txt"
    a_file.write_text("mine")
    assert pseudo.main(["--teacher", str(TEACHER), "--data", f"folder:{faces}", "-o", str(a_file), "--overwrite"]) == 2
    assert "is a file" in capsys.readouterr().err and a_file.read_text() == "mine"


def test_unsure_faces_are_refused_and_nothing_is_left_behind(faces, tmp_path, capsys):
    out = tmp_path / "labels"
    code = pseudo.main(["--teacher", str(TEACHER), "--data", f"folder:{faces}", "-o", str(out), "--min-score", "0.99"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "kept none of 2 faces" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".*building"))


def test_an_existing_set_is_kept_without_overwrite_and_replaced_with_it(faces, tmp_path, capsys):
    out = tmp_path / "labels"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert pseudo.main(["--teacher", str(TEACHER), "--data", f"folder:{faces}", "-o", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and (out / "mine.txt").read_text() == "keep me"
    assert pseudo.main(["--teacher", str(TEACHER), "--data", f"folder:{faces}", "-o", str(out), "--overwrite",
                        "--limit", "1", "--seed", "3"]) == 0
    manifest = json.loads((out / pseudo.MANIFEST).read_text())
    assert len(manifest["faces"]) == 1 and not (out / "mine.txt").exists()


def test_missing_teacher_is_one_line(faces, tmp_path, capsys):
    code = pseudo.main(["--teacher", str(tmp_path / "none.safetensors"), "--data", f"folder:{faces}", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--teacher weights not found" in err[0]


def test_extra_data_joins_the_training_part_only(tmp_path):
    (tmp_path / "300w").mkdir()
    seen = []
    with mock.patch.object(faces68, "run_or_resume", side_effect=lambda cfg, *a, **k: seen.append(cfg) or
                           {"step": 1, "start_step": 0, "seconds": 1.0}):
        faces68.main(["--data", str(tmp_path / "300w"), "--out", str(tmp_path / "run"), "--init", "none",
                      "--steps", "2", "--extra-data", "folder:PSEUDO", "--lr", "2e-4"])
    cfg, = seen
    assert cfg.lr == 2e-4
    assert cfg.data == f"300w:{tmp_path / '300w'}:train?part=fit + folder:PSEUDO"
    assert cfg.val == f"300w:{tmp_path / '300w'}:train?part=val"


def test_the_card_and_the_weights_name_the_extra_data_and_its_terms():
    assert recipe68.licence(None) == "trained on 300-W: research and non-commercial use only"
    assert "folder:X" in recipe68.licence("folder:X") and "research and non-commercial" in recipe68.licence("folder:X")
    assert recipe68._extra_data({"data": "300w:D:train?part=fit + folder:X"}) == "folder:X"
    assert recipe68._extra_data({"data": "300w:D:train?part=fit"}) is None


def test_shipping_a_run_needs_the_options_it_was_trained_with(tmp_path, capsys):
    (tmp_path / "300w").mkdir()
    run = tmp_path / "run"
    run.mkdir()
    trained = recipe68.recipe(tmp_path / "300w", run, 2, None, separable=2)  # faces68's defaults
    trained = replace(trained, data=trained.data + " + folder:PSEUDO", lr=2e-4)
    (run / "last.pt").write_bytes(b"")
    with mock.patch.object(faces68, "load_checkpoint", return_value={"fit_config": trained.to_dict()}):
        code = faces68.main(["--ship-now", "--data", str(tmp_path / "300w"), "--out", str(run), "--init", "none",
                             "--ship", str(tmp_path / "m.safetensors"), "--docs", str(tmp_path / "docs")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "other settings (data, lr)" in err[0]
        with mock.patch.object(faces68, "ship_run") as ship_run, mock.patch.object(faces68, "measure", side_effect=UserError("measured")):
            faces68.main(["--ship-now", "--data", str(tmp_path / "300w"), "--out", str(run), "--init", "none",
                          "--ship", str(tmp_path / "m.safetensors"), "--docs", str(tmp_path / "docs"),
                          "--extra-data", "folder:PSEUDO", "--lr", "2e-4"])
        assert ship_run.called
