"""``python -m train fit``: train a landmark model (or the 2016 denoiser), resumably.

A run directory holds ``config.json`` (the resolved FitConfig), ``log.csv``, ``curves.png``,
``last.pt`` (resumable checkpoint), ``best.pt`` and ``best.safetensors`` (lowest validation NME).
Data order is a permutation per (seed, epoch) and augmentation is drawn per (seed, epoch, index),
so a resumed run continues exactly as if it had never stopped.

Semi-supervised runs (2018, any of ``landmark_fraction`` < 1, ``attribute_weight`` > 0,
``elt_weight`` > 0) also write ``subsets.json`` and draw each update's batches from the label pools
of ``train.objectives.regimes``: loss = landmark loss on the landmark-labelled pool + attribute_weight x
attribute loss (``train.objectives.attribute_loss``) on the attribute-labelled pool + elt_weight x ELT
(``train.objectives.elt``) on all images, and with ``distil_data`` (which needs ``distil_from``) +
distil_weight x the teacher's-maps term on a batch of that dataset's faces. The attribute head shares the
optimiser and the checkpoints, and is saved into ``best.safetensors``. These runs prepare their batches in
series on the main thread (``--workers`` is not used).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from realtime.core.atomic import write_text_atomic
from realtime.core.errors import UserError
from realtime.core.outpaths import Output, check_outputs, make_folders
from realtime.geometry.layouts import get_layout
from realtime.models.decode import argmax_decode, soft_argmax
from realtime.models.denoise import (
    Denoiser,
    DenoiserConfig,
    jitter_points,
    one_hot_maps,
)
from realtime.models.model import LandmarkNet, build_model
from realtime.models.presets import make_config
from realtime.models.weights import (
    describe_model,
    load_landmark_model,
    load_model,
    save_weights,
    torch_device,
)
from train.data.datasets import open_dataset
from train.data.datasets.landmark_set import LandmarkSet
from train.data.batches import batch_order, collate, update_batches
from train.data.loader import LandmarkDataset
from train.engine.checkpoint import load_checkpoint, save_checkpoint
from train.engine.fit_config import FitConfig, changed_settings
from train.engine.factorise import factorisable, factorise_into
from train.engine.narrow import narrow_into, narrowable
from train.engine.loop import run_updates
from train.engine.runlog import RunLog
from train.engine.semisup import SemiSupervision
from train.engine.speed import LoopSettings, StepTimer, apply_threads
from train.evaluation.metrics import nme, normalising_distance
from train.evaluation.predict import predict_dataset
from train.objectives.losses import l2_penalty, map_distillation, softargmax_l2, spatial_cross_entropy

log = logging.getLogger(__name__)


def split_validation(data: LandmarkSet, fraction: float, seed: int) -> tuple[LandmarkSet, LandmarkSet | None]:
    """Hold out ``fraction`` of ``data`` chosen by ``seed`` (the 2016 recipe holds out 10%)."""
    n_val = int(round(len(data) * fraction))
    if n_val == 0:
        return data, None
    order = np.random.default_rng(seed).permutation(len(data))
    pick = lambda idx: LandmarkSet(data.name, data.layout, [data.samples[i] for i in sorted(idx)], data.attribute_kinds)  # noqa: E731
    return pick(order[n_val:]), pick(order[:n_val])


def build(cfg: FitConfig, num_points: int, layout: str | None) -> LandmarkNet | Denoiser:
    if cfg.preset.startswith("denoiser"):
        return Denoiser(DenoiserConfig(num_points=num_points, kernel=cfg.denoiser_kernel, layout=layout))
    return build_model(make_config(
        cfg.preset, num_points=num_points, layout=layout, branches=cfg.branches, width_mult=cfg.width_mult,
        branch_kernel=cfg.branch_kernel, in_channels=3 if cfg.rgb else 1, upsample=cfg.upsample,
        normalise=cfg.normalise, branch_mask=cfg.branch_mask, beta=cfg.beta, separable=cfg.separable,
        level_widths=cfg.level_widths, trunk_separable=cfg.trunk_separable,
        decoder=cfg.decoder or ("argmax" if cfg.loss == "ce" else "softargmax"),
    ))


LUMA = (0.299, 0.587, 0.114)  # cv2's RGB -> grey weights, the conversion of the grey crops


def convert_input_channels(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``state`` of a grey-input network made to fit ``model``, its RGB twin (or the reverse): every
    tensor whose input-channel axis is 1 where ``model``'s is 3 is split by the luma weights (so a
    grey picture's response is kept: grey = sum of luma x channel), one that is 3 where ``model``'s
    is 1 is summed over it (an RGB network shown a grey picture as three equal channels). The
    z-score input normalisation pools the channels, so the start is close to, not exactly, the
    source network; training takes it from there."""
    target = model.state_dict()
    out = {}
    for key, value in state.items():
        want = target[key].shape
        if value.shape == want:
            out[key] = value
        elif value.dim() == 4 and value.shape[0] == want[0] and value.shape[2:] == want[2:] and (value.shape[1], want[1]) == (1, 3):
            out[key] = value * torch.tensor(LUMA, dtype=value.dtype).view(1, 3, 1, 1)
        elif value.dim() == 4 and value.shape[0] == want[0] and value.shape[2:] == want[2:] and (value.shape[1], want[1]) == (3, 1):
            out[key] = value.sum(dim=1, keepdim=True)
        else:
            raise UserError(f"cannot convert {key} from {tuple(value.shape)} to {tuple(want)}")
    return out


