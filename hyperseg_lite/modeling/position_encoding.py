"""2-D sine position embedding (DETR / Mask2Former ``PositionEmbeddingSine`` with ``normalize=True``).

Same numerics as the release: float32 cumulative row/column indices (1..H, 1..W) divided by the last one
(+1e-6) and scaled to 2*pi, then interleaved sin/cos over ``num_pos_feats`` frequencies; y features come
first, then x. There is never a padding mask here (the release passes none either), so every pixel counts.
"""

from __future__ import annotations

import math

import torch


def sine_position_embedding(
    x: torch.Tensor, num_pos_feats: int, temperature: float = 10000.0, scale: float = 2 * math.pi
) -> torch.Tensor:
    """(B, C, H, W) feature map -> (B, 2 * num_pos_feats, H, W) float32 positions (only x's shape/device are read)."""
    batch, _, height, width = x.shape
    ones = torch.ones((batch, height, width), device=x.device, dtype=torch.float32)
    y_embed = ones.cumsum(1)
    x_embed = ones.cumsum(2)
    eps = 1e-6
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=x.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_pos_feats)
    pos_x = x_embed[..., None] / dim_t
    pos_y = y_embed[..., None] / dim_t
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
    return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)
