"""Validation hold-outs that keep every face of one source photo on one side.

300-W names the crops of one photo ``PHOTO_1``, ``PHOTO_2``, ... (an AFW group photo gives up to
a dozen faces). Splitting faces at random would put neighbours of the same photo, same light,
same camera and often the same person, on both sides and flatter the validation error, so the
hold-out is drawn over photos: ``source_photo`` strips the ``_N`` crop suffix (one or two digits)
from a sample's ident, the photos are shuffled with a fixed seed, and whole photos are taken until
the requested share of faces is reached.

Dataset specs name the two sides with ``?part=fit`` and ``?part=val`` (optionally ``&holdout=0.1``,
the share of faces, and ``&holdout_seed=0``), so training and every later evaluation agree on the
same partition without a file listing it.
"""
from __future__ import annotations

import re

import numpy as np

from train.data.datasets.landmark_set import LandmarkSet

_CROP_SUFFIX = re.compile(r"_\d{1,2}$")
PARTS = ("fit", "val")


def source_photo(ident: str) -> str:
    """The photo a face crop was cut from: ``afw/1051618982_2`` -> ``afw/1051618982``."""
    return _CROP_SUFFIX.sub("", ident)


def holdout_indices(data: LandmarkSet, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the held-out faces: whole source photos in a seeded order until at least
    ``round(fraction * len(data))`` faces are held out (0 when that rounds to 0)."""
    wanted = int(round(len(data) * fraction))
    if wanted == 0:
        return np.zeros(0, dtype=int)
    photos = [source_photo(s.ident) for s in data.samples]
    if len(set(photos)) == len(photos):  # one face per photo: the plain seeded permutation
        return np.sort(np.random.default_rng(seed).permutation(len(data))[:wanted])
    names = sorted(set(photos))
    members: dict[str, list[int]] = {name: [] for name in names}
    for i, name in enumerate(photos):
        members[name].append(i)
    chosen: list[int] = []
    for j in np.random.default_rng(seed).permutation(len(names)):
        if len(chosen) >= wanted:
            break
        chosen.extend(members[names[j]])
    return np.sort(np.asarray(chosen, dtype=int))


def split_by_photo(data: LandmarkSet, fraction: float, seed: int) -> tuple[LandmarkSet, LandmarkSet]:
    """(fit, val): ``data`` less the hold-out, and the hold-out (see ``holdout_indices``)."""
    held = set(holdout_indices(data, fraction, seed).tolist())
    pick = lambda keep: LandmarkSet(data.name, data.layout, [s for i, s in enumerate(data.samples) if (i in held) == keep],  # noqa: E731
                                    data.attribute_kinds)
    return pick(False), pick(True)


def select_part(data: LandmarkSet, part: str, fraction: float, seed: int) -> LandmarkSet:
    """One side of ``split_by_photo``, named ``fit`` or ``val``, with the spec's part in its name."""
    fit, val = split_by_photo(data, fraction, seed)
    chosen = fit if part == "fit" else val
    chosen.name = f"{data.name}?part={part}"
    return chosen
