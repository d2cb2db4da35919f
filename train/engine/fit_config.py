"""The resolved configuration of a training run, saved beside it as ``config.json``."""
from __future__ import annotations

import argparse

import dataclasses
import math
from dataclasses import dataclass

from realtime.core.errors import UserError
from train.data.augment import AugmentConfig
from train.objectives.elt import EltConfig

# L2 coefficients (trunk, branches, SumNet branch weights) of the 2016 code's README (the authors' released code).
PAPER_L2 = {
    "sumnet_mtfl": (1e-6, 1e-4, 1e-14),
    "sumnet_300w": (1e-8, 1e-12, 0.0),
    "rcn_mtfl": (1e-12, 1e-8, 0.0),
    "rcn_300w": (0.01, 1e-12, 0.0),
}
# Landmark losses: the 2016 spatial cross-entropy, the 2018 soft-argmax L2 regression, or their sum
# (CE + softargmax_weight x L2; the network is decoded by soft-argmax live, so the sum trains the
# decoder that runs while keeping CE's sharp, well-conditioned heat maps).
LOSSES = ("ce", "softargmax", "ce+softargmax")



def counts_arg(text: str) -> tuple[int, ...]:
    """A command line's comma list of whole numbers >= 1 (``--level-widths``, ``--attr-hidden``)."""
    try:
        counts = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers >= 1, e.g. 16,32,32; got {text!r}")
    return counts

