"""Mask2Former pixel decoder: a deformable-attention encoder over res3-res5 and a one-level FPN to stride 4.

Outputs the per-pixel ``mask_features`` (stride 4) that mask queries are dotted with, and three
multi-scale maps (strides 32, 16, 8, in that order) for the masked-attention decoder. Sub-module names
follow the release (``input_proj``, ``transformer.encoder.layers``, ``adapter_1``, ``layer_1``,
``mask_features``) so its weights load by name.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .deformable_attention import MultiScaleDeformableAttention
from .position_encoding import sine_position_embedding


def _xavier_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """detectron2's ``c2_xavier_fill``: kaiming-uniform with a=1, zero bias."""
    nn.init.kaiming_uniform_(conv.weight, a=1)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class DeformableEncoderLayer(nn.Module):
    """Post-norm: deformable self-attention, then a ReLU FFN (names as the release)."""

    def __init__(self, dim: int, dim_feedforward: int, num_levels: int, num_heads: int, num_points: int) -> None:
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(dim, num_levels, num_heads, num_points)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, reference_points: torch.Tensor,
                spatial_shapes: list[tuple[int, int]]) -> torch.Tensor:
        src = self.norm1(src + self.self_attn(src + pos, reference_points, src, spatial_shapes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DeformableEncoder(nn.Module):
    def __init__(self, dim: int, dim_feedforward: int, num_layers: int, num_levels: int, num_heads: int,
                 num_points: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DeformableEncoderLayer(dim, dim_feedforward, num_levels, num_heads, num_points)
                                    for _ in range(num_layers))


class DeformableTransformer(nn.Module):
    """Holds the encoder and the per-level embedding (``transformer.level_embed`` in the release)."""

    def __init__(self, dim: int, dim_feedforward: int, num_layers: int, num_levels: int, num_heads: int,
                 num_points: int) -> None:
        super().__init__()
        self.encoder = DeformableEncoder(dim, dim_feedforward, num_layers, num_levels, num_heads, num_points)
        self.level_embed = nn.Parameter(torch.empty(num_levels, dim))
        for p in self.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for module in self.modules():
            if isinstance(module, MultiScaleDeformableAttention):
                module.reset_parameters()
        nn.init.normal_(self.level_embed)

    @staticmethod
    def reference_points(spatial_shapes: list[tuple[int, int]], batch: int, device, dtype) -> torch.Tensor:
        """Pixel centres of every level, normalised to [0, 1] (no padding mask: all valid) -> (B, S, L, 2)."""
        refs = []
        for height, width in spatial_shapes:
            ys, xs = torch.meshgrid(torch.linspace(0.5, height - 0.5, height, dtype=torch.float32, device=device),
                                    torch.linspace(0.5, width - 0.5, width, dtype=torch.float32, device=device),
                                    indexing="ij")
            refs.append(torch.stack((xs.reshape(-1) / width, ys.reshape(-1) / height), -1))
        ref = torch.cat(refs, 0)[None, :, None].expand(batch, -1, len(spatial_shapes), -1)
        return ref.to(dtype)

    def forward(self, sources: list[torch.Tensor], positions: list[torch.Tensor]) -> list[torch.Tensor]:
        batch = sources[0].shape[0]
        shapes = [(s.shape[2], s.shape[3]) for s in sources]
        src = torch.cat([s.flatten(2).transpose(1, 2) for s in sources], 1)
        pos = torch.cat([p.flatten(2).transpose(1, 2) + self.level_embed[i].view(1, 1, -1)
                         for i, p in enumerate(positions)], 1)
        ref = self.reference_points(shapes, batch, src.device, src.dtype)
        for layer in self.encoder.layers:
            src = layer(src, pos, ref, shapes)
        split = src.split([h * w for h, w in shapes], dim=1)
        return [level.transpose(1, 2).reshape(batch, -1, h, w) for level, (h, w) in zip(split, shapes)]


class PixelDecoder(nn.Module):
    def __init__(self, in_channels: Sequence[int], conv_dim: int = 256, mask_dim: int = 256, num_heads: int = 8,
                 dim_feedforward: int = 1024, num_encoder_layers: int = 6, num_points: int = 4, num_groups: int = 32,
                 strides: Sequence[int] = (4, 8, 16, 32), common_stride: int = 4) -> None:
        super().__init__()
        if list(strides) != [4, 8, 16, 32] or common_stride != 4:
            raise ValueError("the pixel decoder expects res2..res5 at strides 4/8/16/32 and mask features at stride 4")
        self.conv_dim = conv_dim
        # res5, res4, res3 (largest stride first), as the release orders input_proj
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, conv_dim, kernel_size=1), nn.GroupNorm(num_groups, conv_dim))
            for c in list(in_channels[1:])[::-1])
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)
        self.transformer = DeformableTransformer(conv_dim, dim_feedforward, num_encoder_layers, 3, num_heads, num_points)
        self.mask_features = _xavier_conv(nn.Conv2d(conv_dim, mask_dim, kernel_size=1))
        self.adapter_1 = nn.Sequential(_xavier_conv(nn.Conv2d(in_channels[0], conv_dim, kernel_size=1)),
                                       nn.GroupNorm(num_groups, conv_dim))
        self.layer_1 = nn.Sequential(_xavier_conv(nn.Conv2d(conv_dim, conv_dim, kernel_size=3, padding=1)),
                                     nn.GroupNorm(num_groups, conv_dim))

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """[res2, res3, res4, res5] -> (mask_features (B, mask_dim, H/4, W/4), [stride 32, 16, 8 maps])."""
        res2, coarse = features[0], list(features[1:])[::-1]
        sources = [proj(x) for proj, x in zip(self.input_proj, coarse)]
        positions = [sine_position_embedding(x, self.conv_dim // 2).to(x.dtype) for x in coarse]
        levels = self.transformer(sources, positions)
        lateral = F.relu(self.adapter_1(res2))
        fine = lateral + F.interpolate(levels[-1].float(), size=lateral.shape[-2:], mode="bilinear",
                                       align_corners=False).to(lateral.dtype)
        fine = F.relu(self.layer_1(fine))
        return self.mask_features(fine), levels[:3]
