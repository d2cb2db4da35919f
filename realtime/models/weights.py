"""Shipped weights: one ``.safetensors`` file that carries its own configuration.

The file's metadata holds ``format`` (``rcn-weights/1``), ``kind`` (``landmark`` or ``denoiser``)
and ``config`` (the model configuration as JSON: architecture, keypoint count and layout, input
size and channels, normalisation, decoder), plus free-form ``info`` JSON (training provenance).
``load_model`` rebuilds the model from the file alone and loads strictly.

A landmark file may also carry an attribute head (semi-supervised training, ``realtime.models.attributes``):
its configuration under the metadata key ``attribute_head`` and its tensors under the prefix
``attribute_head.``. ``load_model`` leaves those aside; ``load_attribute_head`` rebuilds the head
(strictly) or returns None for a file without one. ``read_weights`` reads a file once for all three
(and ``weights_info``).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file

from realtime.core.atomic import atomic_path
from realtime.models.attributes import AttributeConfig, AttributeNet
from realtime.models.denoise import Denoiser, DenoiserConfig
from realtime.core.errors import UserError
from realtime.models.model import LandmarkNet, ModelConfig, build_model

FORMAT = "rcn-weights/1"
HEAD_KEY = "attribute_head"
HEAD_PREFIX = HEAD_KEY + "."


def torch_device(device: str | torch.device, need_available: bool = True) -> torch.device:
    """``device`` as a torch.device; UserError for a name torch does not know, and (with
    ``need_available``) for a CUDA device this torch build or machine cannot provide."""
    try:
        parsed = torch.device(device)
    except RuntimeError as exc:
        raise UserError(f"unknown torch device {device!r} ({exc})") from None
    if need_available and parsed.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but this torch has no CUDA device")
    return parsed


def save_weights(model: LandmarkNet | Denoiser, path: str | Path, info: dict | None = None,
                 attribute_head: AttributeNet | None = None) -> None:
    """Write ``model``'s parameters and configuration (and an optional attribute head) to
    ``path`` atomically."""
    kind = "denoiser" if isinstance(model, Denoiser) else "landmark"
    metadata = {"format": FORMAT, "kind": kind, "config": model.config.to_json(), "info": json.dumps(info or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if attribute_head is not None:
        metadata[HEAD_KEY] = attribute_head.config.to_json()
        tensors.update({HEAD_PREFIX + k: v.detach().cpu().contiguous() for k, v in attribute_head.state_dict().items()})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


@dataclass(frozen=True)
class WeightsFile:
    """One weights file read once: its metadata (strings) and its tensors."""
    metadata: dict[str, str]
    tensors: dict[str, torch.Tensor]


def read_weights(path: str | Path) -> WeightsFile:
    """The whole file in one read (``load_model``, ``load_attribute_head`` and ``weights_info`` of
    one file share it: a start opens the file once). Checked: it exists, is a safetensors file, and
    is one of ours. Kept for the file's current modification time and size only."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    stat = path.stat()
    return _read_weights(str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(path))


@functools.lru_cache(maxsize=4)
def _read_weights(resolved: str, mtime_ns: int, size: int, shown: str) -> WeightsFile:
    try:
        data = Path(resolved).read_bytes()
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len]) if 0 < header_len <= len(data) - 8 else None
        if not isinstance(header, dict):
            raise ValueError("no safetensors header")
        tensors = load_bytes(data)
    except (SafetensorError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"not a valid safetensors weights file: {shown} ({exc})") from None
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        raise UserError(f"{shown} is a safetensors file but not one of ours (no '{FORMAT}' metadata)")
    return WeightsFile(metadata, tensors)


