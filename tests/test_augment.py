"""Training augmentation: perspective keeps points on their features, photometry never moves them,
old seeds give the old samples, and the heavy set is wired through FitConfig and the CLI."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from realtime.core.errors import UserError
from realtime.geometry.layouts import get_layout
from train.data.augment import (
    AugmentConfig, Photometric, apply_homography, apply_photometric, draw_jitter, inside_crop,
    prepare_face,
)
from train.engine.fit_config import FitConfig

MTFL = get_layout("mtfl5")
# left eye, right eye, nose, left mouth corner, right mouth corner, about (150, 160); face box side 174
FACE_POINTS = np.array([[120, 130], [180, 130], [150, 160], [128, 190], [172, 190]], np.float64)
# moves the face to the middle of a 600 x 600 image, so jittered crops never reach its border
MARGIN = 150


def textured_image(size: int = 300) -> np.ndarray:
    """(size, size, 3) uint8 RGB diagonal stripes, a different phase per channel."""
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([(xx * 7 + yy * 13 + c * 50) % 256 for c in range(3)], axis=-1).astype(np.uint8)


def dots_image(points: np.ndarray, size: int, sigma: float = 2.0) -> np.ndarray:
    """(size, size, 3) uint8 black with a white Gaussian dot of ``sigma`` pixels at each point."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.zeros((size, size))
    for x, y in points:
        image += 255.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.repeat(np.clip(np.round(image), 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def _face(image: np.ndarray, aug: AugmentConfig | None, seed: int = 0, grey: bool = True,
          points: np.ndarray = FACE_POINTS):
    return prepare_face(image, points, np.ones(len(points), bool), MTFL, grey=grey, aug=aug,
                        rng=np.random.default_rng(seed))


# --- the 2016 draws are unchanged ------------------------------------------------------------

# Computed with the augment.py of commit 3d29d9a (before perspective and photometry existed):
# (grey, seed, sum of the crop's 0-255 values, their sum weighted by (flat index % 9973),
#  point 0 as float32, the next rng.random() after the sample).
REFERENCE_2016 = [
    (True, 0, 719893, 2107898968, (31.992637634277344, 12.483060836791992), 0.7294965609839984),
    (True, 1, 528968, 1753121213, (28.22015380859375, 27.44087791442871), 0.4091991363691613),
    (True, 2, 690629, 2076794200, (24.088659286499023, 30.507843017578125), 0.05514662733306819),
    (False, 0, 2153107, 10284863704, (31.992637634277344, 12.483060836791992), 0.7294965609839984),
    (False, 1, 1587791, 7541359610, (25.926904678344727, 15.319289207458496), 0.4091991363691613),
    (False, 2, 2069530, 10118317352, (24.088659286499023, 30.507843017578125), 0.05514662733306819),
]


@pytest.mark.parametrize("grey, seed, total, weighted, point, next_draw", REFERENCE_2016)
def test_default_config_gives_the_samples_of_before(grey, seed, total, weighted, point, next_draw) -> None:
    # grey crops use the 2016 defaults, RGB crops add the mirror (seed 1 flips)
    aug = AugmentConfig() if grey else AugmentConfig(mirror_prob=0.5)
    rng = np.random.default_rng(seed)
    face = prepare_face(textured_image(), FACE_POINTS, np.ones(5, bool), MTFL, grey=grey, aug=aug, rng=rng)
    pixels = np.round(face.image * 255).astype(np.int64)
    assert face.image.dtype == np.float32 and np.array_equal(face.image * 255, pixels)
    # the draws and the geometry are exact; OpenCV's warp may round a few pixels by one level
    # differently from release to release (5.1.0 gives 690628 where 5.0.0 gave 690629)
    assert abs(int(pixels.sum()) - total) <= 1e-5 * total
    assert abs(int((pixels.ravel() * (np.arange(pixels.size) % 9973)).sum()) - weighted) <= 1e-5 * weighted
    assert tuple(float(v) for v in face.points[0]) == point
    assert float(rng.random()) == next_draw  # no extra draws
    assert np.array_equal(face.homography, np.vstack([face.matrix, [0.0, 0.0, 1.0]]))


def test_features_that_are_off_draw_nothing() -> None:
    # every new field changed, but each feature still off: the same jitter, the same rng state
    off = AugmentConfig(occlude=False, occluder_fill="random", blur_sigma=3.0, jpeg_quality=(50, 60))
    a_rng, b_rng = np.random.default_rng(11), np.random.default_rng(11)
    assert draw_jitter(off, a_rng, 80) == draw_jitter(AugmentConfig(occlude=False), b_rng, 80)
    assert a_rng.random() == b_rng.random()


# --- identity and geometry -------------------------------------------------------------------

def test_identity_config_gives_the_plain_crop() -> None:
    image = textured_image()
    plain = _face(image, None, grey=False)
    for aug in (AugmentConfig.none(), dataclasses.replace(AugmentConfig.none(), occluder_fill="random",
                                                          blur_sigma=2.0, jpeg_quality=(10, 20))):
        assert aug.is_identity
        face = prepare_face(image, FACE_POINTS, np.ones(5, bool), MTFL, grey=False, aug=aug)  # no rng needed
        assert np.array_equal(face.image, plain.image) and np.array_equal(face.points, plain.points)
    assert not AugmentConfig.heavy().is_identity
    assert not dataclasses.replace(AugmentConfig.none(), noise=0.01).is_identity


@pytest.mark.parametrize("seed", range(12))
def test_points_stay_on_their_dots_under_perspective_and_rotation(seed: int) -> None:
    points = FACE_POINTS + MARGIN
    aug = AugmentConfig(occlude=False, perspective=0.15, rotation_deg=40, scale=0.15)
    face = _face(dots_image(points, 600), aug, seed, points=points)
    crop = face.image[0]
    for point in face.points:
        x0, y0 = np.round(point).astype(int) - 4
        window = crop[y0:y0 + 9, x0:x0 + 9]
        dy, dx = np.unravel_index(window.argmax(), window.shape)
        assert window.max() > 0.5  # the dot is there
        assert np.hypot(x0 + dx - point[0], y0 + dy - point[1]) <= 1.0  # measured <= 0.71
    # the perspective really moved the points away from where the affine part alone puts them
    assert np.abs(apply_homography(points, np.vstack([face.matrix, [0, 0, 1]])) - face.points).max() > 1.5


def test_perspective_warps_the_source_so_no_black_borders() -> None:
    image = np.full((600, 600, 3), 200, np.uint8)
    aug = AugmentConfig(occlude=False, perspective=0.15)
    for seed in range(10):
        face = _face(image, aug, seed, points=FACE_POINTS + MARGIN)
        assert not np.array_equal(face.homography[2], [0.0, 0.0, 1.0])
        assert face.image.min() == pytest.approx(200 / 255)


def test_mask_uses_the_points_after_perspective() -> None:
    # points just inside the box's corners: the perspective pushes some out of the crop and pulls
    # others in, so a mask taken from the affine part alone would differ
    cx, cy, half = 150.0 + MARGIN, 160.0 + MARGIN, 86.0
    corners = np.array([[cx - half, cy - half], [cx + half, cy - half], [cx, cy],
                        [cx - half, cy + half], [cx + half, cy + half]])
    image = np.zeros((600, 600, 3), np.uint8)
    aug = dataclasses.replace(AugmentConfig.none(), perspective=0.1)
    differs = 0
    for seed in range(20):
        face = prepare_face(image, corners, np.ones(5, bool), MTFL, aug=aug, rng=np.random.default_rng(seed),
                            box=(cx, cy, 2 * half))
        assert np.array_equal(face.mask, inside_crop(face.points, 80))
        affine = apply_homography(corners, np.vstack([face.matrix, [0, 0, 1]]))
        differs += not np.array_equal(face.mask, inside_crop(affine, 80))
    assert differs > 0


# --- photometry ------------------------------------------------------------------------------

PHOTOMETRIC = {
    "colour": dict(colour=0.3),
    "brightness": dict(brightness=0.15),
    "contrast": dict(contrast=0.3),
    "gamma": dict(gamma=0.4),
    "grey": dict(grey_prob=1.0),
    "blur": dict(blur_prob=1.0, blur_sigma=1.5),
    "noise": dict(noise=0.04),
    "jpeg": dict(jpeg_prob=1.0, jpeg_quality=(30, 40)),
    "occluder_random_fill": dict(occlude=True, occluder_fill="random"),
}


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_photometric_ops_change_pixels_keep_range_and_never_move_points(name: str) -> None:
    image = textured_image()
    aug = dataclasses.replace(AugmentConfig.none(), **PHOTOMETRIC[name])
    plain = _face(image, None, grey=False)
    for seed in range(4):
        face = _face(image, aug, seed, grey=False)
        assert face.image.dtype == np.float32 and face.image.shape == (3, 80, 80)
        assert 0.0 <= face.image.min() and face.image.max() <= 1.0
        assert not np.array_equal(face.image, plain.image)
        assert np.array_equal(face.points, plain.points) and np.array_equal(face.mask, plain.mask)
        assert np.array_equal(face.homography, plain.homography)


def test_colour_and_grey_do_nothing_to_grey_crops() -> None:
    image = textured_image()
    aug = dataclasses.replace(AugmentConfig.none(), colour=0.3, grey_prob=1.0)
    assert np.array_equal(_face(image, aug, 3).image, _face(image, None).image)


def test_photometric_ops_by_hand() -> None:
    flat = np.full((8, 8, 3), 100, np.uint8)
    halves = np.concatenate([np.full((8, 4, 1), 50, np.uint8), np.full((8, 4, 1), 150, np.uint8)], axis=1)
    assert np.array_equal(apply_photometric(flat, Photometric(), None), flat.astype(np.float32))
    assert np.allclose(apply_photometric(flat, Photometric(brightness=20.0), None), 120.0)
    assert np.allclose(apply_photometric(flat, Photometric(brightness=300.0), None), 255.0)  # clipped
    assert np.allclose(np.unique(apply_photometric(halves, Photometric(contrast=0.5), None)), [75.0, 125.0])
    assert np.allclose(apply_photometric(flat, Photometric(gamma=2.0), None), 255.0 * (100 / 255) ** 2, atol=1e-3)
    assert np.allclose(apply_photometric(flat, Photometric(gains=(1.0, 0.5, 1.2)), None)[0, 0], [100, 50, 120])
    rgb = textured_image(16)
    grey = apply_photometric(rgb, Photometric(grey=True), None)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 0], grey[..., 2])
    blurred = apply_photometric(rgb, Photometric(blur_sigma=1.5), None)
    assert blurred.std() < 0.8 * rgb.std() and blurred.mean() == pytest.approx(rgb.mean(), rel=0.05)
    noisy = apply_photometric(np.full((64, 64, 1), 128, np.uint8), Photometric(noise_std=10.0),
                              np.random.default_rng(0))
    assert noisy.std() == pytest.approx(10.0, rel=0.1)
    jpeg = apply_photometric(rgb, Photometric(jpeg_quality=30), None)
    assert jpeg.shape == rgb.shape and 0 < np.abs(jpeg - rgb).mean() < 40


