"""``python -m train evaluate``: NME under several normalisers, per subset, failure rates, AUC,
a CED plot, and the branch-masking table in the layout of the authors' talk on the 2016 paper.

Errors are measured in the 80x80 crop (a similarity transform of the image, so ratios such as
NME are the same as in image pixels) against continuous ground truth, not the 2016 code's
discretised targets.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from realtime.core.atomic import write_text_atomic
from realtime.models.attributes import AttributeNet
from realtime.models.denoise import Denoiser
from realtime.core.errors import UserError
from realtime.geometry.layouts import get_layout
from realtime.models.model import LandmarkNet
from realtime.models.weights import load_denoiser, load_model, torch_device
from train.data.datasets import open_dataset
from train.data.datasets.landmark_set import LandmarkSet
from train.data.loader import LandmarkDataset, attribute_table
from train.evaluation.metrics import ced_curve, nme, normalising_distance, plot_ced, summarise
from train.evaluation.predict import predict_dataset

# 300W's test groups (the 300-W protocol): subset names as the 300W reader writes them.
GROUPS_300W = {
    "common": ("helen/testset", "lfpw/testset"),
    "challenging": ("ibug",),
    "full": ("helen/testset", "lfpw/testset", "ibug"),
}


@dataclass
class Report:
    """Per-image NME for each normaliser, the subset of each image, and summaries per group."""

    name: str
    errors: dict[str, np.ndarray]
    subsets: list[str]
    groups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


def group_indices(data: LandmarkSet, by: str | None = None) -> dict[str, np.ndarray]:
    """Image indices of each group: all, each subset (when there are several), 300-W's groups, and
    with ``by`` one group per value of that attribute (e.g. MTFL's ``pose``: AFLW's error by head
    pose, ``pose=0`` the left profile ... ``pose=4`` the right); images without it are left out."""
    subsets = np.array([s.subset for s in data.samples])
    groups = {"all": np.arange(len(subsets))}
    present = set(subsets.tolist())
    if len(present) > 1:
        for name in sorted(present):
            groups[name] = np.flatnonzero(subsets == name)
    for name, members in GROUPS_300W.items():  # e.g. common/challenging inside 300W "full"
        if set(members) < present:
            groups[name] = np.flatnonzero(np.isin(subsets, members))
    if by:
        values = np.array([s.attributes.get(by, np.nan) for s in data.samples], dtype=float)
        known = ~np.isnan(values)
        if not known.any():
            names = sorted({k for s in data.samples for k in s.attributes})
            raise UserError(f"--by {by}: no image of {data.name} has that attribute "
                            f"({'it has ' + ', '.join(names) if names else 'it has no attributes'})")
        for value in np.unique(values[known]):
            groups[f"{by}={value:g}"] = np.flatnonzero(values == value)
    return groups


def evaluate_model(model: LandmarkNet, data: LandmarkSet, norms: list[str], decoder: str | None = None,
                   beta: float | None = None, denoiser: Denoiser | None = None, batch_size: int = 64,
                   thresholds: tuple[float, ...] = (0.08, 0.10), device: torch.device | str = "cpu",
                   by: str | None = None) -> Report:
    """Per-image NME of ``model`` (already on ``device``) on ``data`` under each normaliser, and
    their summaries per group (all, 300-W's groups where the data has them, and the values of
    attribute ``by``)."""
    layout = get_layout(data.layout)
    if model.config.num_points != layout.num_points:
        raise UserError(f"model predicts {model.config.num_points} points but the data has {layout.num_points} ({data.layout})")
    dataset = LandmarkDataset(data, out_size=model.config.input_size, grey=model.config.in_channels == 1)
    p = predict_dataset(model, dataset, batch_size, decoder, beta, denoiser, device=device)
    errors = {k: nme(p.pred, p.gt, p.mask, normalising_distance(p.gt, p.mask, layout, k)) for k in norms}
    report = Report(data.name, errors, [s.subset for s in data.samples])
    for gname, idx in group_indices(data, by).items():
        report.groups[gname] = {k: summarise(e[idx], thresholds) | {"n": int(len(idx))} for k, e in errors.items()}
    return report


def attribute_accuracy(model: LandmarkNet, head: AttributeNet, data: LandmarkSet, batch_size: int = 64) -> dict[str, dict]:
    """Sequential multitasking at test time: the head classifies each image's soft-argmax
    landmarks (the plain evaluation crop, as in training). Per class attribute of the head that the
    data labels: ``accuracy`` over the labelled images, ``majority`` (the accuracy of always saying
    the test set's most common class, the floor a useful head must beat) and ``n``."""
    dataset = LandmarkDataset(data, out_size=model.config.input_size, grey=model.config.in_channels == 1)
    p = predict_dataset(model, dataset, batch_size, decoder="softargmax")
    predicted = head.predict(torch.from_numpy(p.pred).float())
    labels = attribute_table(data, list(head.config.names))
    out = {}
    for j, (name, kind) in enumerate(zip(head.config.names, head.config.kinds)):
        known = ~np.isnan(labels[:, j])
        if not kind.startswith("class") or not known.any():
            continue
        truth = labels[known, j].astype(int)
        guess = predicted[name].numpy()[known].astype(int)
        out[name] = {"accuracy": float((guess == truth).mean()),
                     "majority": float(np.bincount(truth).max() / len(truth)), "n": int(known.sum())}
    return out


def format_report(label: str, report: Report, norms: list[str]) -> str:
    """A markdown table: one row per group, mean NME per normaliser, then FR and AUC of the first."""
    first = norms[0]
    some = next(iter(report.groups.values()))[first]
    extra = [k for k in some if k.startswith(("failure", "auc"))]
    head = ["group", "n"] + [f"NME {k} (%)" for k in norms] + [f"{k} ({first}, %)" for k in extra]
    lines = [f"### {label} on {report.name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for gname, per_norm in report.groups.items():
        cells = [gname, str(per_norm[first]["n"])] + [f"{100 * per_norm[k]['mean']:.2f}" for k in norms]
        cells += [f"{100 * per_norm[first][k]:.2f}" for k in extra]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mask_table(results: list[tuple[LandmarkNet, dict[str, float]]], data_names: list[str]) -> str:
    """The talk's branch-masking layout: rows are masks (coarse -> fine), columns are
    architecture x dataset, cells mean NME (%)."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    archs: list[str] = []
    for model, scores in results:
        mask = model.config.branch_mask or (1,) * model.config.num_branches
        key = ",".join(map(str, mask))
        arch = {"sumnet": "SumNet", "rcn": "RCN"}.get(model.config.arch, model.config.arch)
        if arch not in archs:
            archs.append(arch)
        cells.setdefault((key, arch), {}).update(scores)
    masks = sorted({k for k, _ in cells}, key=_mask_order)
    head = ["mask (coarse -> fine)"] + [f"{a} {d}" for a in archs for d in data_names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for mask in masks:
        row = [mask]
        for arch in archs:
            got = cells.get((mask, arch), {})
            row += [f"{100 * got[d]:.2f}" if d in got else "-" for d in data_names]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _mask_order(mask: str) -> tuple:
    """The talk's row order: fewer branches first, then coarse before fine."""
    bits = [int(b) for b in mask.split(",")]
    return (sum(bits), [-b for b in bits])


def run_evaluate(weights: list[str], data_specs: list[str], norms: list[str], decoder: str | None,
                 beta: float | None, denoiser_path: str | None, ced: str | None, json_out: str | None,
                 show_mask_table: bool, batch_size: int = 64, device: str = "cpu", by: str | None = None) -> str:
    """``python -m train evaluate``: every weights file on every data spec, on ``device``."""
    dev = torch_device(device)
    models = []
    for path in weights:
        model = load_model(path, dev)
        if not isinstance(model, LandmarkNet):
            raise UserError(f"{path} holds a denoiser; pass it with --denoiser next to a landmark model")
        models.append((path, model))
    denoiser = load_denoiser(denoiser_path, dev) if denoiser_path else None
    datasets = [open_dataset(spec) for spec in data_specs]
    out, table_rows, curves, dump = [], [], {}, {}
    for path, model in models:
        scores = {}
        for spec, data in zip(data_specs, datasets):
            report = evaluate_model(model, data, norms, decoder, beta, denoiser, batch_size, device=dev, by=by)
            out.append(format_report(Path(path).name, report, norms))
            scores[spec] = report.groups["all"][norms[0]]["mean"]
            curves[f"{Path(path).parent.name}/{Path(path).stem} @ {spec}"] = ced_curve(report.errors[norms[0]], 0.10)
            dump[f"{path} @ {spec}"] = report.groups
        table_rows.append((model, scores))
    if show_mask_table:
        out.append("### Branch masking (mean NME %, " + norms[0] + ")\n\n" + mask_table(table_rows, data_specs))
    if ced:
        plot_ced(curves, ced, max_error=0.10, title=f"CED ({norms[0]})")
    if json_out:
        write_text_atomic(json_out, json.dumps(dump, indent=2))
    return "\n\n".join(out)
