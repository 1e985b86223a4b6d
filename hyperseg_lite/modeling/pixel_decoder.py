"""Mask2Former's MSDeformAttn pixel decoder: a deformable-attention encoder over res3-res5 plus a one-level FPN.

Outputs the per-pixel ``mask_features`` (stride 4) that mask queries are dotted with, and the three encoded
maps (strides 32, 16, 8 - lowest resolution first, as the release's ``forward_features`` returns them) for
the masked-attention decoder. Sub-module names follow the release (``input_proj``,
``transformer.encoder.layers``, ``transformer.level_embed``, ``adapter_1``, ``layer_1``, ``mask_features``)
so a checkpoint's ``pixel_decoder.*`` weights load by name. Dropout is left out: the release trains it at 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .deformable_attention import MultiScaleDeformableAttention, level_size_tensor
from .position_encoding import sine_position_embedding


def _c2_xavier_fill(conv: nn.Conv2d) -> nn.Conv2d:
    """detectron2's ``c2_xavier_fill`` (the release's init for these convs): kaiming-uniform a=1, zero bias."""
    nn.init.kaiming_uniform_(conv.weight, a=1)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class DeformableEncoderLayer(nn.Module):
    """Post-norm: deformable self-attention over all levels, then a ReLU FFN (names as the release)."""

    def __init__(self, dim: int, dim_feedforward: int, num_levels: int, num_heads: int, num_points: int) -> None:
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(dim, num_levels, num_heads, num_points)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        reference_points: torch.Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        level_sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        src = self.norm1(src + self.self_attn(src + pos, reference_points, src, spatial_shapes, level_sizes))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DeformableEncoder(nn.Module):
    def __init__(
        self, dim: int, dim_feedforward: int, num_layers: int, num_levels: int, num_heads: int, num_points: int
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(dim, dim_feedforward, num_levels, num_heads, num_points) for _ in range(num_layers)
        )

    @staticmethod
    def reference_points(spatial_shapes: Sequence[tuple[int, int]], valid_ratios: torch.Tensor) -> torch.Tensor:
        """Pixel centres of every level in [0, 1], as the release's ``get_reference_points``.

        valid_ratios (B, L, 2) as (w, h): the unpadded fraction of each level (all ones here: no padding mask).
        Returns float32 (B, S, L, 2) as (x, y).
        """
        device = valid_ratios.device
        refs = []
        for level, (height, width) in enumerate(spatial_shapes):
            ref_y, ref_x = torch.meshgrid(
                torch.linspace(0.5, height - 0.5, height, dtype=torch.float32, device=device),
                torch.linspace(0.5, width - 0.5, width, dtype=torch.float32, device=device),
                indexing="ij",
            )
            ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, level, 1] * height)
            ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, level, 0] * width)
            refs.append(torch.stack((ref_x, ref_y), -1))
        return torch.cat(refs, 1)[:, :, None] * valid_ratios[:, None]

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        valid_ratios: torch.Tensor,
    ) -> torch.Tensor:
        reference_points = self.reference_points(spatial_shapes, valid_ratios)
        level_sizes = level_size_tensor(spatial_shapes, src.device)  # once for every layer
        for layer in self.layers:
            src = layer(src, pos, reference_points, spatial_shapes, level_sizes)
        return src


class DeformableTransformer(nn.Module):
    """The release's ``MSDeformAttnTransformerEncoderOnly``: the encoder and the per-level embedding."""

    def __init__(
        self, dim: int, dim_feedforward: int, num_layers: int, num_levels: int, num_heads: int, num_points: int
    ) -> None:
        super().__init__()
        self.encoder = DeformableEncoder(dim, dim_feedforward, num_layers, num_levels, num_heads, num_points)
        self.level_embed = nn.Parameter(torch.empty(num_levels, dim))
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for p in self.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for module in self.modules():
            if isinstance(module, MultiScaleDeformableAttention):
                module._reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(self, sources: Sequence[torch.Tensor], positions: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per-level (B, C, H_l, W_l) maps and position embeddings -> encoded maps, same shapes and order."""
        batch = sources[0].shape[0]
        shapes = [(s.shape[2], s.shape[3]) for s in sources]
        src = torch.cat([s.flatten(2).transpose(1, 2) for s in sources], 1)
        pos = torch.cat(
            [p.flatten(2).transpose(1, 2) + self.level_embed[i].view(1, 1, -1) for i, p in enumerate(positions)], 1
        )
        valid_ratios = torch.ones(batch, len(shapes), 2, dtype=torch.float32, device=src.device)  # no padding
        memory = self.encoder(src, pos, shapes, valid_ratios)
        split = memory.split([h * w for h, w in shapes], dim=1)
        return [level.transpose(1, 2).reshape(batch, -1, h, w) for level, (h, w) in zip(split, shapes)]


class PixelDecoder(nn.Module):
    """[res2, res3, res4, res5] -> (mask_features at stride 4, encoded res5/res4/res3 maps)."""

    num_feature_levels = 3  # the release always encodes res3..res5 and feeds three scales to the decoder

    def __init__(
        self,
        in_channels: Sequence[int],
        strides: Sequence[int] = (4, 8, 16, 32),
        conv_dim: int = 256,
        mask_dim: int = 256,
        num_heads: int = 8,
        dim_feedforward: int = 1024,
        num_encoder_layers: int = 6,
        num_points: int = 4,
        num_groups: int = 32,
        common_stride: int = 4,
    ) -> None:
        super().__init__()
        if len(in_channels) != 4:
            raise ValueError(f"expected channels of res2..res5 (4 values), got {list(in_channels)}")
        if list(strides) != [4, 8, 16, 32] or common_stride != 4:
            # the release derives one FPN level (res2) from min(res3 stride)=8 and common_stride=4
            raise ValueError("the pixel decoder expects res2..res5 at strides 4/8/16/32 and mask features at stride 4")
        self.conv_dim = conv_dim
        # res5, res4, res3 (lowest resolution first), as the release orders input_proj
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, conv_dim, kernel_size=1), nn.GroupNorm(num_groups, conv_dim))
            for c in list(in_channels[1:])[::-1]
        )
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)
        self.transformer = DeformableTransformer(
            conv_dim, dim_feedforward, num_encoder_layers, self.num_feature_levels, num_heads, num_points
        )
        self.mask_features = _c2_xavier_fill(nn.Conv2d(conv_dim, mask_dim, kernel_size=1))
        # the release's lateral (adapter_1) and output (layer_1) convs keep their bias although GroupNorm follows
        self.adapter_1 = nn.Sequential(
            _c2_xavier_fill(nn.Conv2d(in_channels[0], conv_dim, kernel_size=1)), nn.GroupNorm(num_groups, conv_dim)
        )
        self.layer_1 = nn.Sequential(
            _c2_xavier_fill(nn.Conv2d(conv_dim, conv_dim, kernel_size=3, padding=1)), nn.GroupNorm(num_groups, conv_dim)
        )

    @classmethod
    def from_config(cls, decoder_config, in_channels: Sequence[int]) -> PixelDecoder:
        """The model's pixel decoder for a ``HyperSegDecoderConfig`` (stage 1 pretrains this same module)."""
        return cls(
            in_channels=in_channels,
            conv_dim=decoder_config.hidden_dim,
            mask_dim=decoder_config.mask_dim,
            num_heads=decoder_config.num_heads,
            dim_feedforward=decoder_config.pixel_decoder_ffn,
            num_encoder_layers=decoder_config.pixel_decoder_layers,
            num_points=decoder_config.num_points,
            num_groups=decoder_config.num_groups,
        )

    def forward(self, features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """features [res2, res3, res4, res5], each (B, C_i, H/s_i, W/s_i).

        Returns (mask_features (B, mask_dim, H/4, W/4),
        [stride-32, stride-16, stride-8 maps, each (B, conv_dim, ., .)]).
        """
        if len(features) != 4:
            raise ValueError(f"expected [res2, res3, res4, res5], got {len(features)} maps")
        res2, coarse = features[0], list(features[1:])[::-1]  # coarse: res5, res4, res3
        sources = [proj(x) for proj, x in zip(self.input_proj, coarse)]
        positions = [sine_position_embedding(x, self.conv_dim // 2).to(x.dtype) for x in coarse]
        levels = self.transformer(sources, positions)
        lateral = F.relu(self.adapter_1(res2))
        # bilinear upsampling in float, as the release (its comment says nearest; the code is bilinear)
        fine = lateral + F.interpolate(
            levels[-1].float(), size=lateral.shape[-2:], mode="bilinear", align_corners=False
        ).to(res2.dtype)
        fine = F.relu(self.layer_1(fine))
        return self.mask_features(fine), levels[: self.num_feature_levels]
