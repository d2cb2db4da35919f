"""``python -m train adapt``: fine-tune shipped weights on a user's own unlabelled footage with ELT.

The frames come from a video file or a folder of images (faces found and cropped exactly as the
live pipeline does: BlazeFace, then tracking from the model's own landmarks), or from a dataset
spec (crops from its annotation, its landmark labels ignored). The model is then trained to be
equivariant on those crops (ELT, ``train.objectives.elt``, stop-gradient target), and two guards keep it
from drifting away from what it knew:

- an anchor: ``anchor_weight`` x the relative squared distance of the weights from the starting
  weights (L2-SP), and
- optionally a labelled set (``--labelled SPEC``) mixed into every update with its landmark loss.

Both loss terms are in crop pixels squared, so the weights read the same for any crop size.
Before and after, it measures the equivariance error on held-out crops (every 10th, never trained
on) and, when ``--check SPEC`` names a labelled set, the NME there. The result is a weights file
(the attribute head, if any, carried over unchanged), written atomically; an interrupted run
resumes from ``OUT.resume.pt`` (the training loop's checkpoint, ``train.engine.loop``, the same format and
stop-signal path as ``train fit``) and ``OUT.resume.crops.npy`` (the crops, so the video is not
decoded again).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from realtime.core.atomic import atomic_path, write_text_atomic
from realtime.core.errors import UserError
from realtime.io.capture import open_source
from realtime.models.decode import soft_argmax
from realtime.models.weights import (
    load_attribute_head,
    load_landmark_model,
    save_weights,
    torch_device,
    weights_info,
)
from realtime.pipeline.config import PipelineConfig
from realtime.pipeline.processor import FrameProcessor
from train.data.augment import AugmentConfig
from train.data.datasets import KINDS, open_dataset
from train.data.loader import LandmarkDataset
from train.engine.checkpoint import load_checkpoint, save_checkpoint
from train.engine.loop import run_updates
from train.evaluation.evaluate import evaluate_model
from train.objectives.elt import EltConfig, elt_loss, elt_residuals
from train.objectives.losses import softargmax_l2

HOLDOUT_EVERY = 10
SAVE_EVERY = 50


@dataclass(frozen=True)
class AdaptConfig:
    steps: int = 300
    batch_size: int = 16
    lr: float = 1e-4
    anchor_weight: float = 100.0
    labelled: str | None = None
    labelled_weight: float = 1.0
    max_crops: int = 2000
    stride: int = 1
    detector: str = "full"
    seed: int = 0
    elt_rotation: float = 20.0
    elt_translate: float = 0.125
    elt_zoom: float = 0.2

    def validate(self) -> None:
        for ok, message in ((self.steps >= 1, "steps must be >= 1"), (self.batch_size >= 1, "batch size must be >= 1"),
                            (self.lr > 0, "learning rate must be > 0"), (self.anchor_weight >= 0, "anchor weight must be >= 0"),
                            (self.labelled_weight >= 0, "labelled weight must be >= 0"),
                            (self.max_crops >= 2, "max crops must be >= 2"), (self.stride >= 1, "stride must be >= 1")):
            if not ok:
                raise UserError(message)
        self.elt()

    def elt(self) -> EltConfig:
        return EltConfig(rotation_deg=self.elt_rotation, translate=self.elt_translate, zoom=self.elt_zoom)


# --- crops ---------------------------------------------------------------------------------------

def crops_from_footage(weights: Path, source_spec: str, cfg: AdaptConfig) -> np.ndarray:
    """(N, S, S, C) uint8 face crops of a video or image folder, cropped as the live pipeline
    crops them (detector, then tracking from the model's own landmarks)."""

    processor = FrameProcessor.from_config(PipelineConfig(Path(weights), cfg.detector, face_model_3d=None))
    crops: list[np.ndarray] = []
    with open_source(source_spec) as source:
        for i, frame in enumerate(source):
            if i % cfg.stride:
                continue
            processor(frame)
            matrices = [roi.matrix for roi in processor.last_rois]
            if matrices:
                crops.extend(processor.landmarker.warp(frame.image, matrices))
            if len(crops) >= cfg.max_crops:
                break
    if not crops:
        raise UserError(f"no faces found in {source_spec}")
    return np.stack(crops[:cfg.max_crops])


def crops_from_dataset(spec: str, size: int, grey: bool, max_crops: int) -> np.ndarray:
    """(N, S, S, C) uint8 plain evaluation crops of a dataset spec; its labels are not used."""

    data = LandmarkDataset(open_dataset(spec), out_size=size, grey=grey)
    n = min(len(data), max_crops)
    images = [data[i]["image"] for i in range(n)]
    return (torch.stack(images).permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


def is_dataset_spec(text: str) -> bool:
    kind, sep, _ = text.partition(":")
    return kind.lower() in KINDS and (bool(sep) or kind.lower() == "synth") and not Path(text).exists()


# --- measurement ---------------------------------------------------------------------------------

def to_tensor(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div_(255.0)


def points_fn(model: torch.nn.Module):
    beta = float(model.config.beta)
    return lambda images: soft_argmax(model(images).float(), beta)[0]


@torch.no_grad()
def equivariance_error_px(model: torch.nn.Module, crops: np.ndarray, elt: EltConfig, seed: int = 1234) -> float:
    """Mean distance, in crop pixels, between the landmarks of T(crop) and T applied to the
    landmarks of the crop, over fixed random transforms (the same ones before and after); points
    that T carries out of the crop are left out. A mean of distances, not an RMS, so that a few
    failed crops do not hide what happens to the rest."""
    was_training = model.training
    model.eval()
    generator, predict = torch.Generator().manual_seed(seed), points_fn(model)
    device = next(model.parameters()).device
    distances = []
    for start in range(0, len(crops), 64):
        images = to_tensor(crops[start:start + 64]).to(device)
        residuals, inside = elt_residuals(predict, images, elt, generator=generator)
        distances.append(residuals.norm(dim=-1)[inside].cpu())
    model.train(was_training)
    return float(torch.cat(distances).mean())


def check_nme(model: torch.nn.Module, spec: str | None) -> float | None:
    if spec is None:
        return None

    was_training = model.training
    model.eval()
    report = evaluate_model(model, open_dataset(spec), ["eye_centres"], decoder="softargmax",
                            device=next(model.parameters()).device)
    model.train(was_training)
    return float(report.groups["all"]["eye_centres"]["mean"])


def relative_drift(model: torch.nn.Module, start: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum ||theta - theta0||^2 / sum ||theta0||^2 over the trainable parameters."""
    num = den = torch.zeros((), device=next(iter(start.values())).device)
    for name, p in model.named_parameters():
        if p.requires_grad:
            num = num + (p - start[name]).pow(2).sum()
            den = den + start[name].pow(2).sum()
    return num / den.clamp_min(1e-12)


# --- training ------------------------------------------------------------------------------------

def _labelled_batches(spec: str, model: torch.nn.Module, batch_size: int, seed: int, device: torch.device):
    data = LandmarkDataset(open_dataset(spec), out_size=model.config.input_size, grey=model.config.in_channels == 1,
                           aug=AugmentConfig(), seed=seed)
    if data.layout.num_points != model.config.num_points:
        raise UserError(f"--labelled has {data.layout.num_points} points per face, the model {model.config.num_points}")
    rng, epoch = np.random.default_rng(seed), 0
    while True:
        data.set_epoch(epoch)
        order = rng.permutation(len(data))
        for start in range(0, max(len(order) - batch_size + 1, 1), batch_size):
            items = [data[int(i)] for i in order[start:start + batch_size]]
            yield {k: torch.stack([it[k] for it in items]).to(device) for k in ("image", "points", "mask")}
        epoch += 1


def adapt(weights: str | Path, frames: str, out: str | Path, cfg: AdaptConfig, check: str | None = None,
          resume: bool = False, log=print, device: str = "cpu") -> dict:
    """Fine-tune ``weights`` on the faces of ``frames``; write ``out``; return the report. The
    model, its updates and the measurements run on ``device`` (the face crops are cut on the CPU,
    once, and moved a batch at a time); a run resumes exactly on the device it ran on."""
    cfg.validate()
    weights, out = Path(weights), Path(out)
    state_path = out.with_name(out.name + ".resume.pt")
    dev = torch_device(device)
    model = load_landmark_model(weights, dev)
    size, grey = int(model.config.input_size), int(model.config.in_channels) == 1
    start_state = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    step, before = 0, None
    crops_path = state_path.with_name(state_path.name[:-len(".pt")] + ".crops.npy")
    if resume and state_path.is_file():
        ckpt = load_checkpoint(state_path)
        saved = ckpt["fit_config"]
        if not ckpt["state"].get("adapt") or not crops_path.is_file():
            raise UserError(f"{state_path} is not an adaptation resume file; delete it or drop --resume")
        if saved != {"adapt_config": asdict(cfg), "weights": str(weights), "frames": frames}:
            raise UserError(f"{state_path} belongs to a run with other settings; delete it or drop --resume")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        crops, step, before = np.load(crops_path, allow_pickle=False), int(ckpt["step"]), ckpt["state"]["before"]
        log(f"resuming at update {step} of {cfg.steps}")
    else:
        t0 = time.monotonic()
        crops = (crops_from_dataset(frames, size, grey, cfg.max_crops) if is_dataset_spec(frames)
                 else crops_from_footage(weights, frames, cfg))
        log(f"{len(crops)} face crops from {frames} in {time.monotonic() - t0:.1f} s")
    held = crops[::HOLDOUT_EVERY]
    train = np.delete(crops, np.arange(0, len(crops), HOLDOUT_EVERY), axis=0)
    if len(train) == 0:
        raise UserError(f"too few face crops in {frames} ({len(crops)}) to adapt on")
    if before is None:
        before = {"equivariance_px": equivariance_error_px(model, held, cfg.elt()), "check_nme": check_nme(model, check)}
    labelled = _labelled_batches(cfg.labelled, model, cfg.batch_size, cfg.seed, dev) if cfg.labelled else None
    for _ in range(step if labelled is not None else 0):  # resume: skip the batches already used
        next(labelled)
    model.train()
    predict, elt, t0 = points_fn(model), cfg.elt(), time.monotonic()

    def save(step: int) -> None:
        """The training loop's checkpoint format (``train.engine.checkpoint``), the crops beside it (so
        the footage is not decoded again)."""
        if not crops_path.is_file():
            with atomic_path(crops_path) as tmp:
                np.save(tmp, crops, allow_pickle=False)
        save_checkpoint(state_path, model, optimizer, step,
                        {"adapt_config": asdict(cfg), "weights": str(weights), "frames": frames},
                        {"adapt": True, "before": before})

    def batches(step: int):
        """(0, batch) for update ``step`` on, drawn by update number: a resumed run draws the same
        crops and transforms."""
        while True:
            rng = np.random.default_rng([cfg.seed, step])
            x = to_tensor(train[rng.integers(0, len(train), cfg.batch_size)]).to(dev)
            transforms = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
            yield 0, (x, transforms, next(labelled) if labelled is not None else None)
            step += 1

    def loss_fn(batch) -> torch.Tensor:
        x, transforms, labelled_batch = batch
        loss = elt_loss(predict, x, elt, generator=transforms) * size ** 2 + cfg.anchor_weight * relative_drift(model, start_state)
        if labelled_batch is not None:
            logits = model(labelled_batch["image"]).float()
            loss = loss + cfg.labelled_weight * size ** 2 * softargmax_l2(logits, labelled_batch["points"],
                                                                            labelled_batch["mask"], model.config.beta)
        return loss

    def after_update(step: int, epoch: int, loss: torch.Tensor) -> None:
        if step % SAVE_EVERY == 0 and step < cfg.steps:
            save(step)

    run_updates(step, cfg.steps, batches(step), loss_fn, optimizer, after_update, save)
    after = {"equivariance_px": equivariance_error_px(model, held, elt), "check_nme": check_nme(model, check)}
    with torch.no_grad():
        drift = float(relative_drift(model, start_state))
    info = {"adapted_from": str(weights), "adapted_from_info": weights_info(weights),
            "adapt_frames": frames, "adapt_config": asdict(cfg), "adapt_crops": int(len(crops))}
    save_weights(model, out, info=info, attribute_head=load_attribute_head(weights))
    state_path.unlink(missing_ok=True)
    crops_path.unlink(missing_ok=True)
    report = {"crops": int(len(crops)), "held_out": int(len(held)), "steps": cfg.steps, "seconds": time.monotonic() - t0,
              "before": before, "after": after, "relative_drift": drift, "out": str(out)}
    log(format_report(report, check))
    return report


def format_report(report: dict, check: str | None) -> str:
    b, a = report["before"], report["after"]
    lines = [f"equivariance error on {report['held_out']} held-out crops (mean): {b['equivariance_px']:.2f} px before -> "
             f"{a['equivariance_px']:.2f} px after (crop pixels)",
             f"weights moved {100 * math.sqrt(report['relative_drift']):.2f}% (relative L2) in {report['steps']} updates, "
             f"{report['seconds']:.0f} s"]
    if check is not None:
        lines.append(f"NME (eye centres) on {check}: {100 * b['check_nme']:.2f}% before -> {100 * a['check_nme']:.2f}% after")
    lines.append(f"wrote {report['out']}")
    return "\n".join(lines)


def write_report_json(report: dict, path: str | Path) -> None:
    write_text_atomic(Path(path), json.dumps(report, indent=2))