@dataclass(frozen=True)
class FitConfig:
    """Everything that defines a run; ``steps`` is the total number of updates."""

    preset: str
    data: str
    out: str
    val: str | None = None
    val_fraction: float = 0.1
    loss: str = "ce"
    optimizer: str = "adadelta"
    lr: float | None = None
    # "constant", or "cosine": the learning rate falls from lr to lr / 100 along a half cosine over
    # ``steps`` (a function of the update number, so resuming keeps it; changing ``steps`` on resume
    # reshapes the rest of the curve)
    lr_schedule: str = "constant"
    # start from these shipped weights (same architecture; a fine-tune) instead of random ones
    init: str | None = None
    batch_size: int = 64
    steps: int = 1000
    epochs: int | None = None  # when set, steps = epochs x batches per epoch (resolved by fit)
    eval_every: int = 100
    bf16: bool = False
    seed: int = 54621
    l2_trunk: float | None = None
    l2_branch: float | None = None
    l2_out: float | None = None
    # model variant
    num_points: int | None = None
    branches: int | None = None
    width_mult: float = 1.0
    branch_kernel: int | None = None
    # depthwise-separable branch convs at the finest levels (ModelConfig.separable); an --init
    # with fewer is factorised into them (train.engine.factorise)
    separable: int = 0
    # depthwise-separable trunk convs from level 1 down (ModelConfig.trunk_separable); factorised alike
    trunk_separable: int = 0
    # channels of every conv per level, finest first (after width_mult); an --init of wider levels
    # keeps its strongest channels (train.engine.narrow)
    level_widths: tuple[int, ...] | None = None
    # a trained landmark network whose maps the run also learns (train.objectives.losses.map_distillation,
    # distil_weight x its KL per keypoint map, beside the loss against the labels)
    distil_from: str | None = None
    distil_weight: float = 1.0
    # a dataset spec of faces learned only through the teacher's maps (their labels frame the crop and
    # are never a target): each update draws a batch of them beside the labelled one (the "distil"
    # pool, train.objectives.regimes.Pools), distil_weight x the same KL on it
    distil_data: str | None = None
    rgb: bool = False
    upsample: str | None = None
    normalise: str | None = None
    branch_mask: tuple[int, ...] | None = None
    beta: float = 1.0
    softargmax_weight: float = 1e6  # loss 'ce+softargmax': CE + this x soft-argmax L2 (about equal parts on a trained model)
    decoder: str | None = None
    # augmentation: "2016" (the paper's jitter) or "heavy" (AugmentConfig.heavy: wider geometry,
    # perspective, random occluder fill, camera photometry); rotation, occluder and mirror apply to both
    augment: str = "2016"
    rotation: int = 40
    occluder: bool = True
    mirror: float = 0.0
    # denoiser
    denoiser_kernel: int = 45
    denoiser_moved: int = 35
    # semi-supervision (2018): label regimes, attribute loss (sequential multitasking), ELT.
    # The defaults (all labels, both weights 0) train exactly as without these fields.
    landmark_fraction: float = 1.0
    attribute_fraction: float = 1.0
    subset_seed: int = 0
    attribute_weight: float = 0.0
    attr_hidden: tuple[int, ...] = (256, 256)
    attr_dropout: float = 0.25
    attr_inputs: str = "centred"
    elt_weight: float = 0.0
    elt_rotation: float = 20.0
    elt_translate: float = 0.125
    elt_zoom: float = 0.2
    elt_mirror: float = 0.0
    elt_target: str = "detached"

    @property
    def semi_supervised(self) -> bool:
        """True when any semi-supervised setting is on (training then draws from label pools)."""
        return (self.landmark_fraction < 1.0 or self.attribute_weight > 0 or self.elt_weight > 0
                or self.distil_data is not None)

    def elt_config(self) -> EltConfig:
        """The ELT transform ranges (raises UserError for impossible ones)."""
        return EltConfig(rotation_deg=self.elt_rotation, translate=self.elt_translate, zoom=self.elt_zoom,
                         mirror_prob=self.elt_mirror, target=self.elt_target)

    def augment_config(self) -> AugmentConfig:
        """The training jitter of ``augment`` with this run's rotation, occluder and mirror."""
        if self.augment == "heavy":
            return AugmentConfig.heavy(rotation_deg=self.rotation, mirror_prob=self.mirror, occlude=self.occluder)
        return AugmentConfig(rotation_deg=self.rotation, occlude=self.occluder, mirror_prob=self.mirror)

    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else (1.0 if self.optimizer == "adadelta" else 1e-3)

    def lr_at(self, step: int) -> float:
        """The learning rate of update ``step`` (0-based) under ``lr_schedule``."""
        base = self.resolved_lr()
        if self.lr_schedule == "constant":
            return base
        progress = min(step / max(self.steps, 1), 1.0)
        return base * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress)))

    def resolved_l2(self) -> tuple[float, float, float]:
        trunk, branch, out = PAPER_L2.get(self.preset, (0.0, 0.0, 0.0))
        pick = lambda given, default: default if given is None else given  # noqa: E731
        return pick(self.l2_trunk, trunk), pick(self.l2_branch, branch), pick(self.l2_out, out)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(raw: dict) -> "FitConfig":
        raw = dict(raw)
        for key in ("branch_mask", "level_widths"):
            if raw.get(key) is not None:
                raw[key] = tuple(raw[key])
        if raw.get("attr_hidden") is not None:
            raw["attr_hidden"] = tuple(raw["attr_hidden"])
        return FitConfig(**raw)

    def validate(self) -> None:
        checks = [
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}"),
            (self.softargmax_weight > 0, f"soft-argmax weight must be > 0, got {self.softargmax_weight}"),
            (self.optimizer in ("adadelta", "adam"), f"optimizer must be 'adadelta' or 'adam', got {self.optimizer!r}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.eval_every >= 1, f"eval interval must be >= 1, got {self.eval_every}"),
            (0.0 <= self.val_fraction < 1.0, f"validation fraction must be in [0, 1), got {self.val_fraction}"),
            (self.lr is None or self.lr > 0, f"learning rate must be > 0, got {self.lr}"),
            (self.lr_schedule in ("constant", "cosine"), f"lr schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}"),
            (self.beta > 0, f"soft-argmax beta must be > 0, got {self.beta}"),
            (self.distil_weight >= 0, f"distillation weight must be >= 0, got {self.distil_weight}"),
            (self.distil_from is None or not self.preset.startswith("denoiser"), "the denoiser is not distilled"),
            (self.distil_data is None or self.distil_from is not None,
             "--distil-data needs --distil-from: its faces are learned from the teacher's maps alone"),
            (self.distil_data is None or self.distil_weight > 0, "--distil-data needs a distillation weight above 0"),
            (self.augment in ("2016", "heavy"), f"augment must be '2016' or 'heavy', got {self.augment!r}"),
            (0 <= self.rotation <= 180, f"rotation must be 0-180 degrees, got {self.rotation}"),
            (0.0 <= self.mirror <= 1.0, f"mirror probability must be in [0, 1], got {self.mirror}"),
            (self.denoiser_kernel >= 1 and self.denoiser_kernel % 2 == 1, "denoiser kernel must be odd"),
            (0 <= self.landmark_fraction <= self.attribute_fraction <= 1,
             "need 0 <= landmark fraction <= attribute fraction <= 1 (landmark-labelled images also carry attributes)"),
            (self.attribute_weight >= 0 and self.elt_weight >= 0, "attribute and ELT weights must be >= 0"),
            (self.landmark_fraction > 0 or self.attribute_weight > 0 or self.elt_weight > 0,
             "with no landmark labels, give the attribute or ELT loss a weight"),
            (len(self.attr_hidden) >= 1 and all(h >= 1 for h in self.attr_hidden), "attribute hidden sizes must be >= 1"),
            (0 <= self.attr_dropout < 1, f"attribute dropout must be in [0, 1), got {self.attr_dropout}"),
            (self.attr_inputs in ("centred", "crop"), f"attribute inputs must be 'centred' or 'crop', got {self.attr_inputs!r}"),
            (not self.semi_supervised or not self.preset.startswith("denoiser"), "the denoiser has no semi-supervised training"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        self.elt_config()


# settings a run may change and still continue: a longer schedule, another validation spacing, a moved
# or copied run folder, the arithmetic's precision (bf16 autocast computes the passes in bf16; weights,
# optimiser and schedule stay fp32) and the paths of the starting weights (read only at the start) and
# of the teacher (a moved copy of the same file)
RESUMABLE = ("steps", "eval_every", "out", "bf16", "init", "distil_from")


def changed_settings(saved: dict, cfg: FitConfig) -> list[str]:
    """The settings of ``cfg`` that differ from a checkpoint's saved ``fit_config`` (a dict) and
    would make it another run (everything but ``RESUMABLE``), sorted."""
    old, new = FitConfig.from_dict(saved).to_dict(), cfg.to_dict()
    return sorted(k for k in new if k not in RESUMABLE and old.get(k) != new[k])