def init_from(model: LandmarkNet | Denoiser, path: str) -> None:
    """Load ``path``'s weights into ``model`` (a fine-tune); the architectures must agree exactly, or differ
    only in grey against RGB input (``convert_input_channels``)."""

    source = load_model(path)
    # the decoder (argmax or soft-argmax, and its beta) is how the maps are read, not weights
    source.config = replace(source.config, decoder=model.config.decoder, beta=model.config.beta)
    if factorisable(source, model):
        count = factorise_into(source, model)
        print(f"--init {path}: {count} conv(s) factorised into depthwise-separable ones (rank 1 per input channel)")
        return
    if narrowable(source, model):
        count = narrow_into(source, model)
        print(f"--init {path}: {count} conv(s) narrowed to the run's level widths (the strongest filters kept)")
        return
    if source.config != model.config and replace(source.config, in_channels=model.config.in_channels) == model.config:
        model.load_state_dict(convert_input_channels(source.state_dict(), model), strict=True)
        print(f"--init {path}: input channels {source.config.in_channels} -> {model.config.in_channels} "
              "(the first convolution's weights split by luma weights, or summed)")
        return
    if source.config != model.config:
        mine, theirs = model.config.__dict__, source.config.__dict__
        differ = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise UserError(f"--init {path} is another architecture: it holds {describe_model(source.config)}, this run "
                        f"builds {describe_model(model.config)} (differing: {', '.join(differ)}); start from weights of "
                        "the same preset, width and layout, or from none")
    model.load_state_dict(source.state_dict(), strict=True)


def make_optimizer(cfg: FitConfig, model: torch.nn.Module, *extra: torch.nn.Module) -> torch.optim.Optimizer:
    """One optimiser over ``model``'s parameters and then those of any ``extra`` modules."""
    params = [p for module in (model, *extra) for p in module.parameters()]
    if cfg.optimizer == "adadelta":  # the 2016 recipe: rho 0.95, eps 1e-8, no learning rate
        return torch.optim.Adadelta(params, lr=cfg.resolved_lr(), rho=0.95, eps=1e-8)
    return torch.optim.Adam(params, lr=cfg.resolved_lr())


