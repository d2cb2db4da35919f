"""``python -m train.faces68``: the bundled 68-point real-face model, from photos to shipped weights.

One command, resumable at every stage (a finished stage is skipped, a stopped run continues):

1. the real-face set (``train.faceset build``: teacher labels, pose, identities, held-out people)
   into ``--set`` unless it is already there;
2. training (``train.fit``) with ``RECIPE``: RCN+ (the 2018 paper's uniform encoder/decoder with
   a soft-argmax head) at half width (32 channels: the live budget), 2016 spatial cross-entropy
   on the teacher's points (it trained 2x faster than the soft-argmax L2 in a 300-update pilot:
   12.9% vs 23.4% validation NME, eye centres), heavy augmentation with mirroring, and head pose as
   a sequential-multitasking attribute (small weight: it trains the shipped pose head while the
   landmarks come from the labels). No ELT here: every face already has landmark labels and
   there are no other faces to use it on; ``python -m train adapt`` brings ELT to a user's footage;
3. export of the LAST checkpoint to ``--ship`` (the held-out people are the validation set that
   the run logs, so choosing the best checkpoint on it would flatter the reported numbers), with
   the tracker's re-detect threshold calibrated on the training faces (``calibrate_min_confidence``)
   stored in the file;
4. the model card's numbers into ``--docs/results_faces68.md`` and ``.json``: NME against the
   teacher on the held-out people and on the training people, NME and still-segment jitter on
   the bundled clip through the whole live pipeline (``realtime.clipscore``), and speed.

``--report-only`` re-measures an existing ``--ship`` file without training.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from realtime.atomic import write_text_atomic
from realtime.errors import UserError, exit_status
from train.config import FitConfig

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHIP = ROOT / "assets" / "rcn68_faces.safetensors"
DEFAULT_FACES = ROOT.parent / "shared" / "data" / "faces"
NORMS = ["outer_eye", "eye_centres"]
GOLDEN = ROOT / "tests" / "fixtures" / "golden68.json"
GOLDEN_TOLERANCE_PX = 0.25


def golden_points(weights: Path) -> tuple[np.ndarray, np.ndarray]:
    """The model's (68, 2) points on frame 0 of the bundled clip, from the crop of the truth's own
    face box (no detector, no tracking: the network alone), and the truth's points."""
    from realtime.capture import VideoFileSource
    from realtime.clipscore import DEFAULT_CLIP, ClipTruth
    from realtime.crops import crop_matrix, face_box_from_points
    from realtime.landmarker import Landmarker
    from realtime.layouts import get_layout

    truth = ClipTruth.load(DEFAULT_CLIP.with_name("demo_truth.json")).points[0]
    with VideoFileSource(DEFAULT_CLIP) as source:
        frame = next(iter(source)).image
        source.stop()
    landmarker = Landmarker(weights)
    matrix = crop_matrix(*face_box_from_points(truth, np.ones(len(truth), bool), get_layout("ibug68")),
                         out_size=landmarker.input_size)
    points, _ = landmarker(frame, [matrix])
    return points[0], truth


def write_golden(weights: Path, path: Path = GOLDEN) -> None:
    """Store the shipped model's golden points (``tests/test_golden68.py`` checks them)."""
    from train.teacher_cli import json_text, sha256

    points, _ = golden_points(weights)
    write_text_atomic(path, json_text({
        "weights": weights.name, "weights_sha256": sha256(weights), "frame": 0, "tolerance_px": GOLDEN_TOLERANCE_PX,
        "made_by": "python -m train.faces68 (write_golden), after export", "points": np.round(points, 3).tolist()}))


def recipe(data_dir: Path, out: Path, steps: int) -> FitConfig:
    """The training run's configuration (module docstring)."""
    return FitConfig(
        preset="rcnplus", width_mult=0.5, data=f"folder:{data_dir / 'train'}?layout=ibug68",
        val=f"folder:{data_dir / 'heldout'}?layout=ibug68", out=str(out), loss="ce", optimizer="adam",
        batch_size=32, steps=steps, eval_every=250, bf16=True, augment="heavy", mirror=0.5, rotation=25,
        attribute_weight=0.1,
    )


def ensure_set(args: argparse.Namespace) -> dict:
    """The set's manifest, building the set first when it is missing."""
    manifest = Path(args.set) / "faceset.json"
    if not manifest.is_file():
        from train import faceset

        print(f"[faces68] building the real-face set in {args.set}", flush=True)
        faceset.build(faceset.parse_args(["build", "--faces", str(args.faces), "-o", str(args.set)]))
    return json.loads(manifest.read_text(encoding="utf-8"))


