"""Multi-scale deformable attention (Deformable DETR), in pure PyTorch.

The official code imports a compiled CUDA op and fails without it, although the computation is a
bilinear ``grid_sample`` per level followed by a weighted sum. We always use that PyTorch path; it is
exact (same sampling as the op) and runs on CPU, CUDA and MPS.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def deformable_sample(value: torch.Tensor, spatial_shapes: list[tuple[int, int]], sampling_locations: torch.Tensor,
                      attention_weights: torch.Tensor) -> torch.Tensor:
    """value (B, S, M, D); locations (B, Lq, M, L, P, 2) in [0, 1]; weights (B, Lq, M, L, P) -> (B, Lq, M*D)."""
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    per_level = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (height, width) in enumerate(spatial_shapes):
        level_value = per_level[level].flatten(2).transpose(1, 2).reshape(batch * heads, dim, height, width)
        level_grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # (B*M, Lq, P, 2)
        sampled.append(F.grid_sample(level_value, level_grid.to(level_value.dtype), mode="bilinear",
                                     padding_mode="zeros", align_corners=False))  # (B*M, D, Lq, P)
    weights = attention_weights.transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights.to(value.dtype)).sum(-1)
    return out.view(batch, heads * dim, queries).transpose(1, 2).contiguous()


class MultiScaleDeformableAttention(nn.Module):
    """Each query attends to ``num_points`` learned offsets around its reference point on every level."""

    def __init__(self, dim: int = 256, num_levels: int = 3, num_heads: int = 8, num_points: int = 4) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.dim, self.num_levels, self.num_heads, self.num_points = dim, num_levels, num_heads, num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's init: offsets start on a ring of directions, one per head, growing with the point index."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query: torch.Tensor, reference_points: torch.Tensor, values: torch.Tensor,
                spatial_shapes: list[tuple[int, int]]) -> torch.Tensor:
        """query (B, Lq, C); reference_points (B, Lq, L, 2) in [0, 1]; values (B, S, C) flattened levels."""
        batch, queries, _ = query.shape
        value = self.value_proj(values).view(batch, values.shape[1], self.num_heads, self.dim // self.num_heads)
        offsets = self.sampling_offsets(query).view(batch, queries, self.num_heads, self.num_levels, self.num_points, 2)
        weights = self.attention_weights(query).view(batch, queries, self.num_heads, self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(batch, queries, self.num_heads, self.num_levels, self.num_points)
        shapes = torch.tensor(spatial_shapes, dtype=offsets.dtype, device=offsets.device)
        normalizer = torch.stack([shapes[:, 1], shapes[:, 0]], -1)  # (L, 2) as (W, H)
        locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        return self.output_proj(deformable_sample(value, spatial_shapes, locations, weights))
