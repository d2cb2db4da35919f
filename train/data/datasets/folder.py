"""A folder (searched recursively) of images, each with a ``.pts`` or ``.json`` file beside it.

``name.pts`` is the iBUG format (see ``ibug300w.read_pts``): 1-based, converted to 0-based.

``name.json`` is this project's schema, coordinates already 0-based (pixel centres at integers)::

    {
      "points": [[x, y], ...],            # required, K pairs of numbers
      "visible": [true, ...],             # optional, K booleans (default: all true)
      "attributes": {"smile": 1, ...},    # optional, name -> number (int = class id, float = value)
      "attribute_kinds": {"yaw": "angle"},  # optional, name -> "angle" | "scalar" | "class:<n>"
      "layout": "ibug68",                 # optional, a name from realtime.geometry.layouts.LAYOUTS
      "box": [x0, y0, x1, y1]             # optional, face box in image pixels
    }

Where both exist, the ``.json`` wins. Images with neither are skipped (counted in a warning). A
``.pts`` face also takes ``attributes`` and ``attribute_kinds`` from the teacher's sidecar
``name.teacher.json`` when one is beside it (``python -m train.tools.make_mean_face pose DIR`` writes head
pose there: yaw/pitch/roll, kind "angle").
The layout comes from ``layout=`` (spec option), else from the JSON files (which must agree), else
from the point count via ``layout_for_count``; all faces must have the same number of points.
An attribute's kind is the one its files declare (they must agree); undeclared, it is
``class:<max+1>`` when every labelled value is an integer >= 0, else ``scalar``; faces without it
get NaN (unlabelled).
"""
from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np

from realtime.core.errors import UserError
from realtime.geometry.layouts import get_layout, layout_for_count
from train.data.datasets.landmark_set import FaceSample, LandmarkSet
from train.data.datasets.ibug300w import IMAGE_SUFFIXES, read_pts

