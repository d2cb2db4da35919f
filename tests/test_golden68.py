"""Golden test of the shipped 68-point model: its points on frame 0 of the bundled clip (cropped from
the truth's box, the network alone) within a stated tolerance of the stored ones
(``tests/fixtures/golden68.json``, written by ``python -m train.faces68`` when it ships the model)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from train.recipes import faces68_recipe as recipe68

pytest.importorskip("av")
if not recipe68.GOLDEN.is_file() or not recipe68.DEFAULT_SHIP.is_file():
    pytest.skip("the bundled 68-point model or its golden points are not there yet", allow_module_level=True)


def test_shipped_model_lands_on_its_golden_points():
    from realtime.core.atomic import sha256

    golden = json.loads(recipe68.GOLDEN.read_text())
    assert golden["weights_sha256"] == sha256(recipe68.DEFAULT_SHIP), "weights changed: rerun python -m train.faces68"
    points, truth = recipe68.golden_points(recipe68.DEFAULT_SHIP)
    stored = np.asarray(golden["points"])
    assert np.abs(points - stored).max() <= golden["tolerance_px"]
    # and the stored points are a face, not noise: near the clip's truth (outer eye corners 36, 45)
    iod = np.linalg.norm(truth[36] - truth[45])
    assert np.linalg.norm(stored - truth, axis=1).mean() / iod < 0.10


def test_shipped_onnx_matches_the_safetensors_model():
    """assets/rcn68_faces.onnx (network + soft-argmax, for runtimes outside this package) gives the
    same points as the safetensors model in torch."""
    ort = pytest.importorskip("onnxruntime")
    import torch

    from realtime.models.decode import decode
    from realtime.models.weights import load_model

    onnx_path = recipe68.DEFAULT_SHIP.with_suffix(".onnx")
    model = load_model(recipe68.DEFAULT_SHIP).eval()
    crops = torch.rand(3, 1, 80, 80, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected, _ = decode(model(crops), "softargmax", model.config.beta)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    points, scores = session.run(["points", "scores"], {"crops": crops.numpy()})
    assert points.shape == (3, 68, 2) and scores.shape == (3, 68)
    assert np.abs(points - expected.numpy()).max() < 0.01
