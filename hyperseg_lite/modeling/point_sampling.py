"""Point sampling for mask losses (PointRend / Mask2Former): supervise K points, not every pixel.

Training on ~12k points per mask instead of full-resolution masks is what makes Mask2Former's losses cheap;
importance sampling puts most points where the prediction is uncertain (logit near 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def point_sample(values: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """``values`` (N, C, H, W), ``coords`` (N, P, 2) in [0, 1] as (x, y) -> (N, C, P), bilinear."""
    grid = (2.0 * coords - 1.0).unsqueeze(2)
    return F.grid_sample(values, grid, mode="bilinear", align_corners=False).squeeze(3)


def uncertain_point_coords(mask_logits: torch.Tensor, num_points: int, oversample_ratio: float = 3.0,
                           importance_sample_ratio: float = 0.75) -> torch.Tensor:
    """``mask_logits`` (N, 1, H, W) -> (N, num_points, 2) coordinates, mostly at uncertain places."""
    count = mask_logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    candidates = torch.rand(count, num_sampled, 2, device=mask_logits.device)
    uncertainty = -point_sample(mask_logits, candidates).abs()[:, 0]  # (N, num_sampled)
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    top = uncertainty.topk(num_uncertain, dim=1).indices
    chosen = torch.gather(candidates, 1, top.unsqueeze(-1).expand(-1, -1, 2))
    if num_random > 0:
        chosen = torch.cat([chosen, torch.rand(count, num_random, 2, device=mask_logits.device)], dim=1)
    return chosen
