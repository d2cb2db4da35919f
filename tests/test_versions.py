"""``--version`` on the command lines (what a bug report needs) and the one version number."""
from __future__ import annotations

import hashlib
import tomllib
from importlib import metadata

import pytest
import torch

from realtime.models.weights import weights_info

import realtime
from conftest import REPO
from realtime.core.assets import LANDMARKS_68, SYNTH_5
from realtime.core.versions import SHA_CHARS, installed
from realtime.video import main as video_main
from train.__main__ import main as train_main


def version_output(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 0
    return capsys.readouterr().out


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:SHA_CHARS]


def test_version_names_the_package_the_libraries_and_the_default_weights(capsys):
    out = version_output(video_main, ["--version"], capsys)
    first, libraries, weights = out.strip().splitlines()
    assert first.startswith(f"rcn-realtime {realtime.__version__} (Python ")
    assert f"torch {torch.__version__}" in libraries
    for shown in ("OpenCV", "PyAV", "onnxruntime", "OpenVINO"):
        assert f"{shown} " in libraries
    assert f"OpenCV {installed('opencv-python-headless', 'opencv-python')}" in libraries
    steps = weights_info(LANDMARKS_68)["steps"]  # the shipped checkpoint's updates, from the file itself
    assert weights == f"weights: {LANDMARKS_68} (sha256 {sha(LANDMARKS_68)}, landmark, rcn-weights/1, {steps} updates)"


def test_version_reports_the_weights_given_anywhere_and_needs_no_other_argument(capsys):
    out = version_output(video_main, ["clip.mp4", "--version", "--weights", str(SYNTH_5)], capsys)
    assert f"weights: {SYNTH_5} (sha256 {sha(SYNTH_5)}" in out
    out = version_output(train_main, ["--version", "--weights", "missing.safetensors"], capsys)
    assert out.strip().endswith("weights: missing.safetensors (not found)")


def test_one_version_number_for_the_source_the_metadata_and_the_cli():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "realtime.core.versions.__version__"}
    assert metadata.version("rcn-realtime") == realtime.__version__
