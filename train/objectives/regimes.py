"""Label regimes of the 2018 paper: of N training images, S carry landmark labels and M carry
attribute labels, with the landmark subset inside the attribute subset (S <= M <= N, §2.1).

``choose_subsets`` picks both from one permutation seeded by ``seed``: the first M images of the
permutation form the attribute subset and the first S of those the landmark subset, so a smaller
labelled fraction is always a subset of a larger one for the same seed. The choice is written to
``subsets.json`` in the run directory.

``Pools`` gives, for update ``step``, one batch from each active pool: ``landmark`` (the S images,
landmark loss), ``attribute`` (the M images, attribute loss) and ``unlabelled`` (all N, ELT). Each
pool walks through its own permutation per pool-epoch (full batches only; a pool smaller than a
batch is one batch), so a batch depends only on (seed, step) and resuming is exact. Pools draw
with different jitter seeds. The attribute pool is cropped without rotation or mirror jitter:
both change angle attributes (roll, an in-plane orientation) and mirroring changes yaw and
left/right pose classes, while zoom, shift and occluders leave every attribute as labelled.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from realtime.core.atomic import write_text_atomic
from realtime.core.errors import UserError
from train.data.loader import LandmarkDataset

# "distil": faces of a dataset of their own, seen only through a teacher's maps (FitConfig.distil_data);
# last, so that the other pools keep their seeds (POOLS.index)
POOLS = ("landmark", "attribute", "unlabelled", "distil")


@dataclass(frozen=True)
class Subsets:
    """Sorted indices (into the training set) of the landmark- and attribute-labelled images."""

    n: int
    seed: int
    landmark_fraction: float
    attribute_fraction: float
    landmark: tuple[int, ...]
    attribute: tuple[int, ...]

    def save(self, path: str | Path) -> None:
        doc = dataclasses.asdict(self)
        doc["note"] = "indices into the training set after the validation split (see config.json)"
        write_text_atomic(Path(path), json.dumps(doc, indent=1))

    @staticmethod
    def load(path: str | Path) -> "Subsets":
        raw = json.loads(Path(path).read_text())
        raw.pop("note", None)
        return Subsets(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def _count(fraction: float, n: int) -> int:
    """round(fraction * n), but at least one image for any positive fraction."""
    return 0 if fraction <= 0 else min(n, max(1, int(round(fraction * n))))


def choose_subsets(n: int, landmark_fraction: float, attribute_fraction: float, seed: int) -> Subsets:
    """Deterministic nested subsets of ``range(n)`` (see the module docstring)."""
    if not 0 <= landmark_fraction <= attribute_fraction <= 1:
        raise UserError(f"need 0 <= landmark fraction ({landmark_fraction}) <= attribute fraction "
                        f"({attribute_fraction}) <= 1: landmark-labelled images also carry attributes")
    order = np.random.default_rng([seed, 7919]).permutation(n)
    pick = lambda count: tuple(sorted(int(i) for i in order[:count]))  # noqa: E731
    return Subsets(n, seed, landmark_fraction, attribute_fraction,
                   pick(_count(landmark_fraction, n)), pick(_count(attribute_fraction, n)))


def pool_batches(n: int, batch_size: int) -> int:
    """Batches per pool-epoch: full batches only, or one batch for a pool smaller than a batch."""
    return max(1, n // batch_size)


class Pools:
    """Per-update batches from the landmark, attribute and unlabelled pools.

    ``dataset`` is the training set (its jitter is the landmark pool's); ``active`` names the
    pools in use. ``collate`` turns a list of items into a batch. ``distil`` is the "distil"
    pool's own dataset (all of its faces are members), needed when that pool is active.
    """

    def __init__(self, dataset: LandmarkDataset, subsets: Subsets, active: tuple[str, ...],
                 batch_size: int, seed: int, collate: Callable[[list[dict]], dict],
                 distil: LandmarkDataset | None = None):
        if set(active) - set(POOLS):
            raise ValueError(f"unknown pools {set(active) - set(POOLS)}")
        if "distil" in active and distil is None:
            raise ValueError("the distil pool needs its dataset")
        self.batch_size, self.seed, self.collate = batch_size, seed, collate
        members = {"landmark": subsets.landmark, "attribute": subsets.attribute, "unlabelled": tuple(range(len(dataset))),
                   "distil": tuple(range(len(distil))) if distil is not None else ()}
        self.pools: dict[str, tuple[LandmarkDataset, np.ndarray]] = {}
        for number, name in enumerate(POOLS):
            if name not in active:
                continue
            if not members[name]:
                raise UserError(f"the {name} pool is empty: raise its fraction" if name != "distil"
                                else "the distil pool's dataset has no faces")
            source = distil if name == "distil" else dataset
            self.pools[name] = (self._view(source, name, number), np.asarray(members[name], dtype=np.int64))

    def _view(self, dataset: LandmarkDataset, name: str, number: int) -> LandmarkDataset:
        """The training set with this pool's jitter seed (and, for attributes, no rotation, mirror
        or perspective, which change pose angles and left/right); a shallow copy, so preloaded
        images are shared."""
        view = copy.copy(dataset)
        view.seed = dataset.seed + number
        if name == "attribute" and dataset.aug is not None:
            view.aug = dataclasses.replace(dataset.aug, rotation_deg=0, mirror_prob=0.0, perspective=0.0)
        return view

    def epoch(self, step: int) -> int:
        """The pool-epoch of the landmark pool (else of the first active pool) at ``step``."""
        name = next(iter(self.pools))
        return step // pool_batches(len(self.pools[name][1]), self.batch_size)

    def indices(self, name: str, step: int) -> tuple[int, np.ndarray]:
        """(pool-epoch, indices into the pool's dataset: the training set's, or the distil
        set's for "distil") of pool ``name``'s batch at update ``step``."""
        _, members = self.pools[name]
        epoch, position = divmod(step, pool_batches(len(members), self.batch_size))
        order = np.random.default_rng([self.seed, POOLS.index(name), epoch]).permutation(len(members))
        size = min(self.batch_size, len(members))
        return epoch, members[order[position * size:(position + 1) * size]]

    def draw(self, step: int) -> dict[str, dict | None]:
        """Pool name -> collated batch (items as ``LandmarkDataset``'s), None for inactive pools."""
        batches: dict[str, dict | None] = dict.fromkeys(POOLS)
        for name, (view, _) in self.pools.items():
            epoch, idx = self.indices(name, step)
            view.set_epoch(epoch)
            batches[name] = self.collate([view[int(i)] for i in idx])
        return batches
