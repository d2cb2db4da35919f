"""Shipped weights: one ``.safetensors`` file that carries its own configuration.

The file's metadata holds ``format`` (``rcn-weights/1``), ``kind`` (``landmark`` or ``denoiser``)
and ``config`` (the model configuration as JSON: architecture, keypoint count and layout, input
size and channels, normalisation, decoder), plus free-form ``info`` JSON (training provenance).
``load_model`` rebuilds the model from the file alone and loads strictly.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from realtime.atomic import atomic_path
from realtime.denoise import Denoiser, DenoiserConfig
from realtime.errors import UserError
from realtime.model import LandmarkNet, ModelConfig, build_model

FORMAT = "rcn-weights/1"


def save_weights(model: LandmarkNet | Denoiser, path: str | Path, info: dict | None = None) -> None:
    """Write ``model``'s parameters and configuration to ``path`` atomically."""
    kind = "denoiser" if isinstance(model, Denoiser) else "landmark"
    metadata = {"format": FORMAT, "kind": kind, "config": model.config.to_json(), "info": json.dumps(info or {})}
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"not a valid safetensors weights file: {path} ({exc})") from None
    if metadata.get("format") != FORMAT:
        raise UserError(f"{path} is a safetensors file but not one of ours (no '{FORMAT}' metadata)")
    return metadata


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LandmarkNet | Denoiser:
    """Rebuild the model described by the file's metadata and load its tensors strictly."""
    metadata = read_metadata(path)
    try:
        if metadata.get("kind") == "denoiser":
            model: LandmarkNet | Denoiser = Denoiser(DenoiserConfig.from_json(metadata["config"]))
        else:
            model = build_model(ModelConfig.from_json(metadata["config"]))
    except (KeyError, json.JSONDecodeError, TypeError) as exc:
        raise UserError(f"{path}: malformed model configuration in metadata ({exc})") from None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"cannot read tensors from {path} ({exc})") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise UserError(f"{path}: tensors do not match the stored configuration: {' '.join(first[:3])[:300]}") from None
    return model.to(device).eval()


def weights_info(path: str | Path) -> dict:
    """The free-form provenance stored with the weights."""
    return json.loads(read_metadata(path).get("info", "{}"))
