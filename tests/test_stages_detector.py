"""BlazeFace detector: anchors, letterbox mapping, NMS, a real face (if the shared photo exists),
blank/1x1/grey/RGBA inputs, and a clear error for a missing model file."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from realtime.core.assets import BLAZEFACE_DIR
from realtime.detect.detector import (
    MODELS, BlazeFaceDetector, letterbox, ssd_anchors, weighted_nms,
)
from realtime.core.errors import UserError

cv2.setNumThreads(1)
# The single face of the shared portrait (the face_photo fixture), measured once by eye: a box around the head.
FACE_REGION = (30, 155, 135, 260)  # x0, y0, x1, y1


@pytest.fixture(scope="module")
def detectors():
    return {name: BlazeFaceDetector(name) for name in MODELS}


def test_anchor_counts_and_layout():
    short = ssd_anchors(128, (8, 16, 16, 16), 2)
    full = ssd_anchors(192, (4,), 1)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[1], short[0])  # two anchors per 16x16 cell
    np.testing.assert_allclose(short[512:518], np.repeat([[0.5 / 8, 0.5 / 8]], 6, 0))
    np.testing.assert_allclose(full[-1], [47.5 / 48, 47.5 / 48])


def test_letterbox_maps_pixel_centres():
    image = np.zeros((60, 100, 3), np.uint8)
    image[20:24, 70:74] = 255  # a 4x4 blob centred at (71.5, 21.5)
    canvas, scale, offset = letterbox(image, 200)
    ys, xs = np.nonzero(canvas[:, :, 0] > 100)
    expected = scale * np.array([71.5, 21.5]) + offset
    np.testing.assert_allclose([xs.mean(), ys.mean()], expected, atol=0.5)
    assert canvas[:40].max() == 0 and canvas[-40:].max() == 0  # padded above and below


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float64)
    scores = np.array([0.9, 0.6, 0.7])
    points = np.zeros((3, 6, 2))
    points[1] += 1.0
    out = weighted_nms(boxes, scores, points, 0.3)
    assert len(out) == 2
    np.testing.assert_allclose(out.scores, [0.9, 0.7])
    np.testing.assert_allclose(out.boxes[0], [0.4, 0, 10.4, 10])
    np.testing.assert_allclose(out.keypoints[0], 0.4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_faces_in_blank_tiny_grey_and_rgba_images(detectors, name):
    detector = detectors[name]
    for image in (np.zeros((480, 640, 3), np.uint8), np.zeros((1, 1, 3), np.uint8), np.zeros((1, 1), np.uint8),
                  np.full((240, 320), 128, np.uint8), np.zeros((100, 80, 4), np.uint8)):
        found = detector(image)
        assert len(found) == 0 and found.boxes.shape == (0, 4) and found.keypoints.shape == (0, 6, 2)


def test_missing_model_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        BlazeFaceDetector("short", model_path=tmp_path / "nope.tflite")
    with pytest.raises(UserError, match="unknown"):
        BlazeFaceDetector("medium")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot read"):
        BlazeFaceDetector("short", model_path=garbage)
    with pytest.raises(UserError, match="threshold"):
        BlazeFaceDetector("short", score_threshold=1.5)
    assert (BLAZEFACE_DIR / MODELS["short"].file_name).is_file()


def check_face(found, offset=(0.0, 0.0), region=FACE_REGION):
    assert len(found) == 1, found.scores
    box, kp = found.boxes[0], found.keypoints[0] + np.asarray(offset)
    box = box + np.tile(offset, 2)
    x0, y0, x1, y1 = region
    centre = (box[:2] + box[2:]) / 2
    assert x0 < centre[0] < x1 and y0 < centre[1] < y1
    assert 0.5 < (box[2] - box[0]) / (x1 - x0) < 1.5
    right_eye, left_eye, nose, mouth = kp[:4]
    assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]  # eyes above nose above mouth
    assert (box[:2] < kp[:4]).all() and (kp[:4] < box[2:]).all()


def test_real_face_is_found_by_both_models(detectors, face_photo):
    rgb = cv2.cvtColor(cv2.imread(str(face_photo)), cv2.COLOR_BGR2RGB)
    full = detectors["full"]
    full(rgb)
    start = time.perf_counter()
    check_face(full(rgb))  # ~85 px face in an 800x564 screenshot: a far face for full range
    print(f"full range, 800x564: {(time.perf_counter() - start) * 1e3:.1f} ms")
    crop_at = np.array([10, 140])  # a near face for short range: the photo's face region, cropped
    crop = rgb[crop_at[1]:crop_at[1] + 145, crop_at[0]:crop_at[0] + 145]
    short = detectors["short"]
    for image in (crop, cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.cvtColor(crop, cv2.COLOR_RGB2RGBA)):
        start = time.perf_counter()
        check_face(short(image), offset=crop_at)
        print(f"short range, {image.shape}: {(time.perf_counter() - start) * 1e3:.1f} ms")
