"""A torch Dataset over a LandmarkSet: crop, jitter and tensors, reproducible per (seed, epoch, index).

Each item draws its jitter from ``np.random.default_rng([seed, epoch, index])``, so a run gives
the same batches whatever the number of workers, and resuming at epoch e repeats epoch e exactly.
Call ``set_epoch`` before building each epoch's iterator; with ``persistent_workers=True`` the
workers keep their own copy and would not see it, so leave that option off.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import Dataset

from realtime.geometry.layouts import get_layout
from train.data.augment import AugmentConfig, prepare_face
from train.data.datasets.landmark_set import FaceSample, LandmarkSet, sample_image

log = logging.getLogger(__name__)


def attribute_names(landmark_set: LandmarkSet) -> list[str]:
    """Sorted names of the set's declared attributes and of any attribute a sample carries."""
    names = set(landmark_set.attribute_kinds)
    for sample in landmark_set.samples:
        names.update(sample.attributes)
    return sorted(names)


def attribute_table(landmark_set: LandmarkSet, names: list[str]) -> np.ndarray:
    """(N, A) float32 attribute values in ``names`` order, NaN where a sample lacks one."""
    table = np.full((len(landmark_set), len(names)), np.nan, dtype=np.float32)
    for i, sample in enumerate(landmark_set.samples):
        for j, name in enumerate(names):
            if name in sample.attributes:
                table[i, j] = sample.attributes[name]
    return table


class LandmarkDataset(Dataset):
    """Items are dicts: ``image`` (C, H, W) float32 in [0, 1], ``points`` (K, 2) float32 crop
    pixels, ``mask`` (K,) bool, ``index`` int, ``attrs`` (A,) float32 (NaN = missing) in
    ``attribute_names`` order.

    ``aug`` None (or ``AugmentConfig.none()``) gives the plain evaluation crop. ``preload`` decodes
    every image once into memory; use it only for small sets.
    """

    def __init__(self, landmark_set: LandmarkSet, out_size: int = 80, grey: bool = True,
                 aug: AugmentConfig | None = None, seed: int = 0, preload: bool = False) -> None:
        self.landmark_set = landmark_set
        self.layout = get_layout(landmark_set.layout)
        self.out_size = out_size
        self.grey = grey
        self.aug = aug
        self.seed = seed
        self.epoch = 0
        self.attribute_names = attribute_names(landmark_set)
        self._attrs = attribute_table(landmark_set, self.attribute_names)
        self._images: list[np.ndarray] | None = None
        if preload:
            log.info("preloading %d images of %s", len(landmark_set), landmark_set.name)
            self._images = [sample_image(s) for s in landmark_set.samples]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.landmark_set)

    def _image(self, index: int, sample: FaceSample) -> np.ndarray:
        return self._images[index] if self._images is not None else sample_image(sample)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        return self.item(index, self.epoch)

    def item(self, index: int, epoch: int) -> dict[str, torch.Tensor | int]:
        """Item ``index`` as epoch ``epoch`` jitters it (``__getitem__`` uses ``set_epoch``'s)."""
        sample = self.landmark_set.samples[index]
        rng = np.random.default_rng([self.seed, epoch, index]) if self.aug is not None else None
        face = prepare_face(self._image(index, sample), sample.points, sample.visible, self.layout,
                            out_size=self.out_size, grey=self.grey, aug=self.aug, rng=rng)
        return {
            "image": torch.from_numpy(face.image),
            "points": torch.from_numpy(face.points),
            "mask": torch.from_numpy(face.mask),
            "index": index,
            "attrs": torch.from_numpy(self._attrs[index].copy()),
        }