def calibrate_min_confidence(weights: Path, spec: str) -> dict[str, float]:
    """The tracker's re-detect threshold for this model's score scale: halfway between the 5th
    percentile of the mean point score on faces (the evaluation crops of ``spec``) and the 95th
    percentile on the same crops moved sideways by half a face (a track drifting off its face)."""
    from realtime.crops import crop_matrix, face_box_from_points
    from realtime.landmarker import Landmarker
    from realtime.layouts import get_layout
    from train.datasets import open_dataset
    from train.datasets.base import sample_image

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
    import torch

    from realtime.atomic import atomic_path
    from realtime.backends.base import Decoded
    from realtime.backends.exported import export_onnx

    net = Decoded(model.eval(), "softargmax", float(model.config.beta))
    example = torch.rand(2, model.config.in_channels, model.config.input_size, model.config.input_size)
    with atomic_path(path) as tmp:
        export_onnx(net, example, tmp)


def ship(run: Path, out: Path, calibration_spec: str) -> None:
    """Export the last checkpoint, then store the calibrated re-detect threshold in its info."""
    from realtime.weights import load_attribute_head, load_model, save_weights, weights_info
    from train.export import export

    export(run / "last.pt", out)
    calibration = calibrate_min_confidence(out, calibration_spec)
    info = {**weights_info(out), "track_min_confidence": round(calibration["threshold"], 4),
            "track_min_confidence_from": {k: round(v, 4) for k, v in calibration.items()}}
    model = load_model(out)
    save_weights(model, out, info, attribute_head=load_attribute_head(out))
    write_onnx(model, out.with_suffix(".onnx"))
    print(f"[faces68] exported {run / 'last.pt'} -> {out}; re-detect below a mean point score of "
          f"{info['track_min_confidence']} (faces p5 {calibration['face_p5']:.3f}, drifted p95 "
          f"{calibration['drifted_p95']:.3f})", flush=True)


def teacher_nme(weights: Path, spec: str) -> dict[str, dict[str, float]]:
    """Mean, median and failure rate of NME (%) per normaliser on a folder set."""
    from realtime.weights import load_model
    from train.datasets import open_dataset
    from train.evaluate import evaluate_model

    # soft-argmax, as the live pipeline decodes (the file's own decoder is argmax: cross-entropy training)
    report = evaluate_model(load_model(weights), open_dataset(spec), NORMS, decoder="softargmax",
                            thresholds=(0.08, 0.10))
    summary = report.groups["all"]
    return {k: {"n": summary[k]["n"], "mean_pct": 100 * summary[k]["mean"], "median_pct": 100 * summary[k]["median"],
                "failure@0.08_pct": 100 * summary[k]["failure@0.08"]} for k in NORMS}


SPEED_BACKENDS = ("eager", "onnxruntime", "openvino", "openvino_bf16", "onnxruntime_int8", "openvino_int8")


def speed(weights: Path, spec: str, seconds: float = 1.0) -> dict:
    """Per backend (those of ``SPEED_BACKENDS`` installed here): ms per face of the network alone
    (crops made, soft-argmax included) at batch 1 and 8 with the process's thread count, and, on
    the evaluation crops of ``spec``, the NME (outer eye corners, %) and the largest landmark
    and mean landmark deviation from torch eager in crop pixels (Euclidean, ``realtime.backends``'
    parity measure)."""
    import torch

    from realtime.backends import available_backends, make_backend
    from realtime.bench import seconds_per_call
    from realtime.layouts import get_layout
    from realtime.weights import load_model
    from train.datasets import open_dataset
    from train.loader import LandmarkDataset
    from train.metrics import nme, normalising_distance

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


def measure(args: argparse.Namespace, cfg: FitConfig, manifest: dict) -> dict:
    from realtime import clipscore
    from train.reproduce import hardware

    weights = Path(args.ship)
    truth = clipscore.ClipTruth.load(clipscore.DEFAULT_CLIP.with_name("demo_truth.json"))
    clip = clipscore.score_clip(weights, clipscore.DEFAULT_CLIP, truth)
    last = Path(cfg.out) / "last.pt"
    seconds = None
    if last.is_file():
        from train.checkpoint import load_checkpoint

        seconds = load_checkpoint(last)["state"].get("seconds")
    return {"weights": str(weights), "hardware": hardware(), "train_seconds": seconds,
            "set_counts": manifest["counts"], "heldout": teacher_nme(weights, cfg.val),
            "train": teacher_nme(weights, cfg.data), "clip": clip, "speed": speed(weights, cfg.val),
            "fit_config": asdict(cfg)}


