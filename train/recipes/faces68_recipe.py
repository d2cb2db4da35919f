"""The bundled 68-point model's recipe (``python -m train.faces68``), from human-annotated faces to
shipped weights.

One command, resumable at every stage (a finished stage is skipped, a stopped run continues):

1. training (``train.engine.fit``) with ``recipe``: RCN+ (the 2018 paper's uniform encoder/decoder with a
   soft-argmax head) at half width (32 channels: the live budget) on the human 68-point labels of
   300-W's training split (``300w:ROOT:train?part=fit``: whatever of AFW, HELEN and LFPW is there),
   validated on a hold-out of whole source photos (``?part=val``, ``train.data.datasets.holdout``: 10% of
   the faces, never trained on). The run starts from ``--init``, the previous bundled model
   (``assets/rcn68_teacher.safetensors``: the same network trained on 84 dlib-labelled faces of 45
   people; its recipe is in its metadata), so the teacher faces serve as pre-training. 2016
   spatial cross-entropy, Adam with a cosine decay, heavy augmentation with mirroring and rotation
   up to 30 degrees (AFW's large poses);
2. export of the LAST checkpoint to ``--ship`` (choosing the best checkpoint on the hold-out would
   flatter the numbers reported on it), with the tracker's re-detect threshold calibrated on the
   training faces (``calibrate_min_confidence``), a head-pose attribute head fitted on the
   network's own points (``fit_pose_head``: sequential multitasking's head, trained after the
   network, so ``--pose-source head`` keeps working), and the ONNX copy;
3. the model card's numbers into ``--docs/results_faces68.md`` and ``.json``: NME on the hold-out
   (outer-eye-corner and eye-centre normalisers, failure rates) for the new model and for the
   ``--init`` model, NME and still-segment jitter on the bundled clip through the whole live
   pipeline (``realtime.clipscore``), and speed per backend.

``--report-only`` re-measures an existing ``--ship`` file without training. The data are 300-W's:
research and non-commercial use only, and so is a model trained on them (``assets/README.md``).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from realtime.backends import available_backends, make_backend
from realtime.backends.base import Decoded
from realtime.backends.exported import export_onnx
from realtime.core.assets import (
    DEMO_CLIP,
    DEMO_TRUTH,
    LANDMARKS_68,
    MEAN_FACE,
    TEACHER_68,
)
from realtime.core.atomic import atomic_path, json_text, sha256, write_text_atomic
from realtime.core.cliargs import number
from realtime.core.errors import UserError
from realtime.core.measure import seconds_per_call
from realtime.geometry.crops import crop_matrix, face_box_from_points
from realtime.geometry.layouts import get_layout
from realtime.io.capture import VideoFileSource
from realtime.models.attributes import AttributeNet
from realtime.models.model import multiply_adds
from realtime.models.weights import (
    load_landmark_model,
    load_model,
    save_weights,
    weights_info,
)
from realtime.pipeline import cliptruth
from realtime.pipeline.cliptruth import ClipTruth
from realtime.stages.landmarker import Landmarker
from train.data.datasets import open_dataset
from train.data.datasets.landmark_set import LandmarkSet, sample_image
from train.data.datasets.holdout import source_photo
from train.data.loader import LandmarkDataset
from train.engine.checkpoint import load_checkpoint
from train.engine.fit_config import FitConfig
from train.engine.export import export
from train.engine.runs import hardware
from train.evaluation.evaluate import evaluate_model
from train.evaluation.metrics import nme, normalising_distance
from train.evaluation.predict import predict_dataset
from train.labels.headpose import pose_attributes
from train.objectives.attribute_loss import attribute_loss, head_config

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHIP = LANDMARKS_68
DEFAULT_INIT = TEACHER_68
NORMS = ["outer_eye", "eye_centres"]
GOLDEN = ROOT / "tests" / "fixtures" / "golden68.json"
GOLDEN_TOLERANCE_PX = 0.25
POSE_NAMES = ("yaw", "pitch", "roll")


def golden_points(weights: Path) -> tuple[np.ndarray, np.ndarray]:
    """The model's (68, 2) points on frame 0 of the bundled clip, from the crop of the truth's own
    face box (no detector, no tracking: the network alone), and the truth's points."""

    truth = ClipTruth.load(DEMO_TRUTH).points[0]
    with VideoFileSource(DEMO_CLIP) as source:
        frame = next(iter(source)).image
        source.stop()
    landmarker = Landmarker(weights)
    matrix = crop_matrix(*face_box_from_points(truth, np.ones(len(truth), bool), get_layout("ibug68")),
                         out_size=landmarker.input_size)
    points, _ = landmarker(frame, [matrix])
    return points[0], truth


