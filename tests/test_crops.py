"""Face boxes, the crop matrix, and augmentation that moves landmarks with the image content."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from realtime.geometry.crops import (
    crop_matrix, face_box_from_detection, face_box_from_points, invert_affine, transform_points,
    warp_crop,
)
from realtime.core.errors import UserError
from realtime.geometry.layouts import get_layout
from train.data.augment import AugmentConfig, prepare_face

MTFL = get_layout("mtfl5")
# left eye, right eye, nose, left mouth corner, right mouth corner, about (150, 150)
FACE_POINTS = np.array([[120, 130], [180, 130], [150, 160], [128, 190], [172, 190]], np.float64)
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]], np.float64)


def dot_image(points: np.ndarray, size: int = 300, sigma: float = 3.0) -> np.ndarray:
    """(size, size, 3) uint8 with a Gaussian dot of its own colour at each integer point."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.zeros((size, size, 3))
    for (x, y), colour in zip(points, COLOURS):
        image += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))[..., None] * colour
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def dot_centroid(image_chw: np.ndarray, near: np.ndarray, radius: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Intensity-weighted centroid (x, y) and the summed colour of the dot in a window near ``near``."""
    x0, y0 = np.round(near).astype(int) - radius
    window = image_chw[:, max(y0, 0):y0 + 2 * radius + 1, max(x0, 0):x0 + 2 * radius + 1]
    weight = window.sum(0)
    yy, xx = np.mgrid[0:weight.shape[0], 0:weight.shape[1]]
    centroid = np.array([(xx * weight).sum(), (yy * weight).sum()]) / weight.sum()
    return centroid + [max(x0, 0), max(y0, 0)], window.sum((1, 2))


# --- face boxes -----------------------------------------------------------------------------

def test_eyes_mouth_box_by_hand() -> None:
    # eyes 60 apart; eye midpoint (150, 130) to mouth midpoint (150, 190) is 60.
    # Box of eyes+mouth: x 120..180, y 130..190 -> square side 60 centred (150, 160).
    # Margin 0.95 * 60 = 57 on each side -> side 60 + 114 = 174.
    cx, cy, side = face_box_from_points(FACE_POINTS, np.ones(5, bool), MTFL)
    assert (cx, cy, side) == pytest.approx((150.0, 160.0, 174.0))


def test_eyes_mouth_box_squares_the_smaller_side() -> None:
    points = FACE_POINTS.copy()
    points[3:, 1] += 40  # mouth lower: box x 120..180 (60), y 130..230 (100); eye-mouth 100
    cx, cy, side = face_box_from_points(points, np.ones(5, bool), MTFL)
    assert (cx, cy, side) == pytest.approx((150.0, 180.0, 100 + 2 * 0.95 * 100))


def test_extent_box_by_hand_ignores_invisible() -> None:
    layout = get_layout("aflw19")
    points = np.full((19, 2), 30.0)
    points[0] = (10, 20)
    points[1] = (50, 100)
    points[2] = (900, -900)  # not visible: ignored
    visible = np.ones(19, bool)
    visible[2] = False
    # min/max x 10..50 (40), y 20..100 (80) -> centre (30, 60), side 80 * 1.3 = 104
    assert face_box_from_points(points, visible, layout) == pytest.approx((30.0, 60.0, 104.0))


def test_eyes_mouth_falls_back_to_extent_and_rejects_empty() -> None:
    visible = np.array([True, True, True, True, False])
    lo, hi = FACE_POINTS[:4].min(0), FACE_POINTS[:4].max(0)
    expected = ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, 1.3 * max(hi - lo))
    assert face_box_from_points(FACE_POINTS, visible, MTFL) == pytest.approx(expected)
    with pytest.raises(UserError):
        face_box_from_points(FACE_POINTS, np.zeros(5, bool), MTFL)


def test_detection_box() -> None:
    assert face_box_from_detection((10, 20, 50, 100)) == pytest.approx((30.0, 60.0, 104.0))
    assert face_box_from_detection((0, 0, 10, 10), scale=2.0) == pytest.approx((5.0, 5.0, 20.0))
    with pytest.raises(UserError):
        face_box_from_detection((10, 10, 5, 20))


# --- crop matrix ----------------------------------------------------------------------------

def test_crop_matrix_maps_box_edges_onto_pixel_edges() -> None:
    m = crop_matrix(50.0, 60.0, 40.0, out_size=80)
    corners = np.array([[30, 40], [70, 80], [50, 60]])
    assert transform_points(corners, m) == pytest.approx(np.array([[-0.5, -0.5], [79.5, 79.5], [39.5, 39.5]]))
    mirrored = crop_matrix(50.0, 60.0, 40.0, out_size=80, mirror=True)
    assert transform_points(corners, mirrored) == pytest.approx(np.array([[79.5, -0.5], [-0.5, 79.5], [39.5, 39.5]]))


def test_crop_matrix_jitter_and_inverse() -> None:
    m = crop_matrix(50.0, 60.0, 40.0, out_size=80, rotation_deg=90, scale=2.0, shift=(0.1, -0.25))
    # centre moves by shift * out_size; a point 10 px right of centre goes 40 px "up" (ccw as shown)
    got = transform_points(np.array([[50, 60], [60, 60]]), m)
    assert got == pytest.approx(np.array([[47.5, 19.5], [47.5, -20.5]]))
    back = transform_points(got, invert_affine(m))
    assert back == pytest.approx(np.array([[50, 60], [60, 60]]))


def test_warp_follows_pixel_centre_convention() -> None:
    image = np.zeros((100, 120, 3), np.uint8)
    image[52, 37] = 255
    m = crop_matrix(29.5, 44.5, 40.0, out_size=40)  # scale 1, box edges on pixel edges: x - 10
    crop = warp_crop(image, m, 40, grey=True)
    x, y = transform_points(np.array([37.0, 52.0]), m)
    assert crop.shape == (40, 40, 1)
    assert np.argwhere(crop[:, :, 0] == 255).tolist() == [[round(y), round(x)]]
    assert warp_crop(image, m, 40, grey=False).shape == (40, 40, 3)


# --- augmentation ---------------------------------------------------------------------------

JITTER = AugmentConfig(occlude=False, mirror_prob=0.5)


@pytest.mark.parametrize("seed", range(8))
def test_augmentation_moves_points_with_the_content(seed: int) -> None:
    image = dot_image(FACE_POINTS)
    face = prepare_face(image, FACE_POINTS, np.ones(5, bool), MTFL, grey=False, aug=JITTER,
                        rng=np.random.default_rng(seed))
    assert face.image.shape == (3, 80, 80) and face.image.dtype == np.float32
    assert face.mask.all()
    for k, point in enumerate(face.points):
        centroid, colour = dot_centroid(face.image, point)
        assert np.linalg.norm(centroid - point) < 0.1  # measured ~0.01 px; 0.5 would miss half-pixel slips
        # the dot under point k has the colour of the point it came from (mirror relabels)
        source = MTFL.mirror[k] if _mirrored(face.matrix) else k
        expected = COLOURS[source] / np.linalg.norm(COLOURS[source])
        assert colour / np.linalg.norm(colour) @ expected > 0.99


def _mirrored(matrix: np.ndarray) -> bool:
    return np.linalg.det(matrix[:, :2]) < 0


def test_mirror_keeps_left_eye_on_the_left() -> None:
    aug = dataclasses.replace(AugmentConfig.none(), mirror_prob=1.0)
    face = prepare_face(dot_image(FACE_POINTS), FACE_POINTS, np.ones(5, bool), MTFL, aug=aug,
                        rng=np.random.default_rng(0))
    plain = prepare_face(dot_image(FACE_POINTS), FACE_POINTS, np.ones(5, bool), MTFL)
    assert _mirrored(face.matrix)
    assert face.points[0, 0] < face.points[1, 0] and face.points[3, 0] < face.points[4, 0]
    assert face.points == pytest.approx(plain.points, abs=1e-4)  # the synthetic face is symmetric
    assert np.allclose(face.image[:, :, ::-1], plain.image, atol=1 / 255)


def test_occluder_is_black_sized_and_inside() -> None:
    image = np.full((300, 300, 3), 200, np.uint8)
    aug = dataclasses.replace(AugmentConfig.none(), occlude=True)
    sizes = set()
    for seed in range(20):
        face = prepare_face(image, FACE_POINTS, np.ones(5, bool), MTFL, aug=aug,
                            rng=np.random.default_rng(seed))
        black = np.argwhere(face.image[0] == 0)
        (y0, x0), (y1, x1) = black.min(0), black.max(0)
        height, width = y1 - y0 + 1, x1 - x0 + 1
        assert len(black) == height * width  # one solid rectangle
        assert 20 <= height <= 50 and 20 <= width <= 50
        assert face.image[0].max() == pytest.approx(200 / 255)
        sizes.add((height, width))
    assert len(sizes) > 5


def test_same_seed_same_output_other_seed_differs() -> None:
    image = dot_image(FACE_POINTS)
    aug = AugmentConfig()
    a, b, c = (prepare_face(image, FACE_POINTS, np.ones(5, bool), MTFL, aug=aug,
                            rng=np.random.default_rng(s)) for s in (3, 3, 4))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.points, b.points)
    assert not np.array_equal(a.image, c.image) and not np.array_equal(a.points, c.points)


def test_mask_drops_points_outside_the_crop_and_invisible() -> None:
    points = np.array([[50, 60], [30, 40], [69.9, 79.9], [70, 60], [29, 60]], np.float64)
    visible = np.array([True, True, True, True, False])
    face = prepare_face(np.zeros((100, 100, 3), np.uint8), points, visible, MTFL, box=(50, 60, 40))
    # (30, 40) -> (-0.5, -0.5) inside; (69.9, 79.9) -> (79.3, 79.3) inside; (70, 60) -> x = 79.5 outside
    assert face.mask.tolist() == [True, True, True, False, False]
    assert face.points[1] == pytest.approx([-0.5, -0.5])


def test_jitter_requires_rng() -> None:
    with pytest.raises(ValueError):
        prepare_face(dot_image(FACE_POINTS), FACE_POINTS, np.ones(5, bool), MTFL, aug=AugmentConfig())


# --- dataset wrapper ------------------------------------------------------------------------

def _tiny_set(tmp_path):
    import cv2

    from train.data.datasets.landmark_set import FaceSample, LandmarkSet

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), dot_image(FACE_POINTS)[:, :, ::-1])
    samples = [
        FaceSample(FACE_POINTS.astype(np.float32), np.ones(5, bool), "mtfl5", image_path=str(path),
                   attributes={"pose": 2.0, "gender": 1.0}),
        FaceSample(FACE_POINTS.astype(np.float32) + 5, np.ones(5, bool), "mtfl5",
                   image=dot_image(FACE_POINTS + 5), attributes={"smile": 0.0}),
    ]
    return LandmarkSet("tiny", "mtfl5", samples, attribute_kinds={"pose": "class:5", "gender": "class:2"})


def test_dataset_items_are_reproducible_per_seed_epoch_index(tmp_path) -> None:
    import torch

    from train.data.loader import LandmarkDataset

    data = _tiny_set(tmp_path)
    first = LandmarkDataset(data, aug=AugmentConfig(), seed=7)
    other_worker = LandmarkDataset(data, aug=AugmentConfig(), seed=7, preload=True)
    first.set_epoch(3)
    other_worker.set_epoch(3)
    a, b = first[1], other_worker[1]
    assert a["image"].shape == (1, 80, 80) and a["points"].shape == (5, 2) and a["mask"].dtype == torch.bool
    assert all(np.array_equal(a[k], b[k]) for k in ("image", "points", "mask"))
    first.set_epoch(4)
    assert not np.array_equal(first[1]["points"], a["points"])
    # sample 1 is sample 0 moved 5 px, so only different draws per index make their crops differ
    assert not np.array_equal(first[0]["points"], first[1]["points"])


def test_dataset_attrs_sorted_with_nan(tmp_path) -> None:
    from train.data.loader import LandmarkDataset

    data = LandmarkDataset(_tiny_set(tmp_path))
    assert data.attribute_names == ["gender", "pose", "smile"]
    assert np.array_equal(data[0]["attrs"].numpy(), np.array([1.0, 2.0, np.nan], np.float32), equal_nan=True)
    assert np.array_equal(data[1]["attrs"].numpy(), np.array([np.nan, np.nan, 0.0], np.float32), equal_nan=True)
    plain = data[0]
    assert plain["index"] == 0 and plain["mask"].all()
    assert np.array_equal(plain["points"], data[0]["points"])  # no aug: deterministic crop
