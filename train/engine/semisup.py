"""The 2018 paper's semi-supervised objective as one extra loss term for ``train.engine.fit`` (§2.6):

    loss = landmark loss on a batch of the S landmark-labelled images
         + attribute_weight x attribute loss on a batch of the M attribute-labelled images
         + elt_weight x ELT on a batch of all N images
         + distil_weight x the teacher's maps on a batch of ``distil_data``'s faces (when set)

Each update draws one batch per active pool (``train.objectives.regimes.Pools``); the terms come from
``train.objectives.attribute_loss`` (sequential multitasking), ``train.objectives.elt`` and
``train.objectives.losses.map_distillation`` (the last an extension for a narrower student, not the paper's). The
attribute head is trained by the same optimiser as the landmark network and saved with it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from realtime.models.attributes import AttributeNet
from realtime.geometry.layouts import get_layout
from realtime.models.model import ModelConfig
from train.objectives.attribute_loss import attribute_loss, head_config, label_columns
from train.engine.fit_config import FitConfig
from train.objectives.elt import elt_loss
from train.data.loader import LandmarkDataset, attribute_table
from train.objectives.regimes import Pools, choose_subsets

Batch = dict[str, torch.Tensor]


@dataclass
class SemiSupervision:
    """The pools, the attribute head (None without an attribute weight) and where the head's
    labels sit in an item's ``attrs`` (``columns``)."""

    cfg: FitConfig
    pools: Pools
    head: AttributeNet | None
    columns: list[int]
    mirror_perm: tuple[int, ...]
    last_terms: dict[str, float] = field(default_factory=dict)  # unweighted terms of the last update, for the log

    @classmethod
    def setup(cls, cfg: FitConfig, train: LandmarkDataset, model_config: ModelConfig, run_dir: Path,
              collate: Callable[[list[dict]], Batch], distil: LandmarkDataset | None = None) -> "SemiSupervision":
        """Choose the label subsets (written to ``run_dir/subsets.json``), build pools and head;
        ``distil`` is ``cfg.distil_data``'s faces, the "distil" pool's dataset."""
        data = train.landmark_set
        subsets = choose_subsets(len(data), cfg.landmark_fraction, cfg.attribute_fraction, cfg.subset_seed)
        subsets.save(run_dir / "subsets.json")
        active = [name for name, on in (("landmark", bool(subsets.landmark)), ("attribute", cfg.attribute_weight > 0),
                                        ("unlabelled", cfg.elt_weight > 0), ("distil", cfg.distil_data is not None))
                  if on]
        pools = Pools(train, subsets, tuple(active), cfg.batch_size, cfg.seed, collate,
                      distil=distil)
        head, columns = None, []
        if cfg.attribute_weight > 0:
            names = train.attribute_names
            labels = attribute_table(data, names)[list(subsets.attribute)]  # only the labels the run may see
            config = head_config(data.attribute_kinds, names, labels, model_config.num_points,
                                 model_config.input_size, cfg.attr_hidden, cfg.attr_dropout, cfg.attr_inputs)
            head, columns = AttributeNet(config), label_columns(names, config)
        return cls(cfg, pools, head, columns, get_layout(data.layout).mirror)

    def loss(self, batches: dict[str, Batch | None], landmark_loss: Callable[[Batch], torch.Tensor],
             points: Callable[[torch.Tensor], torch.Tensor],
             distil: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """The terms for one update. ``batches`` comes from ``Pools.draw``; ``landmark_loss`` is
        the supervised loss of a batch; ``points`` maps (B, C, S, S) crops to (B, K, 2)
        differentiable soft-argmax landmarks in crop pixels; ``distil`` maps crops to the
        teacher's-maps term (``FitConfig.distil_data``'s pool; unweighted)."""
        cfg, total, terms = self.cfg, torch.zeros(()), {}
        if batches["landmark"] is not None:
            terms["landmark_loss"] = term = landmark_loss(batches["landmark"])
            total = total + term
        if batches["attribute"] is not None and self.head is not None:
            batch = batches["attribute"]
            labels = batch["attrs"][:, self.columns]
            terms["attribute_loss"] = term = attribute_loss(self.head, points(batch["image"]), labels)
            total = total + cfg.attribute_weight * term
        if batches["unlabelled"] is not None:
            images = batches["unlabelled"]["image"]
            terms["elt_loss"] = term = elt_loss(points, images, cfg.elt_config(), perm=self.mirror_perm)
            total = total + cfg.elt_weight * term
        if batches.get("distil") is not None:
            if distil is None:
                raise ValueError("the distil pool needs the teacher's term")
            terms["distil_loss"] = term = distil(batches["distil"]["image"])
            total = total + cfg.distil_weight * term
        self.last_terms = {name: float(value.detach()) for name, value in terms.items()}
        return total

