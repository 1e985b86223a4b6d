"""Multi-scale deformable attention (Deformable DETR), in pure PyTorch.

Why pure PyTorch: the release's ``ms_deform_attn_func`` imports a compiled CUDA extension
(``MultiScaleDeformableAttention``) at module import time and raises ``ModuleNotFoundError`` when it was not
built, so the official module cannot even be imported on a stock install. The computation itself is one
bilinear ``F.grid_sample`` per level (``align_corners=False``, zero padding) followed by an attention-weighted
sum over levels and points - exactly what the op computes. It runs on CPU, CUDA and MPS and is differentiable
by autograd.

On CPU a second form of the same sum is faster (3.2x on the ``lite`` pixel decoder's 1,344 queries: 6.3 against
20.1 ms per call on the project's 2-core CPU, ``benchmarks/deformable_attention.py``): every bilinear tap becomes one
row of a zero-bordered
value table and ``F.embedding_bag`` adds the rows up, weighted by bilinear x attention weight, without building
the (levels x points) stack of sampled values. It agrees with the ``grid_sample`` form to float32 rounding
(values and gradients; ``tests/test_decoder_stack.py``). :func:`deformable_sample` picks it for CPU tensors.

Precision: like the CUDA op (which is fed ``value.float()`` and float32 weights), sampling runs in float32
and the result is cast back to the value's dtype. Sampling locations are float32 too: in bfloat16 a location
in [0, 1] has only ~1/256 resolution, i.e. half a pixel on a 128-wide level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def deformable_sample(
    value: torch.Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Core of the op (the release's ``ms_deform_attn_core_pytorch``), computed in float32.

    value (B, S, M, D) with S = sum(H_l * W_l) in level order; sampling_locations (B, Lq, M, L, P, 2) as
    (x, y) in [0, 1] (0 = left/top edge of the map, not the first pixel centre); attention_weights
    (B, Lq, M, L, P). Returns (B, Lq, M * D) in value's dtype. The gather form on CPU, ``grid_sample`` elsewhere.
    """
    if value.device.type == "cpu":
        return deformable_sample_gather(value, spatial_shapes, sampling_locations, attention_weights)
    return deformable_sample_grid(value, spatial_shapes, sampling_locations, attention_weights)