log = logging.getLogger(__name__)
_KIND = re.compile(r"angle|scalar|class:([2-9]|[1-9][0-9]+)")


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(path: Path) -> object:
    """The parsed JSON of ``path``; a one-line UserError naming the file (and line) otherwise."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None


def read_json_annotation(path: Path) -> dict:
    """Parse and check one ``.json`` file -> dict with ``points`` (K, 2), ``visible`` (K,),
    ``attributes``, ``layout`` (str | None), ``box`` (tuple | None)."""
    doc = _read_json(path)
    if not isinstance(doc, dict) or "points" not in doc:
        raise UserError(f"{path}: expected an object with a \"points\" list")
    pts = doc["points"]
    if (not isinstance(pts, list) or not pts
            or not all(isinstance(p, list) and len(p) == 2 and all(map(_number, p)) for p in pts)):
        raise UserError(f"{path}: \"points\" must be a non-empty list of [x, y] number pairs")
    k = len(pts)
    visible = doc.get("visible", [True] * k)
    if not isinstance(visible, list) or len(visible) != k or not all(isinstance(v, bool) for v in visible):
        raise UserError(f"{path}: \"visible\" must be a list of {k} booleans (true/false)")
    attributes, kinds = _attributes(path, doc)
    layout = doc.get("layout")
    if layout is not None and not isinstance(layout, str):
        raise UserError(f"{path}: \"layout\" must be a layout name string")
    box = doc.get("box")
    if box is not None and (not isinstance(box, list) or len(box) != 4 or not all(map(_number, box))):
        raise UserError(f"{path}: \"box\" must be [x0, y0, x1, y1] numbers")
    return {
        "points": np.asarray(pts, dtype=np.float32), "visible": np.asarray(visible, dtype=bool),
        "attributes": attributes, "attribute_kinds": kinds, "layout": layout,
        "box": None if box is None else tuple(float(v) for v in box),
    }


def _attributes(path: Path, doc: dict) -> tuple[dict, dict[str, str]]:
    """The checked ``attributes`` and ``attribute_kinds`` of a parsed JSON object."""
    attributes = doc.get("attributes", {})
    if not isinstance(attributes, dict) or not all(
            _number(v) or isinstance(v, bool) for v in attributes.values()):
        raise UserError(f"{path}: \"attributes\" must map names to numbers")
    kinds = doc.get("attribute_kinds", {})
    if not isinstance(kinds, dict) or not all(isinstance(k, str) and _KIND.fullmatch(k) for k in kinds.values()):
        raise UserError(f"{path}: \"attribute_kinds\" must map names to \"angle\", \"scalar\" or \"class:<n>\"")
    return {str(n): int(v) if isinstance(v, bool) else v for n, v in attributes.items()}, dict(kinds)


def read_sidecar_attributes(pts_path: Path) -> tuple[dict, dict[str, str]]:
    """``attributes`` and ``attribute_kinds`` of the ``.teacher.json`` beside a ``.pts`` (empty without one)."""
    side = pts_path.with_suffix(".teacher.json")
    if not side.is_file():
        return {}, {}
    doc = _read_json(side)
    if not isinstance(doc, dict):
        raise UserError(f"{side}: expected a JSON object")
    return _attributes(side, doc)


def _annotations(root: Path) -> tuple[list[tuple[Path, Path]], int]:
    """(image, annotation file) pairs under root, sorted, and the number of unannotated images."""
    pairs, skipped = [], 0
    for image in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        for ann in (image.with_suffix(".json"), image.with_suffix(".pts")):
            if ann.is_file():
                pairs.append((image, ann))
                break
        else:
            skipped += 1
    return pairs, skipped


def _attribute_kinds(samples: list[FaceSample], declared: dict[str, str]) -> dict[str, str]:
    names = sorted({n for s in samples for n in s.attributes})
    kinds = {}
    for name in names:
        if name in declared:
            kinds[name] = declared[name]
            continue
        values = [s.attributes[name] for s in samples if name in s.attributes]
        ints = all(isinstance(v, int) and v >= 0 for v in values)
        kinds[name] = f"class:{max(values) + 1}" if ints else "scalar"
    for s in samples:
        for name in names:
            s.attributes.setdefault(name, float("nan"))
    return kinds


def _resolve_layout(root: Path, requested: str | None, from_json: dict[str, Path], k: int) -> str:
    if len(from_json) > 1:
        (a, pa), (b, pb) = list(from_json.items())[:2]
        raise UserError(f"layouts disagree under {root}: {pa} says {a!r}, {pb} says {b!r}")
    if requested is not None:
        name = get_layout(requested).name
        if from_json and name not in from_json:
            (said, where), = from_json.items()
            raise UserError(f"layout={name} but {where} says {said!r}")
    elif from_json:
        name = get_layout(next(iter(from_json))).name
    else:
        found = layout_for_count(k)
        if found is None:
            raise UserError(f"faces under {root} have {k} points and no known layout has that many; "
                            f"add \"layout\" to the JSON files or pass ?layout=NAME")
        name = found.name
    if get_layout(name).num_points != k:
        n = get_layout(name).num_points
        raise UserError(f"layout {name} has {n} points but the faces under {root} have {k}")
    return name


def load_folder(root: str | Path, layout: str | None = None) -> LandmarkSet:
    """Every annotated image under ``root`` (see the module docstring for the formats)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder not found: {root}")
    pairs, skipped = _annotations(root)
    if not pairs:
        raise UserError(f"no images with a .pts or .json beside them under {root}")
    if skipped:
        log.warning("%d image(s) under %s have no .pts/.json beside them and were skipped", skipped, root)
    samples, layouts, first = [], {}, None
    declared: dict[str, tuple[str, Path]] = {}
    for image, ann in pairs:
        if ann.suffix == ".pts":
            pts = read_pts(ann)
            attributes, kinds = read_sidecar_attributes(ann)
            rec = {"points": pts, "visible": np.ones(len(pts), dtype=bool), "attributes": attributes,
                   "attribute_kinds": kinds, "layout": None, "box": None}
        else:
            rec = read_json_annotation(ann)
        for name, kind in rec["attribute_kinds"].items():
            if declared.setdefault(name, (kind, ann))[0] != kind:
                raise UserError(f"attribute {name!r} is {kind!r} in {ann} "
                                f"but {declared[name][0]!r} in {declared[name][1]}")
        if rec["layout"] is not None:
            layouts.setdefault(rec["layout"], ann)
        if first is None:
            first = (ann, len(rec["points"]))
        elif len(rec["points"]) != first[1]:
            raise UserError(f"{ann} has {len(rec['points'])} points but {first[0]} has {first[1]}; "
                            "all faces in a folder dataset need the same number")
        rel = image.relative_to(root)
        subset = "" if rel.parent == Path(".") else rel.parent.as_posix()
        samples.append(FaceSample(
            points=rec["points"], visible=rec["visible"], layout="", subset=subset,
            image_path=str(image), attributes=rec["attributes"], box=rec["box"],
            ident=rel.with_suffix("").as_posix(),
        ))
    name = _resolve_layout(root, layout, layouts, first[1])
    for s in samples:
        s.layout = name
    kinds = _attribute_kinds(samples, {name: kind for name, (kind, _) in declared.items()})
    log.info("folder: %d faces (%s) from %s", len(samples), name, root)
    return LandmarkSet(name=f"folder:{root.name}", layout=name, samples=samples, attribute_kinds=kinds)
