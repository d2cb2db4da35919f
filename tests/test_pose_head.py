"""Head pose from the weights' attribute head (``--pose-source head``): the crop's turn composed
back into roll, agreement in sign with solvePnP on a rotated face, the one-line errors when the
weights have no head, the CLI flag, and the live switch (tuner and panel).

The head here is built by hand, not trained: its roll is the angle of the eye line in the crop
points it is given (yaw and pitch 0), so the roll the pipeline reports must be the eye line of
the reported points in the image, whatever turn the tracker gave the crop."""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from realtime.core.assets import SYNTH_5
from realtime.models.attributes import AttributeConfig, AttributeNet
from realtime.io.capture import CapturedFrame
from realtime.geometry.crops import crop_matrix
from realtime.core.errors import UserError
from realtime.stages.landmarker import Landmarker
from realtime.geometry.layouts import Layout, get_layout
from realtime.pipeline.live import LiveTuner
from realtime.core.packet import FaceResult, HeadPose
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.processor import FrameProcessor
from realtime.stages.pose import angles_to_rotation, crop_pose_to_image, rotation_to_angles
from realtime.stages.pose_head import PoseHead, pose_head_of
from realtime.stages.tracker import eye_line_deg
from realtime.models.weights import load_model, save_weights

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists
torch.set_num_threads(1)
cv2.setNumThreads(1)
WEIGHTS = SYNTH_5  # 5 points, no attribute head
LAYOUT = get_layout("mtfl5")


def eye_line_head(layout: Layout, input_size: int, names: tuple[str, ...] = ("yaw", "pitch", "roll")) -> AttributeNet:
    """An AttributeNet whose roll is the eye line's angle in its input points (degrees, y down:
    positive when the image-right eye is lower) and whose other angles are 0.

    Hidden units ReLU(+-dx), ReLU(+-dy) of the eye vector (right minus left eye centre, centred
    and scaled inputs); roll's (cos, sin) outputs are (dx, dy), so atan2 gives the eye line.
    """
    k = layout.num_points
    head = AttributeNet(AttributeConfig(k, input_size, names, ("angle",) * len(names), hidden=(4,), dropout=0.0))
    eye = torch.zeros(2, 2 * k)  # rows: dx, dy as linear maps of the flat (x0, y0, x1, y1, ...)
    for group, sign in zip(layout.eye_centres, (-1.0, 1.0)):
        for i in group:
            eye[:, 2 * i:2 * i + 2] += sign * torch.eye(2) / len(group)
    roll = names.index("roll") if "roll" in names else None
    with torch.no_grad():
        first, last = head.mlp[0], head.mlp[-1]
        first.weight.copy_(torch.stack([eye[0], -eye[0], eye[1], -eye[1]]))
        first.bias.zero_()
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.0, 0.0] * len(names)))  # (cos, sin) = (1, 0): 0 degrees
        if roll is not None:
            last.bias[2 * roll] = 0.0
            last.weight[2 * roll] = torch.tensor([1.0, -1.0, 0.0, 0.0])
            last.weight[2 * roll + 1] = torch.tensor([0.0, 0.0, 1.0, -1.0])
    return head


@pytest.fixture(scope="module")
def head_weights(tmp_path_factory) -> Path:
    """The placeholder landmark model saved with the eye-line head."""
    path = tmp_path_factory.mktemp("weights") / "with_head.safetensors"
    save_weights(load_model(WEIGHTS), path, {"note": "test"}, attribute_head=eye_line_head(LAYOUT, 80))
    return path


@pytest.fixture(scope="module")
def demo_frame(clip_frames) -> np.ndarray:
    """The demo clip's first frame, (H, W, 3) uint8 RGB: one frontal face."""
    return clip_frames(0)[0]


