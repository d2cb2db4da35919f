"""The synthetic benchmark: determinism, shapes, attributes, landmarks on the drawn features, cache."""
from __future__ import annotations

import hashlib
import logging

import cv2
import numpy as np
import pytest

import train.data.synthetic as synthetic
from realtime.core.errors import UserError
from train.data.synthetic import (CLASS_EDGES, class_from_points, generate, load_synthetic,
                             orientation_from_points, write_preview)
from train.data.synthetic_parts import Eye, affine_mapper, draw_eye, draw_mouth, mouth_corners, sample_mouth
from train.data.synthetic_render import CLEAN, render
from train.data.synthetic_scene import Canvas, rotation


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RCN_CACHE", str(tmp_path / "cache"))


def test_shapes_and_dtypes():
    a = generate(6, seed=1)
    assert a.images.shape == (6, 96, 96) and a.images.dtype == np.uint8
    assert a.points.shape == (6, 5, 2) and a.points.dtype == np.float32
    assert a.cls.shape == (6,) and a.cls.dtype == np.int64
    assert a.orientation.shape == (6,) and a.orientation.dtype == np.float32
    assert generate(2, seed=1, size=64).images.shape == (2, 64, 64)


def test_same_seed_same_arrays_other_seed_differs():
    a, b, c = generate(5, seed=3), generate(5, seed=3), generate(5, seed=4)
    for name in ("images", "points", "cls", "orientation"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.images, c.images)
    assert not np.allclose(a.points, c.points)
    np.testing.assert_array_equal(generate(2, seed=3).images, a.images[:2])  # a prefix


def test_worker_processes_do_not_change_the_output(monkeypatch):
    monkeypatch.setattr(synthetic, "_CHUNK", 3)  # chunks are cut in the parent
    one = generate(8, seed=9, workers=1)
    two = generate(8, seed=9, workers=2)
    np.testing.assert_array_equal(one.images, two.images)
    np.testing.assert_array_equal(one.points, two.points)


def test_attributes_follow_the_landmarks():
    a = generate(300, seed=2)
    np.testing.assert_array_equal(a.cls, class_from_points(a.points))
    assert set(np.unique(a.cls)) == {0, 1, 2}
    p = a.points.astype(np.float64)
    ratio = np.linalg.norm(p[:, 4] - p[:, 3], axis=1) / np.linalg.norm(p[:, 1] - p[:, 0], axis=1)
    assert np.abs(ratio[:, None] - np.array(CLASS_EDGES)).min() > 0.035  # separated classes
    d = p[:, 1] - p[:, 0]
    np.testing.assert_allclose(a.orientation, np.degrees(np.arctan2(d[:, 1], d[:, 0])), atol=1e-4)
    np.testing.assert_array_equal(a.orientation, orientation_from_points(a.points))
    assert np.abs(a.orientation).max() <= 45.001 and np.abs(a.orientation).max() > 30


def test_options_change_the_scene_not_the_face():
    full_image, full_points = render(np.random.default_rng([5, 0]), 96)
    clean_image, clean_points = render(np.random.default_rng([5, 0]), 96, CLEAN)
    np.testing.assert_array_equal(full_points, clean_points)
    assert not np.array_equal(full_image, clean_image)


def test_faces_are_framed_in_the_image():
    a = generate(200, seed=4)
    assert ((a.points > -0.5) & (a.points < 95.5)).all()
    assert (a.points[:, 0, 0] < a.points[:, 1, 0]).mean() > 0.9  # left eye on the image left


def _extreme_centroid(image: np.ndarray, p: np.ndarray, darkest: bool, tolerance: float = 8.0) -> np.ndarray:
    """(2,) mean position of the pixels within ``tolerance`` grey levels of the darkest (or
    brightest) pixel of the 5x5 window around p."""
    x, y = int(round(p[0])), int(round(p[1]))
    win = image[y - 2:y + 3, x - 2:x + 3].astype(np.float64) * (1 if darkest else -1)
    ys, xs = np.nonzero(win <= win.min() + tolerance)
    return np.array([xs.mean() + x - 2, ys.mean() + y - 2])


def test_pupils_and_nose_tip_lie_on_the_drawn_features():
    """In clean full faces the darkest spot at an eye landmark is the pupil and the brightest at
    the nose landmark the tip highlight. Tiny eyes (pupil < 1 px) blur into the lashes, so allow
    a few misses of more than a pixel."""
    errors = []
    for index in range(40):
        image, points = render(np.random.default_rng([77, index]), 96, CLEAN)
        errors += [np.linalg.norm(_extreme_centroid(image, points[k], k < 2) - points[k]) for k in (0, 1, 2)]
    errors = np.array(errors)
    assert np.median(errors) < 0.4 and (errors <= 1.0).mean() >= 0.95 and errors.max() < 2.5


def _flat_canvas() -> Canvas:
    return Canvas(np.full((96, 96), 200, np.float32))


