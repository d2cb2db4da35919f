"""The pipeline's two records: ``PipelineConfig`` (what ``FrameProcessor.from_config`` builds) and
``RunStats`` (what a run did: ``run_file``, ``run_streams``, ``LivePipeline``); and ``POSE_SOURCES``,
the head-pose sources a processor can switch between (``realtime.pipeline.processor``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realtime.detect.detector import DEFAULT_DETECTOR
from realtime.stages.smoothing import SmoothingParams
from realtime.stages.tracker import TrackerConfig

POSE_SOURCES = ("pnp", "head")


@dataclass(frozen=True)
class PipelineConfig:
    """``weights`` landmark .safetensors; ``detector`` "short", "full" or "both" (the default:
    ``realtime.detect.detector.DEFAULT_DETECTOR``, docs/detection.md); ``face_model_3d`` (K, 3)
    3D face for head pose, "auto" (the shipped mean face for the weights' layout) or None (no
    pose); ``focal_px`` or ``hfov_deg`` the camera intrinsics; ``pose_source`` "pnp" or "head"
    (``realtime.pipeline.processor``; "head" needs weights with a pose head); ``backend`` the
    landmark model's inference backend (``realtime.backends``: a name or "auto"); ``queue_size`` frames decoded ahead
    in file mode (``run_file``); ``detector_backend`` "opencv", "openvino", "torch" or "auto" (torch on a
    CUDA ``device``, else OpenVINO when installed, the fastest on CPU, else OpenCV:
    ``detector.resolve_detector_backend``);
    ``smoothing`` the One Euro parameters (None: ``SmoothingParams()``'s defaults);
    ``turned_search`` whether detection also tries the frame turned by quarter turns when the
    upright pass is not enough (faces at any roll: ``realtime.stages.turned_search``);
    ``inference_threads`` the landmark runtime's intra-op threads (None: torch's count less one
    core for the pipeline's other threads, ``realtime.backends.base.pipeline_threads``)."""

    weights: Path
    detector: str = DEFAULT_DETECTOR
    device: str = "cpu"
    decoder: str | None = None
    tracker: TrackerConfig = TrackerConfig()
    face_model_3d: np.ndarray | str | None = "auto"
    focal_px: float | None = None
    hfov_deg: float = 60.0
    pose_source: str = "pnp"
    queue_size: int = 8
    backend: str = "eager"
    detector_backend: str = "auto"
    smoothing: SmoothingParams | None = None
    turned_search: bool = True
    inference_threads: int | None = None


@dataclass
class RunStats:
    """What a run did: frame counts, wall time, throughput and mean latency."""

    decoded: int = 0
    processed: int = 0
    dropped: int = 0
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.processed / self.wall_s if self.wall_s > 0 else 0.0

