"""Face crops made on the torch device: affine sampling of whole frames, batched over faces and frames.

The device counterpart of ``realtime.geometry.crops.warp_crop``: frames go to the device once (as uint8),
every face's crop is sampled there with ``F.affine_grid`` + ``F.grid_sample`` (bilinear, zeros
outside the frame, like ``cv2.warpAffine`` with ``BORDER_CONSTANT`` 0), so only the frames go up
and nothing but the network's coordinates has to come back.

Conventions are ``realtime.geometry.crops``'s: a crop matrix M (2, 3) maps image pixels to crop pixels,
pixel centres at integer coordinates. ``grid_sample`` with ``align_corners=False`` puts the
normalised coordinates -1 and +1 at the outer edges of the first and last pixels, so pixel x sits
at (2x + 1) / W - 1; the sampling matrix handed to ``affine_grid`` is
normalise_image . M^-1 . normalise_crop^-1, composed in float64 on the host. Differences from
``warp_crop``: cv2 rounds source coordinates to 1/32 pixel and the result to uint8 (twice when
grey); here everything stays float32, so the crops agree to within about a grey level, not bit for
bit. Grey uses cv2's RGB -> grey weights, applied after the warp as ``warp_crop`` does (the two
commute; warping 3 channels of a few small crops is cheaper than converting whole frames).

Face batches can be padded up to a few bucket sizes (``BUCKETS``) so compiled backends see few
shapes; padded crops are zeros and their results are dropped by the caller.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from realtime.geometry.crops import invert_affine

BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # cv2.COLOR_RGB2GRAY, as realtime.geometry.crops.warp_crop
_OUTSIDE = -4.0  # a normalised coordinate well outside every frame: padded slots sample zeros


def bucket_size(n: int, buckets: Sequence[int] = BUCKETS) -> int:
    """The smallest bucket holding ``n`` faces; past the largest, the next multiple of it."""
    for size in buckets:
        if n <= size:
            return size
    return -(-n // buckets[-1]) * buckets[-1]


def pad_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, ...) -> (size, ...) with zero rows appended (``size`` >= N)."""
    if size < len(x):
        raise ValueError(f"cannot pad a batch of {len(x)} down to {size}")
    if size == len(x):
        return x
    return torch.cat([x, x.new_zeros((size - len(x), *x.shape[1:]))])


def upload_frames(images: Sequence[np.ndarray], device: torch.device | str) -> torch.Tensor:
    """Same-size (H, W, 3) RGB or (H, W) grey uint8 frames -> (B, C, H, W) float32 on ``device``
    (sent as uint8, converted there)."""
    batch = np.stack([np.asarray(image) for image in images])
    if batch.ndim == 3:
        batch = batch[..., None]
    x = torch.from_numpy(batch).to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2).float()


def sampling_theta(matrices: np.ndarray, height: int, width: int, out_size: int) -> np.ndarray:
    """(N, 2, 3) image -> crop matrices -> (N, 2, 3) ``affine_grid`` thetas (crop normalised ->
    image normalised, ``align_corners=False``), float64."""
    def normaliser(w: float, h: float) -> np.ndarray:  # pixel (x, y) -> normalised, pixel centres
        return np.array([[2.0 / w, 0.0, 1.0 / w - 1.0], [0.0, 2.0 / h, 1.0 / h - 1.0], [0.0, 0.0, 1.0]])

    to_image = normaliser(width, height)
    from_crop = np.linalg.inv(normaliser(out_size, out_size))
    thetas = [(to_image @ np.vstack([invert_affine(m), [0.0, 0.0, 1.0]]) @ from_crop)[:2] for m in matrices]
    return np.array(thetas, dtype=np.float64).reshape(-1, 2, 3)


def warp_crops(frames: torch.Tensor, matrices: np.ndarray, counts: Sequence[int], out_size: int,
               grey: bool) -> torch.Tensor:
    """Crops of every face of every frame in one ``grid_sample`` call.

    ``frames`` (B, C, H, W) float (grey levels, ``upload_frames``); ``matrices`` (N, 2, 3) image ->
    crop matrices, frame by frame; ``counts`` (B,) faces per frame (sum N). Returns
    (N, 1 if ``grey`` else C, S, S) float32 grey levels on the frames' device. Frames with fewer
    faces than the busiest one get out-of-frame grids in the spare slots (zeros, dropped).
    """
    b, c, h, w = frames.shape
    if len(counts) != b or sum(counts) != len(matrices):
        raise ValueError(f"counts {list(counts)} do not fit {b} frames and {len(matrices)} matrices")
    n, s = len(matrices), out_size
    if n == 0:
        return frames.new_zeros((0, 1 if grey else c, s, s))
    theta = torch.from_numpy(sampling_theta(np.asarray(matrices, np.float64), h, w, s)).to(frames)
    grids = F.affine_grid(theta, [n, c, s, s], align_corners=False)  # (N, S, S, 2)
    slots_per_frame = max(counts)
    slots = np.concatenate([f * slots_per_frame + np.arange(k) for f, k in enumerate(counts)]).astype(np.int64)
    index = torch.from_numpy(slots).to(frames.device)
    padded = grids.new_full((b * slots_per_frame, s, s, 2), _OUTSIDE)
    padded[index] = grids
    # each frame samples its own slots, stacked along the grid's height: (B, C, slots * S, S)
    crops = F.grid_sample(frames, padded.reshape(b, slots_per_frame * s, s, 2), mode="bilinear",
                          padding_mode="zeros", align_corners=False)
    crops = crops.reshape(b, c, slots_per_frame, s, s).transpose(1, 2).reshape(b * slots_per_frame, c, s, s)
    crops = crops[index]
    if grey and c == 3:
        weights = torch.tensor(GREY_WEIGHTS, dtype=crops.dtype, device=crops.device).view(1, 3, 1, 1)
        crops = (crops * weights).sum(dim=1, keepdim=True)
    elif not grey and c == 1:
        crops = crops.expand(-1, 3, -1, -1)
    return crops


def device_crops(images: Sequence[np.ndarray], matrices: Sequence[Sequence[np.ndarray]], out_size: int,
                 grey: bool, device: torch.device | str, bucket: bool = True) -> torch.Tensor:
    """Host frames and their faces' crop matrices (one list per frame) -> (M, C, S, S) float32
    crops in [0, 1] on ``device``, M = the number of faces, padded up to ``bucket_size`` when
    ``bucket``. Same-size frames share one upload and one sampling call; otherwise one each."""
    counts = [len(mats) for mats in matrices]
    flat = np.array([m for mats in matrices for m in mats], dtype=np.float64).reshape(-1, 2, 3)
    if not len(flat):
        return torch.zeros((0, 1 if grey else 3, out_size, out_size), device=device)
    if len({np.asarray(image).shape for image in images}) <= 1:
        crops = warp_crops(upload_frames(images, device), flat, counts, out_size, grey)
    else:
        parts, start = [], 0
        for image, k in zip(images, counts):
            parts.append(warp_crops(upload_frames([image], device), flat[start:start + k], [k], out_size, grey))
            start += k
        crops = torch.cat(parts)
    crops = crops / 255.0
    return pad_batch(crops, bucket_size(len(crops))) if bucket and len(crops) else crops