def read_metadata(path: str | Path) -> dict[str, str]:
    return read_weights(path).metadata


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LandmarkNet | Denoiser:
    """Rebuild the model described by the file's metadata and load its tensors strictly."""
    stored = read_weights(path)
    metadata = stored.metadata
    try:
        if metadata.get("kind") == "denoiser":
            model: LandmarkNet | Denoiser = Denoiser(DenoiserConfig.from_json(metadata["config"]))
        else:
            model = build_model(ModelConfig.from_json(metadata["config"]))
    except (KeyError, json.JSONDecodeError, TypeError) as exc:
        raise UserError(f"{path}: malformed model configuration in metadata ({exc})") from None
    tensors = stored.tensors
    if HEAD_KEY in metadata:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(HEAD_PREFIX)}
    _load_strict(model, tensors, f"{path}: tensors do not match the stored configuration")
    return model.to(device).eval()


def load_landmark_model(path: str | Path, device: str | torch.device = "cpu") -> LandmarkNet:
    """``load_model`` for callers that need a landmark model: a denoiser file is a UserError."""
    model = load_model(path, device)
    if not isinstance(model, LandmarkNet):
        raise UserError(f"{path} holds a denoiser, not a landmark model")
    return model


def load_denoiser(path: str | Path, device: str | torch.device = "cpu") -> Denoiser:
    """``load_model`` for callers that need the 2016 denoiser: a landmark model file is a UserError."""
    model = load_model(path, device)
    if not isinstance(model, Denoiser):
        raise UserError(f"{path} is not a denoiser weights file")
    return model


def describe_model(config) -> str:
    """A model in a few words for messages: preset, points, layout, input size, channels, widths."""
    parts = [getattr(config, "preset", None) or type(config).__name__.replace("Config", "").lower()]
    if getattr(config, "num_points", None):
        layout = getattr(config, "layout", None)
        parts.append(f"{config.num_points} points" + (f" ({layout})" if layout else ""))
    if getattr(config, "input_size", None):
        parts.append(f"{config.input_size} px {'grey' if getattr(config, 'in_channels', 1) == 1 else 'colour'} input")
    if getattr(config, "trunk", None):
        parts.append(f"trunk widths {list(config.trunk)}")
    return ", ".join(parts)


def _load_strict(module: torch.nn.Module, tensors: dict[str, torch.Tensor], message: str) -> None:
    """``load_state_dict(strict=True)``; a mismatch becomes a UserError that counts what differs
    (missing, unexpected, other shapes) and names the model expected, not torch's raw report."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    shapes = [k for k in expected if k in tensors and tuple(tensors[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        config = getattr(module, "config", None)
        what = f" (expected {describe_model(config)})" if config is not None else ""
        counts = ", ".join(f"{n} {name}" for n, name in ((len(missing), "missing"), (len(unexpected), "unexpected"),
                                                        (len(shapes), "of another shape")) if n)
        example = (shapes or missing or unexpected)[0]
        raise UserError(f"{message}{what}: {counts} tensor(s), e.g. {example}; the file is damaged or was "
                        "written by another version: re-export it (python -m train export) or use the shipped weights")
    module.load_state_dict(tensors, strict=True)


def load_attribute_head(path: str | Path, device: str | torch.device = "cpu") -> AttributeNet | None:
    """The attribute head stored with a landmark model, loaded strictly; None if it has none."""
    stored = read_weights(path)
    metadata = stored.metadata
    if HEAD_KEY not in metadata:
        return None
    try:
        head = AttributeNet(AttributeConfig.from_json(metadata[HEAD_KEY]))
    except (json.JSONDecodeError, TypeError) as exc:
        raise UserError(f"{path}: malformed attribute head configuration in metadata ({exc})") from None
    tensors = {k[len(HEAD_PREFIX):]: v for k, v in stored.tensors.items() if k.startswith(HEAD_PREFIX)}
    _load_strict(head, tensors, f"{path}: attribute head tensors do not match its configuration")
    return head.to(device).eval()


def weights_info(path: str | Path) -> dict:
    """The free-form provenance stored with the weights."""
    return json.loads(read_metadata(path).get("info", "{}"))
