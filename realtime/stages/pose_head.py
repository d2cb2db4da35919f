"""Head pose from the landmark weights' attribute head: the alternative to solvePnP.

torch (through ``realtime.models.attributes``) and numpy. Weights trained with pose attributes carry an
``AttributeNet`` (``realtime.models.weights.load_attribute_head``) that predicts, among others, ``yaw``,
``pitch`` and ``roll`` (kind ``angle``, degrees, ``realtime/stages/pose.py``'s convention) from the K
landmarks in crop pixels. ``PoseHead`` wraps such a head:

    head = pose_head_of(landmarker, required=True)   # UserError when the weights have none
    angles = head(crop_points)                       # (F, K, 2) crop px -> (F, 3) degrees

The angles are those of the face as seen in its crop: the head was trained on axis-aligned
crops, so its roll is measured against the crop's axes; ``pose.crop_pose_to_image`` takes them
to the image's frame. The head is a small MLP (2K inputs): it runs on the CPU, where a frame's
faces cost well under a millisecond, less than a round trip to an accelerator.
"""
from __future__ import annotations

import numpy as np
import torch

from realtime.models.attributes import AttributeNet
from realtime.core.errors import UserError
from realtime.stages.landmarker import Landmarker
from realtime.models.weights import load_attribute_head

POSE_ATTRIBUTES = ("yaw", "pitch", "roll")


class PoseHead:
    """``head(crop_points) -> angles``: (F, K, 2) crop pixels -> (F, 3) yaw, pitch, roll degrees
    in the crop's frame, each in (-180, 180]. Raises UserError at construction when ``head``
    lacks any of yaw/pitch/roll as an ``angle`` attribute or was built for other crops."""

    def __init__(self, head: AttributeNet, num_points: int, input_size: int) -> None:
        config = head.config
        kinds = dict(zip(config.names, config.kinds))
        missing = [name for name in POSE_ATTRIBUTES if kinds.get(name) != "angle"]
        if missing:
            raise UserError(f"the attribute head has no {'/'.join(missing)} angle attribute "
                            f"(it predicts {', '.join(config.names)})")
        if (config.num_points, config.input_size) != (num_points, input_size):
            raise UserError(f"the attribute head takes {config.num_points} points in {config.input_size} px crops, "
                            f"but the landmark model gives {num_points} points in {input_size} px crops")
        self.head = head.to("cpu").eval()
        self.num_points = num_points

    def __call__(self, crop_points: np.ndarray) -> np.ndarray:
        points = np.asarray(crop_points, np.float32).reshape(-1, self.num_points, 2)
        if len(points) == 0:
            return np.zeros((0, 3))
        values = self.head.predict(torch.from_numpy(points))
        return torch.stack([values[name] for name in POSE_ATTRIBUTES], dim=1).double().numpy()


def pose_head_of(landmarker: Landmarker, required: bool) -> PoseHead | None:
    """The pose head stored with ``landmarker``'s weights; None when there is no usable one,
    or, when ``required``, a one-line UserError saying why."""
    head = load_attribute_head(landmarker.weights_path)
    problem = "it carries no attribute head"
    if head is not None:
        try:
            return PoseHead(head, landmarker.num_points, landmarker.input_size)
        except UserError as exc:
            problem = str(exc)
    if required:
        raise UserError(f"pose source 'head' needs weights whose attribute head predicts yaw, pitch and roll; "
                        f"{landmarker.weights_path.name}: {problem}")
    return None
