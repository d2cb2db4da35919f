"""The CUDA precision policies (inference: IEEE fp32, TF32 off; training: TF32 on) and the
pipeline's warm-up before the first frame. The flags are process-wide torch settings, so they can
be checked without a GPU; each test puts them back."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from realtime.core.assets import LANDMARKS_68
from realtime.backends.base import inference_precision
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.processor import FrameProcessor
from train.engine.fit import training_precision


@pytest.fixture()
def flags():
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    yield lambda: (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark = saved


def test_inference_on_cuda_is_ieee_fp32_and_autotuned_and_cpu_is_left_alone(flags):
    before = flags()
    inference_precision(torch.device("cpu"))
    training_precision(torch.device("cpu"))
    assert flags() == before
    inference_precision(torch.device("cuda"))
    assert flags() == (False, False, True)
    training_precision(torch.device("cuda"))
    assert flags() == (True, True, True)


def test_warmup_runs_the_detector_and_every_batch_size_before_the_first_frame_and_keeps_no_state():
    processor = FrameProcessor.from_config(PipelineConfig(Path(LANDMARKS_68)))
    seen = {"detect": 0, "batches": []}
    detect_batch, warm = processor.detector.detect_batch, processor.landmarker.warmup
    processor.detector.detect_batch = lambda images: seen.__setitem__("detect", seen["detect"] + 1) or detect_batch(images)
    processor.landmarker.warmup = lambda n=1: seen["batches"].append(n) or warm(n)
    processor.warmup()
    assert seen == {"detect": 1, "batches": [1, 2, 4, 8]}
    assert processor.tracker.needs_detection() and processor.last_rois == []
