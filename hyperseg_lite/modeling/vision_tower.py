"""Global vision tower + projector: whole-image tokens for the LLM (paper: ``f_v = F_CLIP(V)``, ``G_c``).

Any transformers vision model that returns hidden states works; HyperSeg-3B uses SigLIP so400m/14 at
384 px (729 tokens). A convolutional tower (ResNet / ConvNeXt, the ``lite2`` preset) returns (B, C, h, w) maps;
its selected stage is read as h*w tokens in raster order, like a ViT's patch grid. As in LLaVA/Mipha, the features
come from the second-to-last layer
(``vision_feature_layer=-2``) and pass through a 2-layer GELU MLP (``mlp2x_gelu``) to the LLM width.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, PreTrainedConfig


class VisionProjector(nn.Sequential):
    """``mlp2x_gelu``: Linear -> GELU -> Linear (indices 0 and 2 hold weights, as in the release)."""

    def __init__(self, vision_hidden: int, llm_hidden: int) -> None:
        super().__init__(nn.Linear(vision_hidden, llm_hidden), nn.GELU(), nn.Linear(llm_hidden, llm_hidden))


def tower_width(vision_config: PreTrainedConfig) -> int:
    """Channels of the tower's tokens: a ViT's hidden size, or a conv tower's last stage width."""
    if hasattr(vision_config, "hidden_sizes"):
        return int(vision_config.hidden_sizes[-1])
    return int(vision_config.hidden_size)


class GlobalVisionTower(nn.Module):
    def __init__(self, vision_config: PreTrainedConfig, llm_hidden: int, feature_layer: int = -2) -> None:
        super().__init__()
        self.encoder = AutoModel.from_config(vision_config)
        self.projector = VisionProjector(tower_width(vision_config), llm_hidden)
        self.feature_layer = feature_layer

    def encode(self, global_pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, G, G) -> (B, N, vision_hidden) patch features of the selected layer (no projection)."""
        dtype = next(self.encoder.parameters()).dtype
        out = self.encoder(pixel_values=global_pixel_values.to(dtype), output_hidden_states=True)
        hidden = out.hidden_states[self.feature_layer]
        if hidden.ndim == 4:  # convolutional tower: (B, C, h, w) -> (B, h*w, C)
            hidden = hidden.flatten(2).transpose(1, 2)
        return hidden

    def forward(self, global_pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, G, G) -> (B, N, llm_hidden): tokens placed at ``<image>``."""
        return self.projector(self.encode(global_pixel_values))