def write_golden(weights: Path, path: Path = GOLDEN) -> None:
    """Store the shipped model's golden points (``tests/test_golden68.py`` checks them)."""

    points, _ = golden_points(weights)
    write_text_atomic(path, json_text({
        "weights": weights.name, "weights_sha256": sha256(weights), "frame": 0, "tolerance_px": GOLDEN_TOLERANCE_PX,
        "made_by": "python -m train.faces68 (write_golden), after export", "points": np.round(points, 3).tolist()}))




def specs(data_root: Path) -> tuple[str, str]:
    """(training, hold-out) dataset specs: one partition of 300-W's training split by source photo."""
    return f"300w:{data_root}:train?part=fit", f"300w:{data_root}:train?part=val"


def recipe(data_root: Path, out: Path, steps: int, init: Path | None = DEFAULT_INIT, separable: int = 0,
           eval_every: int = 250) -> FitConfig:
    """The training run's configuration (module docstring), in fp32: bf16 autocast (``--bf16``)
    trains 1.8-2.7x faster on a CPU with AVX512-BF16 or AMX (docs/training_speed.md) and 8x slower
    on one without, so it is the caller's choice per machine."""
    train, val = specs(data_root)
    return FitConfig(
        preset="rcnplus", width_mult=0.5, data=train, val=val, out=str(out), loss="ce", optimizer="adam",
        lr=5e-4, lr_schedule="cosine", init=str(init) if init else None, batch_size=32, steps=steps,
        eval_every=eval_every, augment="heavy", mirror=0.5, rotation=30, separable=separable,
    )