def test_random_occluder_fill_is_grey_or_noise() -> None:
    image = np.full((300, 300, 3), 200, np.uint8)
    aug = dataclasses.replace(AugmentConfig.none(), occlude=True, occluder_fill="random")
    kinds = set()
    for seed in range(12):
        jitter = draw_jitter(aug, np.random.default_rng(seed), 80)
        x0, y0, width, height = jitter.occluder
        patch = _face(image, aug, seed).image[0, y0:y0 + height, x0:x0 + width] * 255
        if jitter.occluder_fill is None:
            kinds.add("noise")
            assert patch.std() > 50
        else:
            kinds.add("grey")
            assert np.all(patch == round(jitter.occluder_fill))
    assert kinds == {"grey", "noise"}


# --- determinism and the heavy set -----------------------------------------------------------

@pytest.mark.parametrize("grey", [True, False])
def test_heavy_is_deterministic_per_seed(grey: bool) -> None:
    image = textured_image(600)
    points = FACE_POINTS + MARGIN
    a, b, c = (_face(image, AugmentConfig.heavy(), s, grey, points) for s in (5, 5, 6))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.points, b.points)
    assert np.array_equal(a.homography, b.homography)
    assert not np.array_equal(a.image, c.image) and not np.array_equal(a.points, c.points)
    assert a.image.dtype == np.float32 and a.image.shape == ((1 if grey else 3), 80, 80)
    assert 0.0 <= a.image.min() and a.image.max() <= 1.0