def render(results: dict, command: str, fit_command: str) -> str:
    h, t, c, s = results["heldout"], results["train"], results["clip"], results["speed"]
    counts = results["set_counts"]
    minutes = f"{results['train_seconds'] / 60:.0f} min" if results["train_seconds"] else "n/a"
    lines = [
        "# The bundled 68-point real-face model", "",
        f"Generated by `{command}`; hardware: {results['hardware']}; training took {minutes}.", "",
        f"Data: {counts['train']['faces']} training faces of {counts['train']['identities']} people and "
        f"{counts['heldout']['faces']} held-out faces of {counts['heldout']['identities']} other people "
        "(the astronaut among them), labelled by the dlib teacher (`python -m train.faceset build`).", "",
        "## Against the teacher's labels", "",
        "NME in % of the outer-eye-corner distance (eye-centre distance in brackets), mean / median, and the share "
        "of faces above 8% (outer eye corners); soft-argmax, as the live pipeline decodes. The evaluation crop is the "
        "training crop without jitter.", "",
        "| faces | n | NME outer eyes (eye centres) | median | > 8% |", "|---|---|---|---|---|",
    ]
    for name, r in (("held-out people", h), ("training people", t)):
        o, e = r["outer_eye"], r["eye_centres"]
        lines.append(f"| {name} | {o['n']} | {o['mean_pct']:.2f} ({e['mean_pct']:.2f}) | {o['median_pct']:.2f} | "
                     f"{o['failure@0.08_pct']:.1f} |")
    lines += ["", "## On the bundled clip, through the whole live pipeline", "",
              "`python -m realtime.clipscore --weights ...`: BlazeFace short range, tracking, soft-argmax, "
              "One Euro smoothing at its defaults; NME against the clip's truth (outer eye corners), jitter = RMS "
              "wobble of each point about its mean on the 60-frame still segment, in % of the outer-eye distance.", "",
              "| | face found | NME mean | NME median | still jitter |", "|---|---|---|---|---|"]
    for name in ("raw", "smoothed"):
        r = c[name]
        lines.append(f"| {name} | {100 * r['found']:.1f}% | {r['nme_pct']:.2f}% | {r['nme_median_pct']:.2f}% | "
                     f"{r['jitter_pct']:.3f}% |")
    lines += ["", "## Speed of the network (crops made, soft-argmax included)", "",
              f"ms per face with {s['threads']} thread(s); NME on the held-out crops through each backend, and the "
              "largest and mean landmark shift from torch eager there (crop pixels; `--backend auto` takes only "
              "backends within 0.1 px).", "",
              "| backend | batch 1 | batch 8 | held-out NME | max shift | mean shift |", "|---|---|---|---|---|---|"]
    for name, row in s["backends"].items():
        mean_shift = f"{row['mean_dev_px']:.3f} px" if "mean_dev_px" in row else "-"
        lines.append(f"| {name} | {row['b1']:.2f} | {row['b8']:.2f} | {row['nme_pct']:.2f}% | {row['max_dev_px']:.3f} px "
                     f"| {mean_shift} |")
    lines += ["", "## Training command", "", "```bash", fit_command, "```", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m train.faces68", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--faces", default=str(DEFAULT_FACES), help="the photos (only needed to build the set)")
    p.add_argument("--set", default="data/faces68", help="the real-face set (built when missing)")
    p.add_argument("--out", default="runs/faces68", help="the training run directory")
    p.add_argument("--steps", type=int, default=3000, help="updates of batch 32")
    p.add_argument("--ship", default=str(DEFAULT_SHIP), help="where the exported weights go")
    p.add_argument("--docs", default="docs", help="where results_faces68.md/.json go")
    p.add_argument("--report-only", action="store_true", help="measure --ship as it is: no set build, no training")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from train.reproduce import command_line, run_or_resume

    cfg = recipe(Path(args.set), Path(args.out), args.steps)
    cfg.validate()
    if args.report_only:
        if not Path(args.ship).is_file():
            raise UserError(f"--report-only needs the weights: {args.ship} not found")
        manifest_path = Path(args.set) / "faceset.json"
        if not manifest_path.is_file():
            raise UserError(f"--report-only needs the set's manifest: {manifest_path} not found")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    else:
        manifest = ensure_set(args)
        run_or_resume(cfg)
        ship(Path(args.out), Path(args.ship), cfg.data)
        if Path(args.ship).resolve() == DEFAULT_SHIP:
            write_golden(DEFAULT_SHIP)
    results = measure(args, cfg, manifest)
    command = " ".join(["python -m train.faces68", *args.argv])
    docs = Path(args.docs)
    write_text_atomic(docs / "results_faces68.json", json.dumps(results, indent=1, default=float) + "\n")
    report = render(results, command, command_line(cfg))
    write_text_atomic(docs / "results_faces68.md", report)
    print(report)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    return exit_status(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
