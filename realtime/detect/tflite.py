"""TFLite models through OpenCV dnn, on whichever OpenCV the install got.

``readNetFromTFLite``'s engine argument has changed shape across OpenCV releases (measured on
2026-12-06, ``docs/install.md``):

- 4.x: no engine argument (``readNetFromTFLite(path)``), no ``ENGINE_*`` names;
- 5.0: ``ENGINE_CLASSIC`` exists and is needed for multi-output models such as BlazeFace;
- 5.1: ``ENGINE_CLASSIC`` is gone; ``ENGINE_OPENCV`` (what ``ENGINE_AUTO`` resolves to) runs
  BlazeFace with both outputs.

``tflite_engine`` picks from what the installed ``cv2.dnn`` offers, in that order of preference,
and ``read_tflite`` loads a model with it and then runs it once on zeros, checking that every
output the caller needs comes back with the number of values it expects (the layout may differ:
5.1 gives the face mesh's 1,404 coordinates as (1, 1404, 1, 1)): an OpenCV whose engine drops or
truncates an output fails at load time with one line naming the OpenCV version and the engine,
instead of later with an ``IndexError`` deep in decoding. The pinned set (``requirements/lock.txt``)
is the one tested; the check is what keeps a newer OpenCV from failing silently.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Sequence

import cv2
import numpy as np

from realtime.core.errors import UserError

# Preferred first: the engine that runs multi-output TFLite models on 5.0, then 5.1's.
ENGINE_NAMES = ("ENGINE_CLASSIC", "ENGINE_OPENCV")


def tflite_engine(dnn: ModuleType | None = None) -> tuple[str, int | None]:
    """(name, value) of the engine to pass to ``readNetFromTFLite`` from ``dnn`` (``cv2.dnn`` by
    default): the first of ``ENGINE_NAMES`` it has, else ("default", None): call without an engine
    (OpenCV 4.x, whose reader takes none, or a later release whose default is its only choice)."""
    dnn = cv2.dnn if dnn is None else dnn
    for name in ENGINE_NAMES:
        if hasattr(dnn, name):
            return name, int(getattr(dnn, name))
    return "default", None


def read_tflite(path: str | Path, what: str, input_shape: Sequence[int], output_sizes: Sequence[int],
                output_names: Sequence[str] | None = None, dnn: ModuleType | None = None
                ) -> tuple[cv2.dnn.Net, list[str]]:
    """Load the TFLite model at ``path`` with ``tflite_engine``'s choice and check it.

    ``what`` names the model in messages; ``input_shape`` is the NCHW blob it takes, e.g.
    (1, 3, 128, 128); ``output_sizes`` the number of values of each output needed (any order), e.g.
    (896 * 16, 896) for BlazeFace's regressors and scores; ``output_names`` which outputs to read (the
    unconnected ones when None). Returns (net, output names). A file OpenCV cannot read, or a net
    whose outputs do not have those sizes, is a one-line ``UserError``.
    """
    dnn = cv2.dnn if dnn is None else dnn
    engine, value = tflite_engine(dnn)
    where = f"OpenCV {cv2.__version__}, engine {engine}"
    try:
        net = dnn.readNetFromTFLite(str(path)) if value is None else dnn.readNetFromTFLite(str(path), value)
        names = list(output_names) if output_names is not None else list(net.getUnconnectedOutLayersNames())
        net.setInput(np.zeros(tuple(input_shape), np.float32))
        outputs = net.forward(names)
    except cv2.error as exc:
        raise UserError(f"cannot read {what} {path} ({where}): {str(exc).strip().splitlines()[-1]}") from None
    sizes = sorted(int(out.size) for out in outputs)
    if sizes != sorted(output_sizes):
        raise UserError(f"{what} {path} gives outputs of {sizes} values with {where}, expected "
                        f"{sorted(output_sizes)}: install the OpenCV of requirements/lock.txt (docs/install.md)")
    return net, names
