"""Dataset readers and ``open_dataset(spec)``, which turns a one-line dataset spec into a LandmarkSet.

Spec grammar::

    KIND:PATH[:SPLIT][?key=value&key=value]
    synth[:SPLIT][?n=N&seed=S]

The split is the text after the last ``:`` when it is a plain word (letters, digits, ``_``, ``-``),
so Windows paths such as ``C:\\data`` still work; a path that itself ends in ``:word`` cannot be
named. Readers are imported only when used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from realtime.core.errors import UserError
from train.data.datasets.aflw import load_aflw19_mat, load_aflw_sqlite
from train.data.datasets.landmark_set import LandmarkSet
from train.data.datasets.folder import load_folder
from train.data.datasets.holdout import PARTS, select_part
from train.data.datasets.ibug300w import load_300w, to_mtfl5
from train.data.datasets.mtfl import load_mtfl


@dataclass(frozen=True)
class Kind:
    """One dataset kind: its splits (first = default; empty = any word), options and help line."""

    form: str
    splits: tuple[str, ...]
    options: dict[str, str]
    help: str


KINDS: dict[str, Kind] = {
    "300w": Kind("300w:ROOT[:SPLIT][?subset=afw&layout=mtfl5]", ("train", "common", "challenging", "full"),
                 {"subset": "read only these folders of the split, comma list (e.g. afw: the 337 AFW faces of "
                            "300-W's re-annotation, not TCDCN's 377)",
                  "layout": "ibug68 (default) or mtfl5: the 5 MTFL points derived from the 68 (eye centres = "
                            "mean of each eye's 6 contour points, nose tip 30, mouth corners 48 and 54)"},
                 "300-W folder with afw/, helen/, lfpw/, ibug/ and .pts files (68 points)"),
    "aflw": Kind("aflw:aflw.sqlite[?points=19|21&images=DIR]", ("all",),
                 {"points": "19 or 21 (default 21)",
                  "images": "image root (default: <sqlite folder>/flickr)"},
                 "official AFLW sqlite; pose yaw/pitch/roll in degrees"),
    "aflw19": Kind("aflw19:AFLWinfo_release.mat[:SPLIT][?images=DIR]", ("train", "test", "frontal"),
                   {"images": "image root (default: <mat folder>/flickr)"},
                   "AFLW-Full 19-point protocol (20,000 train / 4,386 test)"),
    "mtfl": Kind("mtfl:ROOT[:SPLIT]", ("train", "test"), {},
                 "MTFL folder with training.txt/testing.txt (5 points, gender/smile/glasses/pose)"),
    "folder": Kind("folder:DIR[?layout=NAME]", ("all",), {"layout": "keypoint layout, e.g. ibug68"},
                   "images with a .pts or .json beside each, searched recursively"),
    "synth": Kind("synth[:SPLIT][?n=N&seed=S]", (),
                  {"n": "number of faces", "seed": "random seed (default 0)"},
                  "synthetic faces drawn in memory (train.data.synthetic)"),
}
_WORD = re.compile(r"[A-Za-z0-9_-]+")
# Options every file-based kind takes: a hold-out by source photo (train.data.datasets.holdout).
HOLDOUT_OPTIONS = {"part": "fit or val: one side of a hold-out that keeps each source photo on one side",
                   "holdout": "share of faces held out for part=val (default 0.1)",
                   "holdout_seed": "seed of the hold-out's photo order (default 0)"}


@dataclass(frozen=True)
class DatasetSpec:
    kind: str
    path: str
    split: str
    options: dict[str, str] = field(default_factory=dict)


def _parse_options(spec: str, query: str, kind: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise UserError(f"bad option {item!r} in dataset spec {spec!r}; write key=value")
        allowed = {**KINDS[kind].options, **(HOLDOUT_OPTIONS if kind != "synth" else {})}
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise UserError(f"unknown option {key!r} for {kind} datasets (known: {known})")
        if key in options:
            raise UserError(f"option {key!r} given twice in dataset spec {spec!r}")
        options[key] = value
    return options


def parse_spec(spec: str) -> DatasetSpec:
    """Split a spec into kind, path, split and options, checking each against ``KINDS``."""
    body, _, query = spec.strip().partition("?")
    kind, _, rest = body.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise UserError(f"unknown dataset kind {kind!r} in {spec!r}; known: {', '.join(KINDS)}")
    options = _parse_options(spec, query, kind)
    if kind == "synth":
        path, split = "", rest
    else:
        head, sep, tail = rest.rpartition(":")
        path, split = (head, tail) if sep and _WORD.fullmatch(tail) else (rest, "")
        if not path:
            raise UserError(f"dataset spec {spec!r} has no path; expected {KINDS[kind].form}")
    splits = KINDS[kind].splits
    split = split or (splits[0] if splits else "train")
    if splits and split not in splits:
        raise UserError(f"unknown split {split!r} for {kind} datasets; choose one of {', '.join(splits)}")
    if not _WORD.fullmatch(split):
        raise UserError(f"bad split {split!r} in dataset spec {spec!r}")
    return DatasetSpec(kind=kind, path=path, split=split, options=options)


def _int_option(options: dict[str, str], key: str, default: int | None, lowest: int) -> int | None:
    if key not in options:
        return default
    try:
        value = int(options[key])
    except ValueError:
        raise UserError(f"option {key}={options[key]!r} is not an integer") from None
    if value < lowest:
        raise UserError(f"option {key}={value} must be at least {lowest}")
    return value


def _holdout(data: LandmarkSet, options: dict[str, str]) -> LandmarkSet:
    """The ``part`` a spec asks for (``train.data.datasets.holdout``), or ``data`` unchanged."""

    if "part" not in options:
        if "holdout" in options or "holdout_seed" in options:
            raise UserError("options holdout/holdout_seed need part=fit or part=val")
        return data
    if options["part"] not in PARTS:
        raise UserError(f"option part={options['part']!r} must be one of {', '.join(PARTS)}")
    try:
        fraction = float(options.get("holdout", "0.1"))
    except ValueError:
        raise UserError(f"option holdout={options['holdout']!r} is not a number") from None
    if not 0.0 < fraction < 1.0:
        raise UserError(f"option holdout={options['holdout']} must be between 0 and 1")
    return select_part(data, options["part"], fraction, _int_option(options, "holdout_seed", 0, 0))


def _open(spec: DatasetSpec) -> LandmarkSet:
    opts = spec.options
    if spec.kind == "synth":
        try:
            from train.data.synthetic import load_synthetic
        except ModuleNotFoundError as exc:
            if exc.name not in ("train.data.synthetic", None):
                raise
            raise UserError("synthetic datasets are not available: train.data.synthetic is missing") from None
        return load_synthetic(spec.split, _int_option(opts, "n", None, 1), _int_option(opts, "seed", 0, 0))
    path = Path(spec.path).expanduser()
    if not path.exists():
        raise UserError(f"dataset path not found: {path}")
    images = Path(opts["images"]).expanduser() if "images" in opts else None
    if spec.kind == "300w":
        subsets = [s.strip() for s in opts["subset"].split(",") if s.strip()] if "subset" in opts else None
        data = load_300w(path, spec.split, subsets)
        layout = opts.get("layout", "ibug68")
        if layout not in ("ibug68", "mtfl5"):
            raise UserError(f"300w layout must be ibug68 or mtfl5, got {layout!r}")
        return to_mtfl5(data) if layout == "mtfl5" else data
    if spec.kind == "aflw":
        points = opts.get("points", "21")
        if points not in ("19", "21"):
            raise UserError(f"option points={points!r} must be 19 or 21")
        return load_aflw_sqlite(path, images=images, points=int(points))
    if spec.kind == "aflw19":
        return load_aflw19_mat(path, spec.split, images=images)
    if spec.kind == "mtfl":
        return load_mtfl(path, spec.split)
    return load_folder(path, layout=opts.get("layout"))


def open_dataset(spec: str) -> LandmarkSet:
    """Read the dataset a spec names (see ``describe_specs()``); bad specs raise UserError.

    Specs joined by `` + `` (spaces around the plus) are read one by one and concatenated; they
    must share one keypoint layout (for example 300-W faces plus a folder of teacher-labelled ones).
    """
    parts = [p.strip() for p in spec.split(" + ")]
    if len(parts) > 1:
        sets = [open_dataset(p) for p in parts]
        layouts = sorted({s.layout for s in sets})
        if len(layouts) > 1:
            raise UserError(f"cannot join datasets of different layouts ({', '.join(layouts)}) in {spec!r}")
        kinds = {}
        for s in sets:
            kinds.update(s.attribute_kinds)
        return LandmarkSet(" + ".join(s.name for s in sets), layouts[0], [x for s in sets for x in s.samples], kinds)
    parsed = parse_spec(spec)
    dataset = _holdout(_open(parsed), parsed.options)  # synth specs cannot name a part (_parse_options)
    if len(dataset) == 0:
        raise UserError(f"dataset spec {spec!r} selects no faces")
    return dataset


def describe_specs() -> str:
    """Help text for command lines: the grammar and every kind with its splits and options."""
    lines = ["Dataset specs: KIND:PATH[:SPLIT][?key=value&key=value]  (synth[:SPLIT][?n=N&seed=S])"]
    for kind in KINDS.values():
        lines.append(f"  {kind.form}")
        lines.append(f"      {kind.help}")
        if kind.splits:
            lines.append(f"      splits: {', '.join(kind.splits)} (default {kind.splits[0]})")
        for key, text in kind.options.items():
            lines.append(f"      {key}: {text}")
    lines.append("  every kind but synth also takes:")
    lines += [f"      {key}: {text}" for key, text in HOLDOUT_OPTIONS.items()]
    lines.append("  SPEC + SPEC joins datasets of one layout (spaces around the +)")
    return "\n".join(lines)
