"""Landmarker stage alone: one batch per frame, crop -> image mapping, any keypoint count."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from realtime.core.assets import SYNTH_5 as WEIGHTS
from realtime.geometry.crops import crop_matrix, transform_points
from realtime.core.errors import UserError
from realtime.stages.landmarker import Landmarker, crops_to_image
from realtime.models.model import ModelConfig, build_model
from realtime.stages.tracker import FaceRoi
from realtime.models.weights import save_weights

torch.set_num_threads(1)
cv2.setNumThreads(1)


@pytest.fixture(scope="module")
def landmarker() -> Landmarker:
    return Landmarker(WEIGHTS)


def test_crop_points_map_back_through_a_known_affine():
    matrix = crop_matrix(100.0, 80.0, 50.0, out_size=80, rotation_deg=30.0)
    image_points = np.array([[90.0, 70.0], [110.0, 72.0], [101.0, 95.0]])
    crop_points = transform_points(image_points, matrix)
    back = crops_to_image(crop_points[None], matrix[None])
    np.testing.assert_allclose(back[0], image_points, atol=1e-9)


def test_points_come_back_in_image_pixels(landmarker, monkeypatch):
    """The network's crop-pixel answer is mapped through the inverse of each face's own matrix."""
    crop_answer = np.array([[10.0, 20.0], [60.0, 20.0], [35.0, 40.0], [20.0, 60.0], [50.0, 60.0]])
    seen = []

    def fake_infer(crops):
        seen.append(crops.shape)
        return np.repeat(crop_answer[None], len(crops), 0), np.full((len(crops), 5), 0.5)

    monkeypatch.setattr(landmarker, "infer_crops", fake_infer)
    m1 = crop_matrix(100.0, 80.0, 50.0, 80, rotation_deg=15.0)
    m2 = crop_matrix(300.0, 200.0, 120.0, 80)
    rois = [FaceRoi(0, m1, (100.0, 80.0, 50.0), 15.0, "detection"), m2]  # a FaceRoi or a bare matrix
    points, scores = landmarker(np.zeros((240, 400, 3), np.uint8), rois)
    assert seen == [(2, 80, 80, 1)]  # both faces, one grey batch
    assert points.shape == (2, 5, 2) and scores.shape == (2, 5)
    for matrix, p in zip((m1, m2), points):
        np.testing.assert_allclose(transform_points(p, matrix), crop_answer, atol=1e-9)


def test_one_network_call_per_frame_and_per_file_batch(landmarker):
    calls = []
    handle = landmarker.model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(2)]
        rois = [[crop_matrix(60.0, 60.0, 50.0, 80), crop_matrix(100.0, 50.0, 40.0, 80, rotation_deg=-10.0)],
                [crop_matrix(80.0, 60.0, 70.0, 80)]]
        single = [landmarker(image, r) for image, r in zip(images, rois)]
        assert calls == [2, 1]
        batched = landmarker.batch(list(zip(images, rois)))
        assert calls == [2, 1, 3]  # the file-mode call: three faces of two frames, one batch
    finally:
        handle.remove()
    for (p1, s1), (p2, s2) in zip(single, batched):
        np.testing.assert_allclose(p1, p2, atol=1e-3)
        np.testing.assert_allclose(s1, s2, atol=1e-5)
        assert np.isfinite(p1).all() and ((s1 > 0) & (s1 <= 1)).all()


def test_no_faces_gives_empty_arrays(landmarker):
    points, scores = landmarker(np.zeros((1, 1, 3), np.uint8), [])
    assert points.shape == (0, 5, 2) and scores.shape == (0, 5)
    assert landmarker.batch([]) == []


def test_any_keypoint_count_and_rgb_input(tmp_path):
    config = ModelConfig(arch="rcn", num_points=7, trunk=(8, 8), branch=(((8, 3),), ((8, 3),)),
                         in_channels=3, input_size=32, layout=None)
    save_weights(build_model(config), tmp_path / "k7.safetensors")
    lm = Landmarker(tmp_path / "k7.safetensors")
    assert lm.num_points == 7 and not lm.grey and lm.layout is None
    points, scores = lm(np.zeros((64, 64, 3), np.uint8), [crop_matrix(32.0, 32.0, 40.0, 32)])
    assert points.shape == (1, 7, 2) and scores.shape == (1, 7)


def test_device_names_are_checked_once_for_every_torch_user():
    import torch

    from realtime.models.weights import torch_device

    with pytest.raises(UserError, match="unknown torch device"):
        torch_device("gpu0")
    assert torch_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA device"):
            Landmarker(WEIGHTS, device="cuda")
        assert torch_device("cuda", need_available=False).type == "cuda"  # the registry reports, not raises


def test_a_start_reads_the_weights_file_once(tmp_path):
    """The landmarker, its re-detect threshold and its pose head come from one read of the file
    (``realtime.models.weights.read_weights``); a rewritten file is read again."""
    import shutil

    from realtime.core.assets import LANDMARKS_68
    from realtime.stages.pose_head import pose_head_of
    from realtime.models.weights import _read_weights, save_weights, weights_info

    path = tmp_path / "w.safetensors"
    shutil.copy(LANDMARKS_68, path)
    _read_weights.cache_clear()
    landmarker = Landmarker(path)
    pose_head_of(landmarker, required=False)
    weights_info(path)
    assert _read_weights.cache_info().misses == 1
    save_weights(landmarker.model, path, {"note": "rewritten"})
    assert weights_info(path) == {"note": "rewritten"} and _read_weights.cache_info().misses == 2