def turned(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` turned counter-clockwise as displayed by ``degrees`` about its centre."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def first_face(processor: FrameProcessor, image: np.ndarray, frames: int = 1) -> FaceResult:
    for i in range(frames):
        packet = processor(CapturedFrame(i, i / 30, image))
    assert len(packet.faces) == 1 and packet.faces[0].pose is not None
    return packet.faces[0]


def test_crop_pose_to_image_undoes_crop_matrix_turn():
    """A pose seen in a crop of an orthographic image: the crop's linear map (from
    ``crop_matrix`` itself) turns the image's rotation; composing it back recovers it."""
    truth = angles_to_rotation(25.0, -10.0, 12.0)
    for turn_deg in (30.0, -20.0):
        linear = crop_matrix(0.0, 0.0, 80.0, 80, rotation_deg=turn_deg)[:, :2]  # scale 1
        in_crop = np.eye(3)
        in_crop[:2, :2] = linear
        seen = rotation_to_angles(in_crop @ truth)
        np.testing.assert_allclose(crop_pose_to_image(seen, turn_deg), truth, atol=1e-12)
    frontal = rotation_to_angles(crop_pose_to_image(HeadPose(0.0, 0.0, 5.0), 10.0))
    assert frontal.roll_deg == pytest.approx(15.0) and abs(frontal.yaw_deg) < 1e-9


def test_pose_head_predicts_degrees_in_crop_order_and_checks_its_head():
    head = PoseHead(eye_line_head(LAYOUT, 80), 5, 80)
    points = np.array([[30.0, 30.0], [50.0, 30.0 + 20.0 * np.tan(np.radians(10.0))], [40, 42], [32, 55], [48, 55]])
    angles = head(np.stack([points, points[:, ::-1]]))
    assert angles.shape == (2, 3)
    np.testing.assert_allclose(angles[0], [0.0, 0.0, 10.0], atol=1e-4)
    assert head(np.zeros((0, 5, 2))).shape == (0, 3)
    with pytest.raises(UserError, match="no roll angle"):
        PoseHead(eye_line_head(LAYOUT, 80, ("yaw", "pitch")), 5, 80)
    with pytest.raises(UserError, match="68 points"):
        PoseHead(eye_line_head(LAYOUT, 80), 68, 80)


def test_head_roll_is_in_the_image_frame_and_turns_with_the_face_as_pnp(head_weights, demo_frame):
    """On the demo face turned by -theta and +theta: the head's roll is the eye line of the
    reported points in the image (so the crop's turn was added back, with the right sign), and
    it changes by 2 theta in the same direction as solvePnP's roll."""
    theta = 12.0
    rolls = {}
    for source in ("pnp", "head"):
        for sign in (-1.0, 1.0):
            processor = FrameProcessor.from_config(PipelineConfig(head_weights, pose_source=source))
            face = first_face(processor, turned(demo_frame, sign * theta))
            rolls[source, sign] = face.pose.roll_deg
            if source == "head":
                assert abs(processor.last_rois[0].rotation_deg) > 5.0  # the crop was turned ...
                eye_line = eye_line_deg(*LAYOUT.eye_centre_points(face.points))
                assert face.pose.roll_deg == pytest.approx(eye_line, abs=0.01)  # ... and turned back
                assert abs(face.pose.yaw_deg) < 1e-6 and abs(face.pose.pitch_deg) < 1e-6
    # cv2 turns counter-clockwise for a positive angle: roll goes down by theta
    head_change, pnp_change = rolls["head", -1.0] - rolls["head", 1.0], rolls["pnp", -1.0] - rolls["pnp", 1.0]
    assert head_change == pytest.approx(2 * theta, abs=3.0)
    assert pnp_change == pytest.approx(2 * theta, abs=6.0)


def test_head_asked_for_without_a_head_is_a_one_line_user_error(head_weights, tmp_path):
    with pytest.raises(UserError, match="no attribute head") as info:
        FrameProcessor.from_config(PipelineConfig(WEIGHTS, pose_source="head"))
    assert "\n" not in str(info.value)
    assert pose_head_of(Landmarker(WEIGHTS), required=False) is None
    no_roll = tmp_path / "no_roll.safetensors"
    save_weights(load_model(WEIGHTS), no_roll, attribute_head=eye_line_head(LAYOUT, 80, ("yaw", "pitch")))
    with pytest.raises(UserError, match="no roll angle"):
        FrameProcessor.from_config(PipelineConfig(no_roll, pose_source="head"))
    processor = FrameProcessor.from_config(PipelineConfig(WEIGHTS))
    assert processor.pose_sources == ("pnp",) and processor.pose_source == "pnp"
    with pytest.raises(UserError, match="unknown pose source"):
        FrameProcessor.from_config(PipelineConfig(head_weights, pose_source="mesh"))


def test_video_cli_pose_source(head_weights, demo_frame, tmp_path, capsys):
    from realtime.video import main

    cv2.imwrite(str(tmp_path / "face.png"), cv2.cvtColor(turned(demo_frame, 10.0), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert main([str(tmp_path / "face.png"), "-o", str(out / "v.mp4"), "--landmarks", str(out / "m.jsonl"),
                 "--weights", str(WEIGHTS), "--pose-source", "head"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "attribute head" in err
    assert not out.exists()
    assert main([str(tmp_path / "face.png"), "-o", str(out / "v.mp4"), "--landmarks", str(out / "m.jsonl"),
                 "--weights", str(head_weights), "--pose-source", "head"]) == 0
    (face,) = json.loads((out / "m.jsonl").read_text())["faces"]
    eye_line = eye_line_deg(*LAYOUT.eye_centre_points(np.array(face["points"])))
    assert face["pose"]["roll_deg"] == pytest.approx(eye_line, abs=0.1) and face["pose"]["yaw_deg"] == 0.0


def test_webcam_cli_head_without_a_head_exits_2(tmp_path, capsys):
    pytest.importorskip("PySide6")
    pytest.importorskip("pyqtgraph")
    from realtime.webcam import main

    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    assert main(["--source", str(image), "--screenshot-dir", str(tmp_path), "--weights", str(WEIGHTS),
                 "--pose-source", "head"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "attribute head" in err


def test_live_switch_takes_effect_on_the_next_frame(head_weights, demo_frame):
    processor = FrameProcessor.from_config(PipelineConfig(head_weights))
    tuner = LiveTuner(processor)
    assert processor.pose_sources == ("pnp", "head") and tuner.params.pose_source == "pnp"
    image = turned(demo_frame, 10.0)
    frame = lambda i: CapturedFrame(i, i / 30, image)  # noqa: E731
    assert abs(tuner(frame(0)).faces[0].pose.yaw_deg) > 0.1  # solvePnP: some yaw
    tuner.set(replace(tuner.params, pose_source="head"))
    assert processor.pose_source == "pnp"  # not before the next frame
    face = tuner(frame(1)).faces[0]
    assert processor.pose_source == "head" and tuner.applied.pose_source == "head"
    assert abs(face.pose.yaw_deg) < 1e-6  # the hand-built head: yaw 0, filters restarted
    assert face.pose.roll_deg == pytest.approx(eye_line_deg(*LAYOUT.eye_centre_points(face.points)), abs=0.01)
    tuner.set(replace(tuner.params, pose_source="pnp"))
    assert abs(tuner(frame(2)).faces[0].pose.yaw_deg) > 0.1

    without = LiveTuner(FrameProcessor.from_config(PipelineConfig(WEIGHTS)))
    with pytest.raises(UserError, match="not available"):
        without.set(replace(without.params, pose_source="head"))
    assert without.params.pose_source == "pnp" and without(frame(0)).faces[0].pose is not None


def test_panel_offers_head_only_when_available_and_switches_it(head_weights):
    pytest.importorskip("PySide6")
    pg = pytest.importorskip("pyqtgraph")
    from realtime.gui.overlay import OverlayWindow

    pg.mkQApp("test_pose_head")
    tuner = LiveTuner(FrameProcessor.from_config(PipelineConfig(head_weights)))
    window = OverlayWindow(tuner=tuner)
    source = window.params.child("pose", "source")
    assert list(source.opts["limits"]) == ["pnp", "head"] and source.value() == "pnp"
    source.setValue("head")
    assert tuner.params.pose_source == "head"
    window.close()

    without = LiveTuner(FrameProcessor.from_config(PipelineConfig(WEIGHTS)))
    window = OverlayWindow(tuner=without)
    source = window.params.child("pose", "source")
    assert list(source.opts["limits"]) == ["pnp"]
    source.setLimits(["pnp", "head"])  # forced past the panel's offer: refused with a note, no crash
    source.setValue("head")
    assert without.params.pose_source == "pnp" and "not applied" in window._note and "head" in window._note
    window.close()


def test_bundled_model_head_pose_runs_on_frames_with_and_without_a_face(demo_frame):
    """The bundled 68-point model carries a yaw/pitch/roll head: frames without a face give no
    pose and no error; a face gets a pose whose roll follows the image's eye line."""
    from realtime.video import DEFAULT_WEIGHTS

    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the bundled 68-point model is not there")
    processor = FrameProcessor.from_config(PipelineConfig(DEFAULT_WEIGHTS, pose_source="head"))
    assert processor(CapturedFrame(0, 0.0, np.zeros((240, 320, 3), np.uint8))).faces == []
    (face,) = processor(CapturedFrame(1, 0.033, turned(demo_frame, 10.0))).faces
    eye_line = eye_line_deg(*get_layout("ibug68").eye_centre_points(face.points))
    assert face.pose is not None and abs(face.pose.roll_deg - eye_line) < 8.0, (face.pose, eye_line)
