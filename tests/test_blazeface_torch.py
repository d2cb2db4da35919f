"""BlazeFace in PyTorch: the networks' shapes and TF padding, raw outputs and detections against
OpenCV's dnn on the shipped .tflite (demo clip frames, the shared photos when present), batching,
the weights loader's errors, backend choice, and the converter reproducing the shipped files."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from realtime.core.assets import SYNTH_5
from realtime.detect.blazeface_torch import (
    NETWORKS, SameConv2d, TorchBlazeFaceDetector, load_blazeface, weights_path_for,
)
from realtime.detect.detector import (
    MODELS, BlazeFaceDetector, letterbox, make_detector, resolve_detector_backend,
)
from realtime.core.errors import UserError

torch.set_num_threads(1)
cv2.setNumThreads(1)
# Parity tolerances (measured here: boxes/keypoints within 2e-4 px, scores within 1e-7, raw
# outputs within 1e-4); looser than measured so that BLAS/float32 order differences pass.
PIXEL_TOL, SCORE_TOL, RAW_TOL = 0.05, 1e-4, 2e-3


@pytest.fixture(scope="module")
def demo_frames(clip_frames) -> list[np.ndarray]:
    return clip_frames(*range(0, 300, 30))


@pytest.fixture(scope="module")
def pairs() -> dict[str, tuple[BlazeFaceDetector, TorchBlazeFaceDetector]]:
    return {name: (BlazeFaceDetector(name), TorchBlazeFaceDetector(name)) for name in MODELS}


@pytest.mark.parametrize("name, anchors", [("short", 896), ("full", 2304)])
def test_network_output_shapes(name, anchors):
    net = NETWORKS[name]().eval()
    with torch.inference_mode():
        regressors, logits = net(torch.zeros(2, 3, net.input_size, net.input_size))
    assert regressors.shape == (2, anchors, 16) and logits.shape == (2, anchors, 1)


@pytest.mark.parametrize("kernel, size", [(3, 64), (5, 128), (3, 7)])
def test_same_conv_pads_like_tensorflow(kernel, size):
    """Stride 2 "SAME": output ceil(n / 2); the odd extra padding goes at the bottom/right."""
    conv = SameConv2d(1, 1, kernel, 2)
    x = torch.randn(1, 1, size, size)
    total = max((-(-size // 2) - 1) * 2 + kernel - size, 0)
    before, after = total // 2, total - total // 2
    want = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, conv.bias, stride=2)
    got = conv(x)
    assert got.shape[-1] == -(-size // 2)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_raw_outputs_match_opencv(pairs, demo_frames, name):
    opencv, port = pairs[name]
    canvas = letterbox(demo_frames[0], MODELS[name].input_size)[0]
    want_reg, want_logits = opencv._forward(canvas[None])
    got_reg, got_logits = port._forward(canvas[None])
    assert np.abs(got_reg - want_reg).max() < RAW_TOL and np.abs(got_logits - want_logits).max() < RAW_TOL


def assert_same_detections(want, got):
    assert len(want) == len(got)
    np.testing.assert_allclose(got.boxes, want.boxes, atol=PIXEL_TOL)
    np.testing.assert_allclose(got.keypoints, want.keypoints, atol=PIXEL_TOL)
    np.testing.assert_allclose(got.scores, want.scores, atol=SCORE_TOL)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_detections_match_opencv_on_the_demo_clip(pairs, demo_frames, name):
    opencv, port = pairs[name]
    for frame in demo_frames:
        want = opencv(frame)
        assert len(want) == 1  # the clip holds one face throughout
        assert_same_detections(want, port(frame))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_detections_match_opencv_on_the_shared_photos(pairs, shared_photos, name):
    opencv, port = pairs[name]
    found = 0
    for path in shared_photos:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        want = opencv(rgb)
        assert_same_detections(want, port(rgb))
        found += len(want)
    assert found > 0


def test_a_batch_gives_what_single_calls_give(pairs, demo_frames):
    _, port = pairs["short"]
    blank, tiny = np.zeros((480, 640, 3), np.uint8), np.zeros((1, 1, 3), np.uint8)
    frames = [demo_frames[0], blank, tiny, demo_frames[1], cv2.cvtColor(demo_frames[2], cv2.COLOR_RGB2GRAY)]
    batch = port.detect_batch(frames)
    assert [len(d) for d in batch] == [1, 0, 0, 1, 1]
    for frame, got in zip(frames, batch):
        assert_same_detections(port(frame), got)
    assert port.detect_batch([]) == []


def test_loader_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_blazeface(tmp_path / "nope.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a model")
    with pytest.raises(UserError, match="cannot read"):
        load_blazeface(garbage)
    with pytest.raises(UserError, match="full-range network, not short"):
        TorchBlazeFaceDetector("short", weights_path=weights_path_for("full"))
    with pytest.raises(UserError, match="unknown"):
        TorchBlazeFaceDetector("medium")
    net, model = load_blazeface(weights_path_for("short"))
    assert model == "short" and next(net.parameters()).dtype == torch.float32


def test_backend_choice():
    from importlib.util import find_spec

    assert resolve_detector_backend("auto", "cpu") == ("openvino" if find_spec("openvino") else "opencv")
    assert resolve_detector_backend("opencv", "cpu") == "opencv"
    assert resolve_detector_backend("auto", "cuda:0") == "torch"
    assert resolve_detector_backend("torch", "cpu") == "torch"
    with pytest.raises(UserError, match="backend"):
        resolve_detector_backend("tensorrt", "cpu")
    assert isinstance(make_detector("full", "opencv", "cpu"), BlazeFaceDetector)
    detector = make_detector("full", "torch", "cpu", score_threshold=0.3)
    assert isinstance(detector, TorchBlazeFaceDetector) and detector.score_threshold == 0.3


def test_converter_reproduces_the_shipped_files(tmp_path):
    pytest.importorskip("tflite")
    from train.tools.make_blazeface_weights import main
    assert main(["--out", str(tmp_path)]) == 0
    for name in MODELS:
        shipped = weights_path_for(name)
        assert (tmp_path / shipped.name).read_bytes() == shipped.read_bytes()


def test_dequantize_integer_constants_per_channel():
    from train.tools.make_blazeface_weights import dequantize
    q = np.array([[-128, 0, 127], [10, 20, 30]], np.int8)
    got = dequantize(q.tobytes(), "INT8", (2, 3), np.array([0.5, 0.1]), np.array([0, 10]), axis=0)
    np.testing.assert_allclose(got, [[-64.0, 0.0, 63.5], [0.0, 1.0, 2.0]], atol=1e-6)
    half = np.array([1.5, -2.25], np.float16)
    np.testing.assert_array_equal(dequantize(half.tobytes(), "FLOAT16", (2,)), [1.5, -2.25])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(MODELS))
def test_cuda_detections_match_opencv(pairs, demo_frames, name):
    """On the GPU (TF32 convolutions allowed): boxes and keypoints within 1 px, scores within 0.01."""
    opencv, _ = pairs[name]
    port = TorchBlazeFaceDetector(name, device="cuda")
    for frame, got in zip(demo_frames, port.detect_batch(demo_frames)):
        want = opencv(frame)
        assert len(want) == len(got)
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1.0)
        np.testing.assert_allclose(got.keypoints, want.keypoints, atol=1.0)
        np.testing.assert_allclose(got.scores, want.scores, atol=0.01)


def test_the_pipeline_takes_the_torch_detector_when_asked(demo_frames):
    from realtime.io.capture import CapturedFrame
    from realtime.pipeline.config import PipelineConfig
    from realtime.pipeline.processor import FrameProcessor

    weights = SYNTH_5
    processor = FrameProcessor.from_config(PipelineConfig(weights, detector="full", detector_backend="torch"))
    assert isinstance(processor.detector, TorchBlazeFaceDetector) and processor.detector.model == "full"
    assert len(processor(CapturedFrame(0, 0.0, demo_frames[0])).faces) == 1
    default = FrameProcessor.from_config(PipelineConfig(weights)).detector  # "both", OpenVINO (else OpenCV) on CPU
    from importlib.util import find_spec

    if find_spec("openvino"):
        from realtime.detect.blazeface_openvino import OpenVinoBlazeFaceDetector as expected
    else:
        expected = BlazeFaceDetector
    assert [type(m) for m in default.members] == [expected, expected]
    both = FrameProcessor.from_config(PipelineConfig(weights, detector="both", detector_backend="torch")).detector
    assert [(type(m), m.model) for m in both.members] == [(TorchBlazeFaceDetector, "short"),
                                                          (TorchBlazeFaceDetector, "full")]
    assert len(both(demo_frames[0])) == 1


@pytest.mark.parametrize("name", MODELS)
def test_openvino_backend_detects_what_opencv_does(name, demo_frames):
    """The port through OpenVINO (``blazeface_openvino``, the CPU default when installed): the same
    detections as OpenCV dnn on the shipped .tflite, to 1e-3 px and 1e-5 in score."""
    pytest.importorskip("openvino")
    from realtime.detect.blazeface_openvino import OpenVinoBlazeFaceDetector

    reference, fast = BlazeFaceDetector(name), OpenVinoBlazeFaceDetector(name)
    for frame in demo_frames:
        a, b = reference(frame), fast(frame)
        assert len(a) == len(b)
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-3)
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-5)
        np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-3)
