"""Batched prediction over a dataset, in crop pixels, shared by validation and evaluation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from realtime.models.decode import decode
from realtime.models.denoise import Denoiser, joint_decode
from realtime.models.model import LandmarkNet
from train.data.loader import LandmarkDataset


@dataclass
class Predictions:
    """``pred``/``gt`` (N, K, 2) crop pixels, ``mask`` (N, K) bool, ``scores`` (N, K)."""

    pred: np.ndarray
    gt: np.ndarray
    mask: np.ndarray
    scores: np.ndarray


@torch.no_grad()
def predict_dataset(model: LandmarkNet, dataset: LandmarkDataset, batch_size: int = 64,
                    decoder: str | None = None, beta: float | None = None,
                    denoiser: Denoiser | None = None, bf16: bool = False,
                    device: torch.device | str = "cpu") -> Predictions:
    """Run ``model`` (already on ``device``) over every item of ``dataset`` (in order) and decode
    each heat map; only points and scores come back to the host."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    decoder = decoder or model.config.decoder
    beta = model.config.beta if beta is None else beta
    preds, gts, masks, scores = [], [], [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(batch["image"].to(device)).float()
        if denoiser is not None:
            points, score = joint_decode(logits, denoiser, decoder, beta)
        else:
            points, score = decode(logits, decoder, beta)
        preds.append(points.cpu().numpy())
        scores.append(score.cpu().numpy())
        gts.append(batch["points"].numpy())
        masks.append(batch["mask"].numpy())
    model.train(was_training)
    return Predictions(np.concatenate(preds), np.concatenate(gts), np.concatenate(masks), np.concatenate(scores))