def deformable_sample_grid(
    value: torch.Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """:func:`deformable_sample` as the release computes it: one ``grid_sample`` per level, then a weighted sum."""
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    out_dtype = value.dtype
    per_level = value.float().split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations.float() - 1  # grid_sample wants [-1, 1]
    sampled = []
    for level, (height, width) in enumerate(spatial_shapes):
        # (B, H*W, M, D) -> (B*M, D, H, W)
        level_value = per_level[level].flatten(2).transpose(1, 2).reshape(batch * heads, dim, height, width)
        level_grid = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # (B*M, Lq, P, 2)
        sampled.append(
            F.grid_sample(level_value, level_grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        )  # (B*M, D, Lq, P)
    weights = attention_weights.float().transpose(1, 2).reshape(batch * heads, 1, queries, levels * points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)  # (B*M, D, Lq)
    return out.view(batch, heads * dim, queries).transpose(1, 2).contiguous().to(out_dtype)


def deformable_sample_gather(
    value: torch.Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """:func:`deformable_sample` as one weighted ``embedding_bag`` over the four bilinear taps of every point.

    Each level is padded with one zero row / column before and two after, and pixel coordinates are clamped to
    [-1, W] x [-1, H]: a tap outside the map then reads a zero (``grid_sample``'s zero padding) without a mask, and
    a point beyond the border keeps weight only on a zero tap, as there.
    """
    batch, _, heads, dim = value.shape
    _, queries, _, levels, points, _ = sampling_locations.shape
    device = value.device
    per_level = value.float().split([h * w for h, w in spatial_shapes], dim=1)
    tables, starts, pitches, sizes, rows_per_head = [], [], [], [], 0
    for (height, width), level_value in zip(spatial_shapes, per_level):
        level_value = level_value.view(batch, height, width, heads, dim).permute(0, 3, 1, 2, 4)  # (B, M, H, W, D)
        level_value = F.pad(level_value, (0, 0, 1, 2, 1, 2))
        tables.append(level_value.reshape(batch, heads, (height + 3) * (width + 3), dim))
        starts.append(rows_per_head)
        pitches.append(width + 3)
        sizes.append((width, height))
        rows_per_head += (height + 3) * (width + 3)
    table = torch.cat(tables, 2).reshape(-1, dim)  # row ((b * M + m) * rows_per_head + level start + y * pitch + x)
    size = torch.tensor(sizes, dtype=torch.float32, device=device)[:, None]  # (L, 1, 2) as (W, H)
    # pixel coordinates with 0 = the first pixel's centre (align_corners=False)
    pixels = torch.minimum(sampling_locations.float() * size - 0.5, size).clamp_min(-1.0)  # (B, Lq, M, L, P, 2)
    pixels = pixels.nan_to_num(nan=-1.0)  # a NaN location reads a zero tap instead of indexing out of the table
    corner = pixels.floor()
    fx, fy = (pixels - corner).unbind(-1)
    x0, y0 = (corner + 1).long().unbind(-1)  # +1: the padded map's index
    pitch = torch.tensor(pitches, device=device).view(levels, 1)
    head_start = (
        torch.arange(batch, device=device).view(batch, 1, 1, 1, 1) * heads
        + torch.arange(heads, device=device).view(1, 1, heads, 1, 1)
    ) * rows_per_head
    top_left = torch.tensor(starts, device=device).view(levels, 1) + y0 * pitch + x0 + head_start
    rows = torch.stack((top_left, top_left + 1, top_left + pitch, top_left + pitch + 1), -1)
    taps = torch.stack(((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy), -1)
    taps = taps * attention_weights.float()[..., None]
    rows = rows.reshape(batch * queries * heads, levels * points * 4)
    out = F.embedding_bag(rows, table, per_sample_weights=taps.reshape(rows.shape), mode="sum")
    return out.view(batch, queries, heads * dim).to(value.dtype)


def level_size_tensor(spatial_shapes: Sequence[tuple[int, int]], device: torch.device) -> torch.Tensor:
    """(L, 2) float32 (W, H) per level, the divisor that turns pixel offsets into [0, 1] units.

    Written on the device by fill kernels rather than copied from a host list: a blocking host-to-device copy
    waits for every queued kernel, and CUDA graphs cannot capture a copy from pageable memory.
    """
    sizes = torch.empty((len(spatial_shapes), 2), dtype=torch.float32, device=device)
    for level, (height, width) in enumerate(spatial_shapes):
        sizes[level, 0] = width
        sizes[level, 1] = height
    return sizes


class MultiScaleDeformableAttention(nn.Module):
    """Each query attends to ``num_points`` learned offsets around its reference point on every level.

    Parameter names (``sampling_offsets``, ``attention_weights``, ``value_proj``, ``output_proj``) and the
    initialisation are the release's ``MSDeformAttn``.
    """

    def __init__(self, dim: int = 256, num_levels: int = 3, num_heads: int = 8, num_points: int = 4) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.dim, self.num_levels, self.num_heads, self.num_points = dim, num_levels, num_heads, num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Deformable DETR's init: offsets start on a ring, one direction per head, point k at distance k;
        uniform attention over levels and points (zero weights)."""
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

    reset_parameters = _reset_parameters

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        values: torch.Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        level_sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query (B, Lq, C); reference_points (B, Lq, L, 2) as (x, y) in [0, 1]; values (B, S, C), the levels
        flattened and concatenated in ``spatial_shapes`` order ((H, W) per level). Returns (B, Lq, C).
        ``level_sizes``: :func:`level_size_tensor` of ``spatial_shapes``, made once for all layers."""
        batch, queries, _ = query.shape
        if sum(h * w for h, w in spatial_shapes) != values.shape[1]:
            raise ValueError(f"spatial_shapes {list(spatial_shapes)} do not cover {values.shape[1]} values")
        value = self.value_proj(values).view(batch, values.shape[1], self.num_heads, self.dim // self.num_heads)
        offsets = self.sampling_offsets(query).view(batch, queries, self.num_heads, self.num_levels, self.num_points, 2)
        weights = self.attention_weights(query).view(batch, queries, self.num_heads, self.num_levels * self.num_points)
        weights = weights.softmax(-1).view(batch, queries, self.num_heads, self.num_levels, self.num_points)
        # offsets are in pixels of each level: divide by (W, H) since locations are (x, y)
        if level_sizes is None:
            level_sizes = level_size_tensor(spatial_shapes, query.device)
        locations = (
            reference_points.float()[:, :, None, :, None, :]
            + offsets.float() / level_sizes[None, None, None, :, None, :]
        )
        return self.output_proj(deformable_sample(value, spatial_shapes, locations, weights))
