"""``realtime.detect.tflite``: the TFLite engine chosen for each shape of OpenCV's dnn API (4.x, 5.0,
5.1; the ones not installed are stand-ins with those releases' names and call signatures), the
check that a loaded net gives every output, and the installed OpenCV on the shipped models."""
from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from realtime.core.assets import BLAZEFACE_DIR
from realtime.core.errors import UserError
from realtime.detect.detector import MODELS, BlazeFaceDetector
from realtime.detect.tflite import read_tflite, tflite_engine

SHORT = BLAZEFACE_DIR / MODELS["short"].file_name
SHORT_SIZES = (896 * 16, 896)


class FakeNet:
    """A net that returns zeros of ``shapes`` for the outputs asked for."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]) -> None:
        self.shapes = shapes

    def getUnconnectedOutLayersNames(self):
        return tuple(self.shapes)

    def setInput(self, blob):
        self.blob_shape = blob.shape

    def forward(self, names):
        return [np.zeros(self.shapes[n], np.float32) for n in names]


BLAZEFACE_OUTPUTS = {"regressors": (1, 896, 16), "classificators": (1, 896, 1)}


def fake_dnn(engines: dict[str, int], takes_engine: bool, outputs=BLAZEFACE_OUTPUTS):
    """A ``cv2.dnn`` stand-in with ``engines`` as its ENGINE_* names, recording each read's arguments;
    ``takes_engine`` False is 4.x's ``readNetFromTFLite(model)`` (a second argument is a TypeError)."""
    calls = []

    def read(path, *engine):
        if engine and not takes_engine:
            raise TypeError("readNetFromTFLite() takes at most 1 argument (2 given)")
        calls.append((path, *engine))
        return FakeNet(outputs)

    return SimpleNamespace(readNetFromTFLite=read, calls=calls, **engines)


# The names each release's cv2.dnn has (measured 2026-12-06 on 4.10.0.84, 4.14.0.94, 5.0.0.93, 5.1.0.95).
API_SHAPES = {
    "4.x": ({}, False, "default"),
    "5.0": ({"ENGINE_AUTO": 0, "ENGINE_CLASSIC": 1, "ENGINE_NEW": 2, "ENGINE_ORT": 3}, True, "ENGINE_CLASSIC"),
    "5.1": ({"ENGINE_AUTO": 0, "ENGINE_OPENCV": 2, "ENGINE_ORT": 3}, True, "ENGINE_OPENCV"),
}


@pytest.mark.parametrize("release", sorted(API_SHAPES))
def test_each_opencv_api_shape_gets_its_engine_and_call(release):
    engines, takes_engine, expected = API_SHAPES[release]
    dnn = fake_dnn(engines, takes_engine)
    name, value = tflite_engine(dnn)
    assert name == expected and value == engines.get(expected)
    net, names = read_tflite(SHORT, "BlazeFace model", (1, 3, 128, 128), SHORT_SIZES, dnn=dnn)
    assert dnn.calls == [(str(SHORT),) if value is None else (str(SHORT), value)]
    assert names == ["regressors", "classificators"] and net.blob_shape == (1, 3, 128, 128)


def test_the_installed_opencv_gets_the_engine_its_release_needs():
    major, minor = (int(p) for p in cv2.__version__.split(".")[:2])
    name, _ = tflite_engine()
    if major == 4:
        assert name == "default"
    elif (major, minor) == (5, 0):
        assert name == "ENGINE_CLASSIC"
    else:
        assert name == "ENGINE_OPENCV", f"OpenCV {cv2.__version__}: check its TFLite engines and update ENGINE_NAMES"


def test_a_missing_output_is_one_line_naming_opencv_and_the_engine():
    dnn = fake_dnn(API_SHAPES["5.1"][0], True, outputs={"regressors": (1, 896, 16)})
    with pytest.raises(UserError) as caught:
        read_tflite(SHORT, "BlazeFace model", (1, 3, 128, 128), SHORT_SIZES, dnn=dnn)
    message = str(caught.value)
    assert "\n" not in message and f"OpenCV {cv2.__version__}" in message and "ENGINE_OPENCV" in message
    assert "[14336] values" in message and "requirements/lock.txt" in message


def test_an_unreadable_model_is_one_line(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(UserError, match="cannot read BlazeFace model .*bad.tflite") as caught:
        read_tflite(bad, "BlazeFace model", (1, 3, 128, 128), SHORT_SIZES)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_installed_opencv_runs_both_shipped_models_with_both_outputs(model):
    """The real engine on the real files: both outputs, with the sizes the decoder reads; and a wrong
    expectation is caught (the check is not vacuous on this OpenCV)."""
    spec = MODELS[model]
    detector = BlazeFaceDetector(model)
    count = len(detector.anchors)
    regressors, logits = detector._forward(np.zeros((1, spec.input_size, spec.input_size, 3), np.uint8))
    assert regressors.shape == (1, count, 16) and logits.shape == (1, count)
    with pytest.raises(UserError, match=f"expected \\[{count}, {count * 17}\\]"):
        read_tflite(BLAZEFACE_DIR / spec.file_name, "BlazeFace model", (1, 3, spec.input_size, spec.input_size),
                    (count * 17, count))
