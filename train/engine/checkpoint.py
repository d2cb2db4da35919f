"""Resumable training checkpoints (model, optimiser, step, config, RNG state).

A plain ``torch.save`` of tensors, numbers and strings only, so loading uses
``weights_only=True`` and cannot execute code. Configs travel as JSON strings. Shipped weights
are a separate format (``realtime.models.weights``); ``python -m train export`` converts.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from realtime.core.atomic import atomic_path
from realtime.core.errors import UserError
from realtime.models.model import LandmarkNet

FORMAT = "rcn-checkpoint/1"


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    step: int, fit_config: dict, state: dict[str, Any],
                    attribute_head: torch.nn.Module | None = None) -> None:
    """Write atomically; ``state`` holds JSON-able progress (epoch, best score, history).
    An ``attribute_head`` (semi-supervised runs) is stored under the key of that name as
    ``{"config": JSON, "state": tensors}``; without one the payload is unchanged."""
    payload = {
        "format": FORMAT,
        "kind": "denoiser" if not isinstance(model, LandmarkNet) else "landmark",
        "model_config": model.config.to_json(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "step": int(step),
        "fit_config": json.dumps(fit_config, sort_keys=True),
        "state": json.dumps(state),
        "torch_rng": torch.get_rng_state(),
    }
    if attribute_head is not None:
        payload["attribute_head"] = {
            "config": attribute_head.config.to_json(),
            "state": {k: v.detach().cpu() for k, v in attribute_head.state_dict().items()},
        }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_torch_file(path: str | Path, what: str, remedy: str) -> Any:
    """``torch.load(weights_only=True)`` of ``path``, its refusals said in our words (UserError):
    a file holding Python objects is refused without running them (saying so plainly, never
    suggesting to turn the safety off), and a damaged or foreign file is named as such; ``what``
    names the file's role and ``remedy`` says what to do."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types (pickle, zip, EOF, OS) for damaged or foreign files
        if isinstance(exc, pickle.UnpicklingError) and "unsupported global" in str(exc).lower():
            # weights_only refused an object: the payload never ran
            raise UserError(f"{path} was refused: it holds Python objects, not only tensors and numbers, and "
                            f"loading those could run code; this project reads only the {what}s it writes itself "
                            f"({remedy}, or check where the file came from)") from None
        raise UserError(f"{path} is not a readable {what} (damaged, truncated or another format); {remedy}") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True``; JSON fields are decoded. UserError on a bad file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    payload = read_torch_file(path, "training checkpoint", "resume from an intact last.pt, or start the run again")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a training checkpoint of this project (expected '{FORMAT}')")
    payload["fit_config"] = json.loads(payload["fit_config"])
    payload["state"] = json.loads(payload["state"])
    return payload