def pose_labels(spec: str, model, mean_face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network's soft-argmax points on the evaluation crops of ``spec`` and their mirror images
    (2N, K, 2) crop pixels, and the head pose of the annotated points (2N, 3) yaw/pitch/roll degrees
    (``train.labels.headpose.photo_pose``; mirrored: yaw and roll change sign). The crops are axis-aligned,
    so the roll of the image is the roll in the crop."""

    data = open_dataset(spec)
    size = model.config.input_size
    points = predict_dataset(model, LandmarkDataset(data, size, model.config.in_channels == 1), decoder="softargmax").pred
    angles = np.array([[pose_attributes(s.points, mean_face)[n] for n in POSE_NAMES] for s in data.samples], np.float32)
    mirror = np.asarray(get_layout(data.layout).mirror)
    flipped = points[:, mirror].copy()
    flipped[..., 0] = size - 1 - flipped[..., 0]
    return np.concatenate([points, flipped]), np.concatenate([angles, angles * np.float32([-1, 1, -1])])


def fit_pose_head(model, train_spec: str, val_spec: str, steps: int = 2000, seed: int = 0):
    """Sequential multitasking's head (``realtime.models.attributes.AttributeNet``: landmarks -> yaw,
    pitch, roll) fitted on the network's own points with the network frozen; returns the head and
    its mean absolute error in degrees on the hold-out's faces (mirrors included)."""

    mean_face = np.load(MEAN_FACE)
    points, angles = pose_labels(train_spec, model, mean_face)
    kinds = dict.fromkeys(POSE_NAMES, "angle")
    torch.manual_seed(seed)
    head = AttributeNet(head_config(kinds, list(POSE_NAMES), angles, model.config.num_points,
                                    model.config.input_size, (256, 256), 0.1, "centred"))
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    x, y = torch.from_numpy(points), torch.from_numpy(angles)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (256,), generator=gen)
        loss = attribute_loss(head, x[idx], y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    head.eval()
    val_points, val_angles = pose_labels(val_spec, model, mean_face)
    predicted = head.predict(torch.from_numpy(val_points))
    error = {n: float(np.mean(np.abs((predicted[n].numpy() - val_angles[:, i] + 180) % 360 - 180)))
             for i, n in enumerate(POSE_NAMES)}
    return head, error


def ship(run: Path, out: Path, train_spec: str, val_spec: str, extra_data: str | None = None) -> None:
    """Export the last checkpoint with the calibrated re-detect threshold and the pose head (and its
    hold-out error) in its file, and its ONNX copy. ``extra_data``: the faces trained on besides
    300-W (``--extra-data``), named in the file with their terms."""

    export(run / "last.pt", out)
    calibration = calibrate_min_confidence(out, train_spec)
    model = load_landmark_model(out)
    head, pose_error = fit_pose_head(model, train_spec, val_spec)
    info = {**weights_info(out), "track_min_confidence": round(calibration["threshold"], 4),
            "track_min_confidence_from": {k: round(v, 4) for k, v in calibration.items()},
            "pose_head": {"fitted_on": train_spec, "holdout_mae_deg": {k: round(v, 2) for k, v in pose_error.items()}},
            "licence": licence(extra_data)}
    if extra_data:
        info["extra_data"] = extra_data
    save_weights(model, out, info, attribute_head=head)
    write_onnx(model, out.with_suffix(".onnx"))
    print(f"[faces68] exported {run / 'last.pt'} -> {out}; re-detect below a mean point score of "
          f"{info['track_min_confidence']} (faces p5 {calibration['face_p5']:.3f}, drifted p95 "
          f"{calibration['drifted_p95']:.3f}); pose head error on the hold-out (deg): "
          + ", ".join(f"{k} {v:.1f}" for k, v in pose_error.items()), flush=True)


def set_nme(weights: Path, data: LandmarkSet) -> dict[str, dict[str, float]]:
    """Mean, median and failure rates (NME > 8%, > 10%) of NME (%) per normaliser on ``data`` (a
    ``LandmarkSet``), decoded with soft-argmax as the live pipeline decodes."""

    report = evaluate_model(load_model(weights), data, NORMS, decoder="softargmax",
                            thresholds=(0.08, 0.10))
    summary = report.groups["all"]
    return {k: {"n": summary[k]["n"], "mean_pct": 100 * summary[k]["mean"], "median_pct": 100 * summary[k]["median"],
                "failure@0.08_pct": 100 * summary[k]["failure@0.08"],
                "failure@0.10_pct": 100 * summary[k]["failure@0.1"]} for k in NORMS}


def calibrate_min_confidence(weights: Path, spec: str) -> dict[str, float]:
    """The tracker's re-detect threshold for this model's score scale: halfway between the 5th
    percentile of the mean point score on faces (the evaluation crops of ``spec``) and the 95th
    percentile on the same crops moved sideways by half a face (a track drifting off its face)."""

    landmarker, data = Landmarker(weights), open_dataset(spec)
    layout = get_layout(data.layout)
    on, off = [], []
    for sample in data.samples:
        cx, cy, side = face_box_from_points(sample.points, sample.visible, layout)
        matrices = [crop_matrix(cx, cy, side, out_size=landmarker.input_size),
                    crop_matrix(cx + side / 2, cy, side, out_size=landmarker.input_size)]
        _, scores = landmarker(sample_image(sample), matrices)
        on.append(float(scores[0].mean()))
        off.append(float(scores[1].mean()))
    face, drift = float(np.percentile(on, 5)), float(np.percentile(off, 95))
    return {"face_p5": face, "drifted_p95": drift, "threshold": (face + drift) / 2}


def write_onnx(model, path: Path) -> None:
    """The network with its soft-argmax decoder as ONNX (input ``crops`` (B, 1, 80, 80) float in
    [0, 1]; outputs ``points`` (B, 68, 2) crop pixels and ``scores`` (B, 68)), for runtimes
    outside this package; the same export the onnxruntime and OpenVINO backends make."""

    net = Decoded(model.eval(), "softargmax", float(model.config.beta))
    example = torch.rand(2, model.config.in_channels, model.config.input_size, model.config.input_size)
    with atomic_path(path) as tmp:
        export_onnx(net, example, tmp)


SPEED_BACKENDS = ("eager", "onnxruntime", "openvino", "openvino_bf16", "onnxruntime_int8", "openvino_int8")


def speed(weights: Path, spec: str, seconds: float = 1.0) -> dict:
    """Per backend (those of ``SPEED_BACKENDS`` installed here): ms per face of the network alone
    (crops made, soft-argmax included) at batch 1 and 8 with the process's thread count, and, on
    the evaluation crops of ``spec``, the NME (outer eye corners, %) and the largest landmark
    and mean landmark deviation from torch eager in crop pixels (Euclidean, ``realtime.backends``'
    parity measure)."""

    model = load_model(weights).eval()
    data = open_dataset(spec)
    items = [item for item in LandmarkDataset(data, model.config.input_size, model.config.in_channels == 1)]
    crops = torch.stack([item["image"] for item in items])
    gt = np.stack([item["points"].numpy() for item in items])
    mask = np.stack([item["mask"].numpy() for item in items])
    norm = normalising_distance(gt, mask, get_layout(data.layout), "outer_eye")
    out, reference = {}, None
    for name, reason in available_backends("cpu").items():
        if name not in SPEED_BACKENDS or reason is not None:
            continue
        backend = make_backend(name, model, "cpu")
        points = backend(crops)[0].numpy()
        reference = points if reference is None else reference
        shift = np.linalg.norm(points - reference, axis=-1)
        row = {"nme_pct": 100 * float(np.nanmean(nme(points, gt, mask, norm))),
               "max_dev_px": float(shift.max()), "mean_dev_px": float(shift.mean())}
        for batch in (1, 8):
            row[f"b{batch}"] = seconds_per_call(backend, crops[:batch], "cpu", seconds) * 1e3 / batch
        out[name] = row
    return {"threads": torch.get_num_threads(), "backends": out}


def measure(args: argparse.Namespace, cfg: FitConfig) -> dict:
    weights = Path(args.ship)
    truth = cliptruth.ClipTruth.load(DEMO_TRUTH)
    last = Path(cfg.out) / "last.pt"
    seconds = None
    if last.is_file():
        seconds = load_checkpoint(last)["state"].get("seconds")
    fit_set, holdout = open_dataset(specs(Path(args.data))[0]), open_dataset(cfg.val)  # 300-W's part, not --extra-data
    init = Path(cfg.init) if cfg.init else None
    macs = {"model": multiply_adds(load_model(weights))}
    if init and init.is_file():
        macs["init"] = multiply_adds(load_model(init))
    return {"weights": str(weights), "hardware": hardware(), "train_seconds": seconds, "multiply_adds": macs,
            "separable": cfg.separable, "trunk_separable": cfg.trunk_separable, "init": str(init) if init else None,
            "counts": {"fit": len(fit_set), "val": len(holdout),
                       "val_photos": len({source_photo(s.ident) for s in holdout.samples})},
            "heldout": set_nme(weights, holdout), "train": set_nme(weights, fit_set),
            "init_heldout": set_nme(init, holdout) if init and init.is_file() else None,
            "pose_head_mae_deg": weights_info(weights).get("pose_head", {}).get("holdout_mae_deg"),
            "clip": cliptruth.score_clip(weights, DEMO_CLIP, truth),
            "speed": speed(weights, cfg.val), "fit_config": asdict(cfg)}


def _nme_row(name: str, r: dict) -> str:
    o, e = r["outer_eye"], r["eye_centres"]
    return (f"| {name} | {o['n']} | {o['mean_pct']:.2f} ({e['mean_pct']:.2f}) | {o['median_pct']:.2f} | "
            f"{o['failure@0.08_pct']:.1f} | {o['failure@0.10_pct']:.1f} |")


def architecture(results: dict) -> str:
    """One paragraph: the network and its cost, against the ``--init`` network's when they differ."""
    macs, separable = results.get("multiply_adds", {}), results.get("separable", 0)
    text = "Network: RCN+ (80 px grey, 5 levels) at half width (32 channels)"
    if separable:
        text += (f", the branch convs of its {separable} finest levels depthwise-separable (`--separable {separable}`: "
                 "factorised from the `--init` network's full convs, rank 1 per input channel, then trained)")
    trunk = results.get("trunk_separable", 0)
    if trunk:
        text += (f", and the trunk convs of its {trunk} level(s) below the finest likewise (`--trunk-separable {trunk}`)")
    if "model" in macs:
        text += f"; {macs['model'] / 1e6:.0f} M multiply-adds a face"
        if macs.get("init") and macs["init"] != macs["model"]:
            text += f" ({macs['init'] / 1e6:.0f} M for the `--init` network)"
    return text + "."


def licence(extra_data: str | None) -> str:
    """The weights' terms: 300-W's, and those of any faces trained on besides it."""
    if not extra_data:
        return "trained on 300-W: research and non-commercial use only"
    return (f"trained on 300-W and on {extra_data} (faces labelled by a teacher network, whose dataset's terms "
            "apply too; MTFL's are research only): research and non-commercial use only")


def _extra_data(fit_config: dict) -> str | None:
    """The ``--extra-data`` part of a run's training spec (what follows 300-W's part), or None."""
    parts = str(fit_config.get("data", "")).split(" + ", 1)
    return parts[1] if len(parts) == 2 else None


def render(results: dict, command: str, fit_command: str) -> str:
    h, c, s, n = results["heldout"], results["clip"], results["speed"], results["counts"]
    minutes = f"{results['train_seconds'] / 60:.0f} min" if results["train_seconds"] else "n/a"
    lines = [
        "# The bundled 68-point model", "",
        f"Generated by `{command}`; hardware: {results['hardware']}; training took {minutes}.", "",
        f"Data: 300-W's training split as far as `../shared/data/300w` holds it (AFW and part of HELEN's training "
        f"set, human-annotated), split by source photo: {n['fit']} faces to train on and a hold-out of {n['val']} "
        f"faces from {n['val_photos']} photos, never trained on. 300-W is for research and non-commercial use only, "
        "and so is this model."
        + (f" Also trained on `{extra}`, faces labelled by a teacher network (`python -m train.tools.make_pseudo_labels`), "
           "whose dataset's terms apply too." if (extra := _extra_data(results.get("fit_config", {}))) else ""), "",
        architecture(results), "",
        "## On the hold-out (human labels)", "",
        "NME in % of the outer-eye-corner distance (eye-centre distance in brackets), mean / median, and the share "
        "of faces above 8% and 10% (outer eye corners); soft-argmax, as the live pipeline decodes; the crop is the "
        f"training crop of the annotated points without jitter. The starting point (`--init` {results.get('init')}) "
        "is measured on the same faces.", "",
        "| model | n | NME outer eyes (eye centres) | median | > 8% | > 10% |", "|---|---|---|---|---|---|",
        _nme_row("this model, hold-out", h),
    ]
    if results.get("init_heldout"):
        lines.append(_nme_row("`--init` model, hold-out", results["init_heldout"]))
    lines.append(_nme_row("this model, its training faces", results["train"]))
    if results.get("pose_head_mae_deg"):
        pose = results["pose_head_mae_deg"]
        lines += ["", "Head-pose head (`--pose-source head`), fitted on the network's points for the training faces: "
                  "mean absolute error on the hold-out (and its mirror images) against solvePnP of the annotated "
                  "points on the mean face: " + ", ".join(f"{k} {v:.1f} deg" for k, v in pose.items()) + "."]
    lines += ["", "## On the bundled clip, through the whole live pipeline", "",
              "`python -m realtime.clipscore --weights ...`: the default detector, tracking, soft-argmax, One Euro "
              "smoothing at its defaults; NME against the clip's truth (dlib's points, not human ones; outer eye "
              "corners), jitter = RMS wobble of each point about its mean on the 60-frame still segment, in % of the "
              "outer-eye distance.", "",
              "| | face found | NME mean | NME median | still jitter |", "|---|---|---|---|---|"]
    for name in ("raw", "smoothed"):
        r = c[name]
        lines.append(f"| {name} | {100 * r['found']:.1f}% | {r['nme_pct']:.2f}% | {r['nme_median_pct']:.2f}% | "
                     f"{r['jitter_pct']:.3f}% |")
    lines += ["", "## Speed of the network (crops made, soft-argmax included)", "",
              f"ms per face with {s['threads']} thread(s); NME on the hold-out through each backend, and the largest "
              "and mean landmark shift from torch eager there (crop pixels; `--backend auto` takes only backends "
              "within 0.1 px).", "",
              "| backend | batch 1 | batch 8 | hold-out NME | max shift | mean shift |", "|---|---|---|---|---|---|"]
    for name, row in s["backends"].items():
        mean_shift = f"{row['mean_dev_px']:.3f} px" if "mean_dev_px" in row else "-"
        lines.append(f"| {name} | {row['b1']:.2f} | {row['b8']:.2f} | {row['nme_pct']:.2f}% | {row['max_dev_px']:.3f} px "
                     f"| {mean_shift} |")
    lines += ["", "## Training command", "", "```bash", fit_command, "```", "",
              "Ablations of this recipe (teacher init, ELT, width) at an equal short budget: "
              "[ablations_faces68.md](ablations_faces68.md) (`python -m train.faces68_ablate`).", ""]
    return "\n".join(lines)


def add_recipe_arguments(p: argparse.ArgumentParser, out: str, steps: int, docs_help: str,
                         init: str = "assets/rcn68_teacher.safetensors", separable: int = 0) -> None:
    """The options of the recipe's command lines (``train.faces68`` and ``train.faces68_ablate``)."""

    # defaults relative to the repository root, where the README runs this (the run's config records them as given)
    p.add_argument("--data", default="../shared/data/300w", help="the 300-W folder (afw/, helen/trainset/, ...)")
    p.add_argument("--init", default=init, help="weights to start from ('none': random)")
    p.add_argument("--out", default=out, help="the training run directory")
    p.add_argument("--steps", type=number(int, 1), default=steps, help="updates of batch 32")
    p.add_argument("--device", default="cpu", help="torch device for training (cpu, cuda)")
    p.add_argument("--separable", type=number(int, 0, 5), default=separable, help="depthwise-separable branch convs at this "
                   "many finest levels (an --init without them is factorised into them)")
    p.add_argument("--trunk-separable", type=number(int, 0, 4), default=0, help="depthwise-separable trunk convs at "
                   "this many levels from the second finest down (factorised from an --init without them)")
    p.add_argument("--docs", default="docs", help=docs_help)


def recipe_inputs(args: argparse.Namespace) -> Path | None:
    """``--init`` as a path (None for 'none'), after checking it and ``--data`` exist."""
    init = None if args.init == "none" else Path(args.init)
    if init is not None and not init.is_file():
        raise UserError(f"--init weights not found: {init}")
    if not Path(args.data).is_dir():
        raise UserError(f"300-W folder not found: {args.data} (give --data)")
    return init


def write_report(docs: Path, stem: str, numbers: dict, report: str) -> None:
    """``docs/STEM.json`` (every number) and ``docs/STEM.md`` (the report), atomically; the report
    printed too (this recipe's and its ablations' reports)."""
    write_text_atomic(docs / f"{stem}.json", json.dumps(numbers, indent=1, default=float) + "\n")
    write_text_atomic(docs / f"{stem}.md", report)
    print(report)
