"""Visual-prompt region pooling: one embedding per clicked point / box / scribble / mask.

Each region arrives as a mask on the pyramid input frame (points and scribbles already drawn as discs,
boxes filled; see :mod:`hyperseg_lite.visual_prompts`). The mask is brought to the global tower's token
grid and the projected global features inside it are averaged into one LLM-width vector, which is put
into the prompt at ``<region>``.

Two modes (``region_pooling`` argument):

* ``"area"`` (default): exact area-weighted mean over the grid cells the region covers. Deterministic,
  and a region smaller than one cell still gets the cell it lies in.
* ``"sampled"``: as the official ``region_pooling(num_sample_point=512)``, up to 512 random points inside
  the region, features bilinearly sampled there and averaged (stochastic; useful as train-time jitter).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _grid(tokens: torch.Tensor) -> torch.Tensor:
    """(N, C) tokens of a square grid -> (C, g, g)."""
    side = math.isqrt(tokens.shape[0])
    if side * side != tokens.shape[0]:
        raise ValueError("global vision tokens must form a square grid")
    return tokens.transpose(0, 1).reshape(tokens.shape[1], side, side)


def pool_regions(
    tokens: torch.Tensor,
    region_masks: torch.Tensor,
    mode: str = "area",
    num_points: int = 512,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``tokens`` (N, C) projected global features of one image; ``region_masks`` (R, H, W) bool -> (R, C)."""
    if region_masks.numel() == 0 or region_masks.shape[0] == 0:
        return tokens.new_zeros((0, tokens.shape[1]))
    # checked where the masks come from (the CPU, from the pipeline), before they move: no device sync
    if not bool(region_masks.flatten(1).any(dim=1).all()):
        raise ValueError("a region mask is empty: every point, box or scribble must cover some pixels")
    grid = _grid(tokens)
    side = grid.shape[-1]
    masks = region_masks.to(device=tokens.device, non_blocking=True).float()  # pageable host memory: no device sync
    if mode == "area":
        coverage = F.adaptive_avg_pool2d(masks[:, None], side)[:, 0]  # (R, g, g) fraction of each cell covered
        # a region smaller than a cell still covers that cell fractionally; normalise to a weighted mean
        weights = coverage.flatten(1) / coverage.flatten(1).sum(1, keepdim=True)
        return weights.to(tokens.dtype) @ tokens
    if mode == "sampled":
        pooled = []
        for mask in masks:
            ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
            if ys.numel() == 0:
                raise ValueError("a region mask is empty: every point, box or scribble must cover some pixels")
            pick = torch.randperm(ys.numel(), generator=generator, device=ys.device)[:num_points]
            height, width = mask.shape
            coords = torch.stack([(xs[pick].float() + 0.5) / width, (ys[pick].float() + 0.5) / height], dim=-1)
            sampled = F.grid_sample(
                grid[None].float(), (coords * 2 - 1)[None, None], align_corners=False, padding_mode="border"
            )  # edge regions are not pulled towards zero
            pooled.append(sampled[0, :, 0].mean(dim=-1))
        return torch.stack(pooled).to(tokens.dtype)
    raise ValueError(f"unknown region pooling mode {mode!r}; use 'area' or 'sampled'")
