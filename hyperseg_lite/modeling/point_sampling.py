"""Point sampling for mask losses (PointRend / Mask2Former): supervise a few thousand points, not every pixel.

Comparing masks at ~12k points instead of full resolution is what keeps Mask2Former's matching and mask
losses cheap, and it makes them resolution-free: coordinates live in [0, 1] over the image extent, so
predictions at 1/4 scale and targets at full scale (or any other size) are read at the same places.
Importance sampling puts most points where the prediction is uncertain (logit near 0), i.e. on boundaries.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def point_sample(values: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear reads of ``values`` at normalised ``coords``.

    ``values`` (N, C, H, W) or (N, H, W); ``coords`` (N, P, 2) as (x, y) in [0, 1], where 0 and 1 are the
    outer edges of the image (``align_corners=False``), so every resolution maps to the same physical place.
    Returns (N, C, P), or (N, P) for 3-D ``values``. Non-float values (bool masks) are read as float32.
    """
    squeeze = values.dim() == 3
    if squeeze:
        values = values[:, None]
    if not values.is_floating_point():
        values = values.float()
    if values.shape[0] == 0:
        out = values.new_zeros(0, values.shape[1], coords.shape[1])
    else:
        grid = (2.0 * coords.to(values.dtype) - 1.0).unsqueeze(2)  # (N, P, 1, 2)
        out = F.grid_sample(values, grid, mode="bilinear", padding_mode="zeros", align_corners=False).squeeze(3)
    return out[:, 0] if squeeze else out


def uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Higher where a binary logit is closer to 0 (the decision boundary): ``-|logit|``."""
    return -logits.abs()


def uncertain_point_coords(
    mask_logits: torch.Tensor,
    num_points: int,
    oversample_ratio: float = 3.0,
    importance_sample_ratio: float = 0.75,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PointRend's training-time sampling: (N, 1, H, W) or (N, H, W) logits -> (N, ``num_points``, 2) in [0, 1].

    Draw ``oversample_ratio * num_points`` uniform candidates, keep the ``importance_sample_ratio`` share
    that is most uncertain, and fill the rest with fresh uniform points so confident regions are still seen.
    Carries no gradient (the choice of points is not something to learn).
    """
    if oversample_ratio < 1:
        raise ValueError("oversample_ratio must be >= 1")
    if not 0 <= importance_sample_ratio <= 1:
        raise ValueError("importance_sample_ratio must be in [0, 1]")
    logits = mask_logits.detach()
    if logits.dim() == 4:
        logits = logits[:, 0]
    count, device = logits.shape[0], logits.device
    num_candidates = max(int(num_points * oversample_ratio), num_points)
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    if count == 0:
        return torch.zeros(0, num_points, 2, device=device)
    candidates = torch.rand(count, num_candidates, 2, device=device, generator=generator)
    scores = uncertainty(point_sample(logits.float(), candidates))  # (N, num_candidates)
    top = scores.topk(num_uncertain, dim=1).indices
    chosen = torch.gather(candidates, 1, top[..., None].expand(-1, -1, 2))
    if num_random > 0:
        fresh = torch.rand(count, num_random, 2, device=device, generator=generator)
        chosen = torch.cat([chosen, fresh], dim=1)
    return chosen