@dataclass
class Trainer:
    cfg: FitConfig
    model: LandmarkNet | Denoiser
    optimizer: torch.optim.Optimizer
    train: LandmarkDataset
    val: LandmarkDataset | None
    semi: SemiSupervision | None = None
    device: torch.device = torch.device("cpu")
    channels_last: bool = False
    teacher: LandmarkNet | None = None  # ``FitConfig.distil_from``, frozen

    def _images(self, images: torch.Tensor) -> torch.Tensor:
        """Images in the model's memory order (NHWC under ``LoopSettings.channels_last``)."""
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def loss(self, batch: dict) -> torch.Tensor:
        """A plain batch, or (semi-supervised) one batch per label pool (``Pools.draw``), moved to
        the run's device here (augmentation stays on the CPU)."""
        cfg, model = self.cfg, self.model
        batch = to_device(batch, self.device)
        if isinstance(model, Denoiser):
            size = model.config.input_size
            noisy, moved = jitter_points(batch["points"], cfg.denoiser_moved, size)
            logits = model(one_hot_maps(noisy, size))
            return spatial_cross_entropy(logits, batch["points"], batch["mask"] & moved)
        if self.semi is not None:
            return self.semi.loss(batch, self._landmark_loss, self._points, self._distil_term) + self._l2()
        return self._landmark_loss(batch) + self._l2()

    def _landmark_loss(self, batch: dict) -> torch.Tensor:
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = self.model(self._images(batch["image"]))
        distil = 0.0
        if self.teacher is not None and cfg.distil_weight:
            distil = cfg.distil_weight * self._taught(logits, batch["image"])
        if cfg.loss == "ce":
            return spatial_cross_entropy(logits, batch["points"], batch["mask"]) + distil
        regression = softargmax_l2(logits.float(), batch["points"], batch["mask"], cfg.beta)
        if cfg.loss == "softargmax":
            return regression + distil
        return spatial_cross_entropy(logits, batch["points"], batch["mask"]) + cfg.softargmax_weight * regression + distil

    def _taught(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """``map_distillation`` of the student's ``logits`` against the frozen teacher's maps of
        the same ``images``, unweighted."""
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            taught = self.teacher(self._images(images))
        return map_distillation(logits, taught)

    def _distil_term(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's maps on crops with no labels (``FitConfig.distil_data``), unweighted."""
        if self.teacher is None:
            raise ValueError("distillation without a teacher")
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            logits = self.model(self._images(images))
        return self._taught(logits, images)

    def _l2(self) -> torch.Tensor:
        model = self.model
        l2_trunk, l2_branch, l2_out = self.cfg.resolved_l2()
        groups = [(l2_trunk, model.trunk_parameters()), (l2_branch, model.branch_parameters())]
        if hasattr(model, "branch_weights"):
            groups.append((l2_out, [model.branch_weights]))
        return l2_penalty(groups)

    def _points(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) -> (B, K, 2) soft-argmax landmarks, differentiable, in crop pixels."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            logits = self.model(self._images(images))
        return soft_argmax(logits.float(), self.cfg.beta)[0]

    @property
    def attribute_head(self) -> torch.nn.Module | None:
        return self.semi.head if self.semi is not None else None

    def validate(self) -> float:
        """Mean NME (eye-centre normaliser) on the validation set; the denoiser is scored on
        its repair of randomly moved keypoints (fixed noise)."""
        if self.val is None:
            return float("nan")
        layout = get_layout(self.val.landmark_set.layout)
        if isinstance(self.model, Denoiser):
            return self._validate_denoiser(layout)
        p = predict_dataset(self.model, self.val, batch_size=128, bf16=self.cfg.bf16, device=self.device)
        return float(np.nanmean(nme(p.pred, p.gt, p.mask, normalising_distance(p.gt, p.mask, layout, "eye_centres"))))

    @torch.no_grad()
    def _validate_denoiser(self, layout) -> float:
        self.model.eval()
        gen = torch.Generator().manual_seed(0)
        pts = torch.stack([self.val[i]["points"] for i in range(len(self.val))])
        mask = torch.stack([self.val[i]["mask"] for i in range(len(self.val))])
        size = self.model.config.input_size
        noisy, _ = jitter_points(pts, self.cfg.denoiser_moved, size, gen)
        logits = self.model(one_hot_maps(noisy, size).to(self.device))
        pred = argmax_decode(logits)[0].cpu().numpy()
        self.model.train()
        gt, m = pts.numpy(), mask.numpy()
        return float(np.nanmean(nme(pred, gt, m, normalising_distance(gt, m, layout, "eye_centres"))))


def _teacher(cfg: FitConfig) -> LandmarkNet:
    """``cfg.distil_from``, frozen; a UserError when it is missing or reads other images or maps
    than the run's model (points, input size, grey or colour)."""
    teacher = load_landmark_model(cfg.distil_from).eval().requires_grad_(False)
    wanted = (3 if cfg.rgb else 1, cfg.num_points or teacher.config.num_points)
    got = (teacher.config.in_channels, teacher.config.num_points)
    if got != wanted:
        raise UserError(f"--distil-from {cfg.distil_from}: it reads {got[0]}-channel crops into {got[1]} maps, "
                        f"this run {wanted[0]}-channel crops into {wanted[1]}")
    return teacher


def _prepare(cfg: FitConfig, run_dir: Path, resume: bool, device: torch.device,
             loop: LoopSettings = LoopSettings()) -> tuple[Trainer, int, dict]:
    teacher = _teacher(cfg) if cfg.distil_from else None  # its errors before the data is read
    data = open_dataset(cfg.data)
    if len(data) == 0:
        raise UserError(f"dataset {cfg.data!r} has no samples")
    distil_set = open_dataset(cfg.distil_data) if cfg.distil_data else None  # read before anything is written
    if distil_set is not None and len(distil_set) == 0:
        raise UserError(f"--distil-data {cfg.distil_data!r} has no faces")
    if cfg.val:
        val_set: LandmarkSet | None = open_dataset(cfg.val)
    else:
        data, val_set = split_validation(data, cfg.val_fraction, cfg.seed)
    get_layout(data.layout)
    num_points = data.samples[0].points.shape[0]
    torch.manual_seed(cfg.seed)
    model = build(cfg, num_points, data.layout)
    if cfg.init and not resume:
        init_from(model, cfg.init)
    aug = cfg.augment_config()
    grey = not cfg.rgb
    # decoded once and kept in memory: 300-W's and MTFL's crops are small (<= 256 px, ~0.2 MB a face)
    def preload(faces: LandmarkSet) -> bool:
        return len(faces) <= 50000 and faces.samples[0].image is None

    train_ds = LandmarkDataset(data, grey=grey, aug=aug, seed=cfg.seed, preload=preload(data))
    val_ds = LandmarkDataset(val_set, grey=grey, aug=None, preload=preload(data)) if val_set else None
    # cropped and jittered as the training faces (by their own layout's box: a 5-point set frames a 68-point run's crops)
    distil_ds = (LandmarkDataset(distil_set, grey=grey, aug=aug, seed=cfg.seed, preload=preload(distil_set))
                 if distil_set is not None else None)
    semi = (SemiSupervision.setup(cfg, train_ds, model.config, run_dir, collate, distil_ds)
            if cfg.semi_supervised else None)
    head = semi.head if semi is not None else None
    model.to(device)
    channels_last = loop.channels_last and isinstance(model, LandmarkNet)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if head is not None:
        head.to(device)
    optimizer = make_optimizer(cfg, model, *([head] if head is not None else []))
    step, state = 0, {"best": float("inf"), "best_step": -1}
    if resume:
        ckpt = load_checkpoint(run_dir / "last.pt")
        changed = changed_settings(ckpt["fit_config"], cfg)
        if changed:
            raise UserError(f"cannot resume {run_dir}: settings differ from the checkpoint's ({', '.join(changed)})")
        model.load_state_dict(ckpt["model"])
        if head is not None:
            head.load_state_dict(ckpt["attribute_head"]["state"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        step, state = ckpt["step"], ckpt["state"]
    if teacher is not None:
        if (teacher.config.num_points, teacher.config.input_size) != (model.config.num_points, model.config.input_size):
            raise UserError(f"--distil-from {cfg.distil_from}: its maps ({teacher.config.num_points} points, "
                            f"{teacher.config.input_size} px) do not match this run's ({model.config.num_points}, "
                            f"{model.config.input_size} px)")
        teacher.to(device)
        if channels_last:
            teacher.to(memory_format=torch.channels_last)
    return Trainer(cfg, model, optimizer, train_ds, val_ds, semi, device, channels_last, teacher), step, state


def training_precision(device: torch.device) -> None:
    """Training's precision policy on CUDA: TF32 on for fp32 convolutions and matmuls (a training
    step tolerates a 10-bit mantissa, and bf16 autocast, ``--bf16``, goes further); cuDNN's
    autotuner on (the batch shape is fixed). Inference turns TF32 off again for its parity
    (``realtime.backends.base.inference_precision``). Nothing changes on a CPU."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.benchmark = True


def fit(cfg: FitConfig, resume: bool = False, stop_after: int | None = None, progress: bool = True,
        device: str = "cpu", loop: LoopSettings = LoopSettings(), minutes: float | None = None,
        timer: StepTimer | None = None, save_at_stop: bool = True) -> dict:
    """Train until ``cfg.steps`` updates (or ``stop_after`` more, for tests) on ``device`` (``cpu``,
    ``cuda``, ``cuda:N``; the device is a property of the session, not of the run, so a run may be
    resumed elsewhere, though bit-exact continuation holds only on the same device). ``loop``: how
    the updates use the machine (``train.engine.speed``; like the device, not part of the run).
    ``minutes``: stop after the update in flight once this much time has passed and save (one chunk
    of a long run; ``--resume`` continues it). ``timer`` collects the time split of the updates;
    ``save_at_stop=False`` skips the checkpoint when ``stop_after`` ends the run (the bench's scratch
    runs). Returns a summary."""

    cfg.validate()
    dev = torch_device(device)
    training_precision(dev)
    apply_threads(loop)
    until = time.monotonic() + 60 * minutes if minutes is not None else None
    run_dir = Path(cfg.out)
    missing = check_outputs([Output(run_dir, "--out", folder=True)], inputs=[cfg.init])
    if not resume and (run_dir / "last.pt").exists():
        raise UserError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    make_folders(missing, quiet=True)
    try:
        trainer, step, state = _prepare(cfg, run_dir, resume, dev, loop)
    except BaseException:  # bad data, a refused checkpoint, Ctrl-C: leave no empty run folder behind
        for folder in reversed(missing):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        raise
    if cfg.epochs is not None:  # an epoch is one pass over the (post-split) training set
        cfg = replace(cfg, steps=cfg.epochs * len(batch_order(len(trainer.train), cfg.batch_size, cfg.seed, 0)))
        trainer.cfg = cfg
    write_text_atomic(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    runlog = RunLog(run_dir, resume_step=step if resume else None)
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    bar = _progress(progress, step, cfg.steps)
    start_seconds = state.setdefault("seconds", 0.0)
    t0 = time.monotonic() - start_seconds
    trainer.model.train()
    if trainer.attribute_head is not None:
        trainer.attribute_head.train()

    def after_update(step: int, epoch: int, loss: torch.Tensor) -> None:
        state["seconds"] = time.monotonic() - t0
        row = dict(step=step, epoch=epoch, train_loss=f"{loss.item():.6g}", seconds=f"{state['seconds']:.1f}")
        if trainer.semi is not None:
            row.update({name: f"{value:.6g}" for name, value in trainer.semi.last_terms.items()})
        if step % cfg.eval_every == 0 or step == cfg.steps:
            _evaluate_and_save(trainer, run_dir, step, state, row)
        elif step % 10 == 0:
            runlog.add(**row)
        if "val_nme" in row:
            runlog.add(**row)
            runlog.plot(run_dir / "curves.png", f"{cfg.preset} on {cfg.data}")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4g}", best=f"{100 * state['best']:.2f}%")

    try:
        with _batches(trainer, step, loop.workers) as batches:
            step = run_updates(step, end, batches, trainer.loss, trainer.optimizer, after_update,
                               save=lambda step: _save_last(trainer, run_dir, step, state), lr_at=cfg.lr_at,
                               until=until, timer=timer)
    finally:
        if bar is not None:
            bar.close()
    if step % cfg.eval_every and step != cfg.steps and save_at_stop:  # stopped between evaluations (stop_after, minutes)
        _save_last(trainer, run_dir, step, state)
    return {"step": step, "best_val_nme": state["best"], "best_step": state["best_step"], "seconds": state["seconds"],
            "start_seconds": start_seconds}


@contextlib.contextmanager
def _batches(trainer: Trainer, step: int, workers: int):
    """(epoch, batch) for updates ``step``, ``step + 1``, ...: the plain loader's batches
    (``train.data.batches``, prepared by ``workers`` processes), or (semi-supervised) one batch per
    label pool, drawn by update number (in series)."""
    if trainer.semi is None:
        with update_batches(trainer.train, trainer.cfg.batch_size, trainer.cfg.seed, step, workers) as batches:
            yield batches
        return
    pools = trainer.semi.pools

    def drawn(step: int):
        while True:
            yield pools.epoch(step), pools.draw(step)
            step += 1

    yield drawn(step)


def _save_last(trainer: Trainer, run_dir: Path, step: int, state: dict) -> None:
    save_checkpoint(run_dir / "last.pt", trainer.model, trainer.optimizer, step, trainer.cfg.to_dict(), state,
                    attribute_head=trainer.attribute_head)


def _evaluate_and_save(trainer: Trainer, run_dir: Path, step: int, state: dict, row: dict) -> None:
    score = trainer.validate()
    row["val_nme"] = "" if math.isnan(score) else f"{score:.6g}"
    better = math.isnan(score) or score < state["best"]
    if better:
        state["best"], state["best_step"] = (score if not math.isnan(score) else state["best"]), step
        save_checkpoint(run_dir / "best.pt", trainer.model, None, step, trainer.cfg.to_dict(), state,
                        attribute_head=trainer.attribute_head)
        save_weights(trainer.model, run_dir / "best.safetensors", _info(trainer.cfg, step, score),
                     attribute_head=trainer.attribute_head)
    _save_last(trainer, run_dir, step, state)


def _info(cfg: FitConfig, step: int, score: float) -> dict:
    return {"trained_on": cfg.data, "steps": step, "val_nme": None if math.isnan(score) else score,
            "fit_config": cfg.to_dict()}


def to_device(batch, device: torch.device):
    """``batch`` (a dict of tensors, or a dict of such dicts / None: the semi-supervised pools)
    with every tensor on ``device``; unchanged on the CPU."""
    if device.type == "cpu" or batch is None:
        return batch
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    return {key: to_device(value, device) for key, value in batch.items()}


def _progress(enabled: bool, step: int, total: int):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=step, unit="upd", dynamic_ncols=True, disable=None)
