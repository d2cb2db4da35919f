"""Evaluation end to end on the dataset fixtures, against hand-computed NME."""
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.models.model import build_model
from realtime.models.presets import make_config
from train.evaluation import evaluate as ev
from train.data.datasets import open_dataset
from train.evaluation.predict import Predictions

FIXTURES = Path(__file__).parent / "fixtures"


def test_evaluate_matches_hand_computed_nme(monkeypatch):
    data = open_dataset(f"mtfl:{FIXTURES / 'mtfl'}:train")
    model = build_model(make_config("rcn_mtfl"))

    def fake_predict(model, dataset, batch_size, decoder, beta, denoiser, **kwargs):
        items = [dataset[i] for i in range(len(dataset))]
        gt = np.stack([it["points"].numpy() for it in items])
        pred = gt.copy()
        pred[:, 2, 0] += 3.0  # nose 3 px to the right; the other 4 points exact
        return Predictions(pred, gt, np.ones(gt.shape[:2], bool), np.ones(gt.shape[:2]))

    monkeypatch.setattr(ev, "predict_dataset", fake_predict)
    report = ev.evaluate_model(model, data, ["eye_centres"])
    # by hand: per image NME = (3 / 5 points) / inter-ocular distance in the crop
    crops = [ev.LandmarkDataset(data)[i]["points"].numpy() for i in range(len(data))]
    expected = [3.0 / 5 / np.linalg.norm(p[0] - p[1]) for p in crops]
    assert np.allclose(report.errors["eye_centres"], expected)
    assert report.groups["all"]["eye_centres"]["mean"] == pytest.approx(np.mean(expected))


def test_error_by_head_pose_groups_the_images_by_their_attribute(monkeypatch):
    """--by pose: one row per MTFL head-pose class, each the mean of its own images' NME."""
    data = open_dataset(f"mtfl:{FIXTURES / 'mtfl'}:train")
    poses = [s.attributes["pose"] for s in data.samples]
    groups = ev.group_indices(data, by="pose")
    for value in set(poses):
        assert list(groups[f"pose={value:g}"]) == [i for i, p in enumerate(poses) if p == value]
    assert sum(len(v) for k, v in groups.items() if k.startswith("pose=")) == len(data)

    def fake_predict(model, dataset, batch_size, decoder, beta, denoiser, **kwargs):
        gt = np.stack([dataset[i]["points"].numpy() for i in range(len(dataset))])
        pred = gt + np.arange(len(gt))[:, None, None]  # image i is off by (i, i) px
        return Predictions(pred, gt, np.ones(gt.shape[:2], bool), np.ones(gt.shape[:2]))

    monkeypatch.setattr(ev, "predict_dataset", fake_predict)
    report = ev.evaluate_model(build_model(make_config("rcn_mtfl")), data, ["eye_centres"], by="pose")
    for value in set(poses):
        idx = groups[f"pose={value:g}"]
        assert report.groups[f"pose={value:g}"]["eye_centres"]["mean"] == pytest.approx(report.errors["eye_centres"][idx].mean())
    with pytest.raises(ev.UserError, match="--by age: no image .* has that attribute .*it has gender, glasses, pose, smile"):
        ev.group_indices(data, by="age")


def test_300w_groups_and_mask_table():
    data = open_dataset(f"300w:{FIXTURES / '300w'}:full")
    groups = ev.group_indices(data)
    assert {"all", "common", "challenging"} <= set(groups)
    assert len(groups["common"]) + len(groups["challenging"]) == len(groups["all"])
    rcn = build_model(make_config("rcn_mtfl", branches=4, branch_mask=(1, 0, 0, 1)))
    sum_full = build_model(make_config("sumnet_mtfl", branches=4))
    table = ev.mask_table([(rcn, {"d": 0.0679}), (sum_full, {"d": 0.0644})], ["d"])
    assert "| 1,0,0,1 | 6.79 | - |" in table and "| 1,1,1,1 | - | 6.44 |" in table


def test_evaluate_cli_writes_ced_and_json(tmp_path, monkeypatch):
    monkeypatch.setenv("RCN_CACHE", str(tmp_path / "cache"))
    from realtime.models.weights import save_weights
    torch.manual_seed(0)
    save_weights(build_model(make_config("rcn_mtfl", branches=4, width_mult=0.25)), tmp_path / "m.safetensors")
    text = ev.run_evaluate([str(tmp_path / "m.safetensors")], ["synth:test?n=8"], ["eye_centres", "box"], None, None,
                           None, str(tmp_path / "ced.png"), str(tmp_path / "r.json"), True)
    assert "NME eye_centres" in text and "Branch masking" in text
    assert (tmp_path / "ced.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "r.json").is_file()


def test_attribute_accuracy_on_mtfl_fixture_is_hand_computed(monkeypatch):
    """MTFL's four attributes (gender, smile, glasses, 5-way pose) are read for every face, and the
    accuracy and majority-class floor are the plain fractions over the labelled faces."""
    from realtime.models.attributes import AttributeConfig, AttributeNet

    data = open_dataset(f"mtfl:{FIXTURES / 'mtfl'}:train")  # 2 faces (training.txt; the AFLW line is the test set)
    # fixture codes -> labels: gender (0, 1), smile (1, 0), glasses (1, 0), pose (2, 4)
    head = AttributeNet(AttributeConfig(num_points=5, input_size=80, names=("gender", "smile", "glasses", "pose"),
                                        kinds=("class:2", "class:2", "class:2", "class:5")))
    answers = {"gender": [0, 0], "smile": [1, 0], "glasses": [0, 1], "pose": [2, 4]}
    monkeypatch.setattr(head, "predict", lambda points: {k: torch.tensor(v, dtype=torch.float32) for k, v in answers.items()})
    acc = ev.attribute_accuracy(build_model(make_config("rcn_mtfl", width_mult=0.25)), head, data)
    assert set(acc) == {"gender", "smile", "glasses", "pose"}
    assert acc["gender"] == {"accuracy": 0.5, "majority": 0.5, "n": 2}
    assert acc["smile"]["accuracy"] == 1.0 and acc["glasses"]["accuracy"] == 0.0
    assert acc["pose"]["accuracy"] == 1.0 and acc["pose"]["majority"] == 0.5