def test_bad_augment_configs_are_refused() -> None:
    for bad in (dict(occluder_fill="grey"), dict(scale=1.0), dict(noise=-0.1), dict(blur_prob=1.5),
                dict(blur_sigma=0.1), dict(jpeg_quality=(90, 30))):
        with pytest.raises(ValueError):
            AugmentConfig(**bad)


def test_fit_config_builds_both_recipes() -> None:
    base = dict(preset="rcn_mtfl", data="synth:train", out="runs/x")
    heavy = FitConfig(**base, augment="heavy", rotation=20, mirror=0.5, occluder=False)
    heavy.validate()
    assert heavy.augment_config() == AugmentConfig.heavy(rotation_deg=20, mirror_prob=0.5, occlude=False)
    assert FitConfig(**base).augment_config() == AugmentConfig()  # the 2016 default, as before
    # config.json of runs from before the flag load as the 2016 recipe
    old = FitConfig(**base).to_dict()
    del old["augment"]
    assert FitConfig.from_dict(old).augment == "2016"
    with pytest.raises(UserError, match="augment"):
        FitConfig(**base, augment="light").validate()


def test_fit_cli_parses_augment_heavy(monkeypatch) -> None:
    import train.__main__
    from train.__main__ import main

    seen = []
    monkeypatch.setattr(train.__main__, "fit", lambda cfg, **_: seen.append(cfg) or {
        "step": 0, "seconds": 0.0, "best_val_nme": 0.0, "best_step": 0})
    common = ["fit", "--preset", "rcn_mtfl", "--data", "synth:train", "--out", "runs/x"]
    assert main([*common, "--augment", "heavy", "--mirror", "0.5", "--rotation", "30"]) == 0
    assert seen[-1].augment == "heavy"
    assert seen[-1].augment_config() == AugmentConfig.heavy(rotation_deg=30, mirror_prob=0.5)
    assert main(common) == 0 and seen[-1].augment == "2016"
    assert main([*common, "--augment", "light"]) == 2


