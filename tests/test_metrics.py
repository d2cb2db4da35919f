"""NME normalisers, failure rate, AUC and the CED plot against hand-computed values."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realtime.core.errors import UserError
from realtime.geometry.layouts import Layout, get_layout
from train.evaluation.metrics import ced_curve, nme, normalising_distance, plot_ced, summarise

IBUG = get_layout("ibug68")


def ibug_fixture() -> tuple[np.ndarray, np.ndarray]:
    """One 68-point face with simple distances, (1, 68, 2) and (1, 68).

    Eye corners 36 (0, 0), 39 (4, 0), 42 (10, 0), 45 (14, 0): outer-eye distance 14, corner
    centres (2, 0) and (12, 0): eye-centre distance 10. Left lids 37, 38, 40, 41 at (2, 0) so
    the left pupil is (2, 0); right lids 43, 44, 46, 47 at (15, 7.5) so the right pupil is
    ((10 + 14 + 4 * 15) / 6, 4 * 7.5 / 6) = (14, 5): pupil distance hypot(12, 5) = 13.
    Point 8 at (18, 8), the rest at (0, 0): visible box 18 x 8, sqrt = 12. Point 0 is invisible
    and far away, so it changes nothing.
    """
    gt = np.zeros((68, 2))
    gt[[36, 39, 42, 45]] = [(0, 0), (4, 0), (10, 0), (14, 0)]
    gt[[37, 38, 40, 41]] = (2, 0)
    gt[[43, 44, 46, 47]] = (15, 7.5)
    gt[8] = (18, 8)
    gt[0] = (500, 500)
    visible = np.ones(68, bool)
    visible[0] = False
    return gt[None], visible[None]


@pytest.mark.parametrize("kind, expected", [("outer_eye", 14.0), ("eye_centres", 10.0),
                                            ("pupils", 13.0), ("box", 12.0)])
def test_normalisers_by_hand(kind: str, expected: float) -> None:
    gt, visible = ibug_fixture()
    norm = normalising_distance(gt, visible, IBUG, kind)
    assert norm == pytest.approx([expected])
    # every visible point off by (3, 4): error 5 each; the invisible point is off by 1000
    pred = gt + (3, 4)
    pred[0, 0] += 1000
    assert nme(pred, gt, visible, norm) == pytest.approx([5.0 / expected])


def test_nme_mtfl_mean_over_visible_points() -> None:
    layout = get_layout("mtfl5")
    gt = np.array([[[0, 0], [8, 0], [4, 3], [1, 9], [7, 9]]], np.float64)
    pred = gt.copy()
    pred[0, 1] += (3, 4)   # error 5
    pred[0, 2] += (6, 8)   # error 10
    pred[0, 3] += (50, 0)  # not visible
    visible = np.array([[True, True, True, False, True]])
    norm = normalising_distance(gt, visible, layout, "outer_eye")  # eye centres: 8
    assert norm == pytest.approx([8.0])
    assert nme(pred, gt, visible, norm) == pytest.approx([(0 + 5 + 10 + 0) / 4 / 8])


def test_nan_for_no_visible_point_or_missing_eye() -> None:
    gt, visible = ibug_fixture()
    gt = np.concatenate([gt, gt, gt])
    visible = np.concatenate([visible, np.zeros_like(visible), visible])
    visible[2, 45] = False  # outer corner missing
    norm = normalising_distance(gt, visible, IBUG, "outer_eye")
    assert norm[0] == pytest.approx(14.0) and np.isnan(norm[1]) and np.isnan(norm[2])
    assert np.isnan(normalising_distance(gt, visible, IBUG, "box")[1])
    errors = nme(gt + (3, 4), gt, visible, np.array([10.0, 10.0, 10.0]))
    assert errors[0] == pytest.approx(0.5) and np.isnan(errors[1]) and errors[2] == pytest.approx(0.5)


def test_unsupported_kinds_raise_user_error() -> None:
    gt, visible = ibug_fixture()
    with pytest.raises(UserError):
        normalising_distance(gt, visible, IBUG, "inter_ocular_typo")
    with pytest.raises(UserError):  # wrong layout for the data
        normalising_distance(gt, visible, get_layout("mtfl5"), "outer_eye")
    no_pupils = Layout(name="hand", names=("a", "b"), mirror=(0, 1), outer_eye=(0, 1),
                       eye_centres=((0,), (1,)), pupils=((), ()), box_rule="extent")
    with pytest.raises(UserError):
        normalising_distance(np.zeros((1, 2, 2)), np.ones((1, 2), bool), no_pupils, "pupils")


def test_summary_by_hand() -> None:
    errors = np.array([0.02, 0.04, 0.12, np.nan])
    out = summarise(errors, thresholds=(0.08, 0.10))
    assert out["count"] == 3 and out["excluded"] == 1
    assert out["mean"] == pytest.approx(0.06)
    assert out["median"] == pytest.approx(0.04)
    assert out["failure@0.08"] == pytest.approx(1 / 3)
    assert out["failure@0.1"] == pytest.approx(1 / 3)
    # CED on [0, 0.08]: 0 until 0.02, 1/3 until 0.04, 2/3 until 0.08.
    # Area = 1/3 * 0.02 + 2/3 * 0.04 = 0.02 / 3 + 0.08 / 3 = 0.1 / 3; divided by 0.08 -> 5/12.
    assert out["auc@0.08"] == pytest.approx(5 / 12)
    # On [0, 0.10]: 1/3 * 0.02 + 2/3 * 0.06 = 0.14 / 3; divided by 0.10 -> 14/30.
    assert out["auc@0.1"] == pytest.approx(14 / 30)


def test_failure_is_strictly_above_threshold_and_empty_summary() -> None:
    assert summarise(np.array([0.08, 0.09]), thresholds=(0.08,))["failure@0.08"] == pytest.approx(0.5)
    empty = summarise(np.array([np.nan]))
    assert empty["count"] == 0 and np.isnan(empty["mean"]) and np.isnan(empty["auc@0.08"])


def test_ced_curve_is_the_exact_step_function() -> None:
    curve = ced_curve(np.array([0.12, 0.02, np.nan, 0.04]), max_error=0.08)
    expected = [(0, 0), (0.02, 0), (0.02, 1 / 3), (0.04, 1 / 3), (0.04, 2 / 3), (0.08, 2 / 3)]
    assert curve == pytest.approx(np.array(expected))
    area = np.sum(np.diff(curve[:, 0]) * (curve[1:, 1] + curve[:-1, 1]) / 2)
    assert area / 0.08 == pytest.approx(5 / 12)


def test_plot_ced_writes_a_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    curves = {"a": ced_curve(rng.uniform(0, 0.1, 50), 0.1), "b": ced_curve(rng.uniform(0, 0.2, 50), 0.1)}
    path = tmp_path / "plots" / "ced.png"
    plot_ced(curves, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["ced.png"]  # no temporary left behind