@pytest.mark.parametrize("trial", range(8))
def test_pupil_centre_is_the_landmark_to_a_fraction_of_a_pixel(trial):
    rng = np.random.default_rng(trial)
    scale = rng.uniform(15, 40)
    m = affine_mapper(scale * rotation(rng.uniform(-1, 1)), rng.uniform(40, 56, 2))
    eye = Eye(half_w=0.22, half_h=0.16, lower=0.9, iris_r=0.12, pupil_r=0.05, sclera=250, iris=110,
              pupil=10, lid=170, lash=120, catchlight=0.0)  # only the pupil is darker than the iris
    gaze = np.array([rng.uniform(-0.08, 0.08), rng.uniform(-0.01, 0.01)])
    canvas = _flat_canvas()
    draw_eye(canvas, m, eye, gaze, scale)
    image = canvas.result().astype(np.float64)
    target = m(gaze[None])[0]
    ys, xs = np.mgrid[:96, :96]
    near = np.hypot(xs - target[0], ys - target[1]) < eye.pupil_r * scale + 1
    weight = np.clip(eye.iris - image, 0, None) * near
    centroid = np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()
    assert np.linalg.norm(centroid - target) < 0.15  # cv2's own anti-aliased fill at 1x: ~0.3


@pytest.mark.parametrize("trial", range(8))
def test_mouth_ends_at_its_corner_landmarks(trial):
    rng = np.random.default_rng(trial)
    scale = rng.uniform(15, 40)
    m = affine_mapper(scale * rotation(rng.uniform(-1, 1)), rng.uniform(40, 56, 2))
    mouth = sample_mouth(rng, rng.uniform(0.6, 1.1), 200.0)
    canvas = _flat_canvas()
    draw_mouth(canvas, m, mouth, scale)
    ys, xs = np.nonzero(canvas.result() < 196)  # any visible darkening (2% of the contrast)
    left, right = m(mouth_corners(mouth))
    axis = (right - left) / np.linalg.norm(right - left)
    along = np.stack([xs, ys], 1) @ axis  # pixel centres: up to ~0.7 px of quantisation
    assert abs(along.max() - right @ axis) < 0.8  # the drawn mouth reaches each corner, no further
    assert abs(along.min() - left @ axis) < 0.8


def test_load_synthetic_samples_and_cache_round_trip(tmp_path, monkeypatch):
    data = load_synthetic("val", n=5, seed=1)
    assert len(data) == 5 and data.layout == "mtfl5" and data.name == "synth:val"
    assert data.attribute_kinds == {"cls": "class:3", "orientation": "angle"}
    s = data.samples[3]
    assert s.ident == "synth-val-3" and s.subset == "val" and s.layout == "mtfl5"
    assert s.image.shape == (96, 96, 3) and s.image.dtype == np.uint8
    assert (s.image[..., 0] == s.image[..., 2]).all() and s.visible.all() and s.visible.shape == (5,)
    assert set(s.attributes) == {"cls", "orientation"} and isinstance(s.attributes["cls"], int)
    files = list((tmp_path / "cache").glob("*.npz"))
    assert len(files) == 1 and synthetic.GENERATOR_VERSION in files[0].name

    def no_drawing(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(synthetic, "generate", no_drawing)
    again = load_synthetic("val", n=5, seed=1)
    np.testing.assert_array_equal(again.samples[3].image, s.image)
    np.testing.assert_array_equal(again.samples[3].points, s.points)
    assert again.samples[3].attributes == s.attributes


def test_corrupt_cache_is_regenerated(tmp_path, caplog):
    first = load_synthetic("test", n=4)
    path = next((tmp_path / "cache").glob("*.npz"))
    path.write_bytes(path.read_bytes()[:300])  # truncated
    with caplog.at_level(logging.WARNING, logger="train.data.synthetic"):
        second = load_synthetic("test", n=4)
    assert "regenerating" in caplog.text
    np.testing.assert_array_equal(second.samples[2].image, first.samples[2].image)
    with np.load(path) as f:  # rewritten whole
        assert f["images"].shape == (4, 96, 96)


def test_splits_never_share_images():
    digests = {}
    for split in ("train", "val", "test"):
        data = load_synthetic(split, n=20)
        digests[split] = {hashlib.sha1(s.image[..., 0].tobytes()).hexdigest() for s in data.samples}
        assert len(digests[split]) == 20
    assert not (digests["train"] & digests["val"] or digests["train"] & digests["test"]
                or digests["val"] & digests["test"])


@pytest.mark.parametrize("call", [
    lambda: load_synthetic("bogus"),
    lambda: load_synthetic("train", n=0),
    lambda: load_synthetic("val", n=-3),
    lambda: load_synthetic("val", n=3, seed=-1),
    lambda: generate(0, seed=1),
])
def test_bad_arguments_raise_user_error(call):
    with pytest.raises(UserError):
        call()


def test_write_preview(tmp_path):
    out = write_preview(tmp_path / "sub" / "preview.png", n=4, seed=0)
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 2 * 96 and image.shape[2] == 3
    assert not list(out.parent.glob(".*tmp*"))  # no temporary left behind
