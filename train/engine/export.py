"""``python -m train export``: a training checkpoint -> shipped ``.safetensors`` weights."""
from __future__ import annotations

from pathlib import Path

from realtime.models.attributes import AttributeConfig, AttributeNet
from realtime.models.denoise import Denoiser, DenoiserConfig
from realtime.core.errors import UserError
from realtime.models.model import ModelConfig, build_model
from realtime.models.weights import load_model, save_weights
from train.engine.checkpoint import load_checkpoint


def export(checkpoint: str | Path, out: str | Path) -> str:
    ckpt = load_checkpoint(checkpoint)
    if ckpt["kind"] == "denoiser":
        model = Denoiser(DenoiserConfig.from_json(ckpt["model_config"]))
    else:
        model = build_model(ModelConfig.from_json(ckpt["model_config"]))
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        raise UserError(f"{checkpoint}: tensors do not match its configuration ({str(exc).splitlines()[0]})") from None
    info = {"exported_from": str(checkpoint), "steps": ckpt["step"], "fit_config": ckpt["fit_config"],
            "best_val_nme": ckpt["state"].get("best")}
    head = None
    if "attribute_head" in ckpt:  # semi-supervised runs: ship the attribute head with the model
        head = AttributeNet(AttributeConfig.from_json(ckpt["attribute_head"]["config"]))
        head.load_state_dict(ckpt["attribute_head"]["state"], strict=True)
    save_weights(model, out, info, attribute_head=head)
    load_model(out)  # prove the file round-trips strictly before reporting success
    return f"wrote {out} ({model.config.arch}, {sum(p.numel() for p in model.parameters()):,} parameters)"
