"""A clip's truth and how close a run comes to it: NME per frame and still-segment jitter.

``ClipTruth`` reads a clip's ``*_truth.json`` (per-frame points, the still segment, the layout);
``track_clip`` runs a ``FrameProcessor`` over the clip and keeps, per frame, the face nearest the
truth; ``score`` turns that into NME (outer-eye-corner normaliser) and still-segment jitter;
``score_clip`` does both for a weights file, raw and smoothed. The command line is
``realtime.clipscore``; the bench, the MediaPipe comparison and the 68-point recipe use these too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.core.errors import UserError
from realtime.detect.detector import DEFAULT_DETECTOR
from realtime.io.capture import VideoFileSource
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.processor import FrameProcessor
from realtime.stages.landmarker import Landmarker
from realtime.stages.smoothing import SmoothingParams

OUTER_EYE_CORNERS = (36, 45)  # 0-based iBUG indices of points 37 and 46


@dataclass(frozen=True)
class ClipTruth:
    """``points`` (N, 68, 2) frame pixels per frame index; ``still`` the half-open frame range."""

    points: np.ndarray
    still: tuple[int, int]
    layout: str

    @staticmethod
    def load(path: str | Path) -> "ClipTruth":
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            frames = sorted(doc["frames"], key=lambda f: f["index"])
            points = np.asarray([f["points"] for f in frames], np.float64)
            still = tuple(int(v) for v in doc["still_frames"])
            layout = str(doc["layout"])
        except FileNotFoundError:
            raise UserError(f"clip truth not found: {path}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{path}: not a clip truth file ({type(exc).__name__}: {exc})") from None
        if [f["index"] for f in frames] != list(range(len(frames))) or points.ndim != 3:
            raise UserError(f"{path}: frames must be indexed 0..N-1, each with K (x, y) points")
        return ClipTruth(points, (still[0], still[1]), layout)


def nearest_face(faces: list[np.ndarray], truth: np.ndarray) -> np.ndarray | None:
    """The (K, 2) face among ``faces`` whose centroid is nearest the truth's, or None."""
    if not faces:
        return None
    centre = truth.mean(0)
    return min(faces, key=lambda p: float(np.linalg.norm(p.mean(0) - centre)))


def score(predicted: list[np.ndarray | None], truth: ClipTruth) -> dict[str, float]:
    """``predicted[i]`` (K, 2) points of frame i (None: no face) -> found, nme %, jitter %."""
    if len(predicted) != len(truth.points):
        raise UserError(f"the clip gave {len(predicted)} frames but its truth has {len(truth.points)}")
    k = truth.points.shape[1]
    if any(p is not None and p.shape != (k, 2) for p in predicted):
        raise UserError(f"the predictions do not have the truth's {k} points ({truth.layout}): score a {truth.layout} model")
    a, b = OUTER_EYE_CORNERS
    iod = np.linalg.norm(truth.points[:, a] - truth.points[:, b], axis=1)
    found = [i for i, p in enumerate(predicted) if p is not None]
    errors = [np.linalg.norm(predicted[i] - truth.points[i], axis=1).mean() / iod[i] for i in found]
    lo, hi = truth.still
    still = [i for i in found if lo <= i < hi]
    if len(still) >= 2:
        segment = np.stack([predicted[i] for i in still])
        wobble = np.linalg.norm(segment - segment.mean(0), axis=2)
        jitter = float(np.sqrt(np.mean(wobble ** 2)) / iod[still].mean())
    else:
        jitter = float("nan")
    return {"frames": len(predicted), "found": len(found) / len(predicted),
            "nme_pct": 100 * float(np.mean(errors)) if errors else float("nan"),
            "nme_median_pct": 100 * float(np.median(errors)) if errors else float("nan"),
            "still_frames": len(still), "jitter_pct": 100 * jitter}


def track_clip(processor, clip: str | Path, truth: ClipTruth, max_frames: int | None = None) -> list[np.ndarray | None]:
    """``processor``'s (a ``FrameProcessor``) points per frame of ``clip``, the face nearest the
    truth's, in frame order (the first ``max_frames`` frames when given)."""

    out: list[np.ndarray | None] = []
    with VideoFileSource(clip) as source:
        for frame in source:
            if max_frames is not None and len(out) >= max_frames:
                source.stop()
                break
            packet = processor(frame)
            i = min(len(out), len(truth.points) - 1)
            out.append(nearest_face([f.points for f in packet.faces], truth.points[i]))
    return out


def score_clip(weights: str | Path, clip: str | Path, truth: ClipTruth, detector: str | None = None) -> dict[str, dict]:
    """``score`` of the whole pipeline on ``clip`` with smoothing off ("raw") and on ("smoothed")."""

    landmarker = Landmarker(weights)
    if landmarker.num_points != truth.points.shape[1]:
        raise UserError(f"{weights} gives {landmarker.num_points} points but the clip's truth has "
                        f"{truth.points.shape[1]} ({truth.layout}): score a {truth.layout} model")
    configs = {name: PipelineConfig(Path(weights), detector or DEFAULT_DETECTOR, face_model_3d=None,
                                    smoothing=SmoothingParams(enabled=smoothing))
               for name, smoothing in (("raw", False), ("smoothed", True))}
    return {name: score(track_clip(FrameProcessor.from_config(config, landmarker), clip, truth), truth)
            for name, config in configs.items()}