def test_attribute_pool_view_has_no_rotation_mirror_or_perspective() -> None:
    from train.data.datasets.landmark_set import FaceSample, LandmarkSet
    from train.data.batches import collate as _collate
    from train.data.loader import LandmarkDataset
    from train.objectives.regimes import Pools, choose_subsets

    image = textured_image()
    samples = [FaceSample(FACE_POINTS.astype(np.float32), np.ones(5, bool), "mtfl5", image=image,
                          attributes={"pose": float(i % 5)}) for i in range(8)]
    data = LandmarkSet("tiny", "mtfl5", samples, attribute_kinds={"pose": "class:5"})
    heavy = AugmentConfig.heavy()
    ds = LandmarkDataset(data, aug=heavy, seed=1)
    pools = Pools(ds, choose_subsets(len(ds), 0.5, 1.0, seed=0), ("landmark", "attribute"), 4, 9, _collate)
    view = pools.pools["attribute"][0].aug
    assert (view.rotation_deg, view.mirror_prob, view.perspective) == (0, 0.0, 0.0)
    assert view == dataclasses.replace(heavy, rotation_deg=0, mirror_prob=0.0, perspective=0.0)
    assert pools.pools["landmark"][0].aug == heavy and ds.aug == heavy
    batch = pools.draw(0)["attribute"]
    assert batch["image"].shape == (4, 1, 80, 80) and 0 <= batch["image"].min() and batch["image"].max() <= 1
