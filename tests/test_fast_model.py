"""The bundled fast model (``--weights fast``): named like a file everywhere weights are taken,
a narrower student of the bundled model that finds the same points on the example photo."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime import FaceLandmarker
from realtime.api import pipeline_config
from realtime.core.assets import BUNDLED_WEIGHTS, DEMO_PHOTO, LANDMARKS_68, LANDMARKS_68_FAST, weights_path
from realtime.core.errors import InputNotFoundError
from realtime.models.model import multiply_adds
from realtime.models.weights import load_landmark_model, weights_info


def test_names_resolve_to_the_bundled_files_and_anything_else_is_a_path():
    assert weights_path("fast") == LANDMARKS_68_FAST and weights_path("accurate") == LANDMARKS_68
    assert weights_path("./fast") == Path("./fast")
    assert weights_path(Path("fast")) == Path("fast")  # a Path is always a file
    assert all(path.is_file() for path in BUNDLED_WEIGHTS.values())
    assert pipeline_config("fast").weights == LANDMARKS_68_FAST
    with pytest.raises(InputNotFoundError, match="weights not found: fast.safetensors"):
        pipeline_config("fast.safetensors")


def test_the_command_lines_take_the_name():
    from realtime.video import parse_args as video_args
    from realtime.webcam import parse_args as webcam_args
    assert video_args(["in.mp4", "-o", "o.mp4", "--landmarks", "o.jsonl", "--weights", "fast"]).weights == LANDMARKS_68_FAST
    assert webcam_args(["--weights", "fast"]).weights == LANDMARKS_68_FAST
    assert webcam_args([]).weights == LANDMARKS_68


def test_the_fast_model_is_the_narrower_student_with_its_own_calibration():
    fast, accurate = load_landmark_model(LANDMARKS_68_FAST), load_landmark_model(LANDMARKS_68)
    assert fast.config.num_points == accurate.config.num_points == 68
    assert fast.config.trunk == (16, 32, 32, 32, 32) and accurate.config.trunk == (32, 32, 32, 32, 32)
    # the finest level's 16 channels: 47 M multiply-adds a face against 81 M
    assert multiply_adds(fast) < 0.6 * multiply_adds(accurate)
    info = weights_info(LANDMARKS_68_FAST)
    assert 0 < info["track_min_confidence"] < 1 and "non-commercial" in info["licence"]


def test_the_fast_model_finds_the_accurate_models_points_on_the_photo():
    accurate = FaceLandmarker(backend="eager")(DEMO_PHOTO)
    fast = FaceLandmarker(weights="fast", backend="eager")(DEMO_PHOTO)
    assert len(accurate) == len(fast) == 1
    gap = np.linalg.norm(fast[0].points - accurate[0].points, axis=1)
    side = accurate[0].box_xyxy[2] - accurate[0].box_xyxy[0]
    # measured: 0.64 px mean, 2.2 px at most, on a face box of 123 px
    assert gap.mean() < 0.015 * side and gap.max() < 0.04 * side
    assert abs(fast[0].pose.yaw_deg - accurate[0].pose.yaw_deg) < 3.0
