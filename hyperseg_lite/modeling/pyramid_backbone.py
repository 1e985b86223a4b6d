"""Pyramid (mask) backbone: 4 feature maps at strides 4/8/16/32 (res2..res5) for the FVP and the decoder.

Built with ``transformers.AutoBackbone`` from ``pyramid_config`` (Swin for every preset; Swin-B at
1024 px for ``3b``). ``SwinBackbone`` applies one LayerNorm per returned stage, which is what the official
Swin's ``norm0..norm3`` do.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoBackbone, PreTrainedConfig


class PyramidBackbone(nn.Module):
    def __init__(self, pyramid_config: PreTrainedConfig) -> None:
        super().__init__()
        self.backbone = AutoBackbone.from_config(pyramid_config)
        if hasattr(getattr(self.backbone, "swin", None), "layernorm"):
            # SwinModel's final LayerNorm only feeds its pooled output, which a backbone never returns
            # (the release's Swin has no such norm): drop it so no parameter is dead weight.
            self.backbone.swin.layernorm = nn.Identity()
        if len(self.backbone.channels) != 4:
            raise ValueError("the pyramid backbone must return exactly 4 stages (strides 4, 8, 16, 32)")

    @property
    def channels(self) -> list[int]:
        return list(self.backbone.channels)

    def forward(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) -> [res2, res3, res4, res5], each (B, C_i, S / 2^(i+2), S / 2^(i+2))."""
        dtype = next(self.backbone.parameters()).dtype
        return list(self.backbone(pixel_values.to(dtype)).feature_maps)
