"""Fine-grained Visual Perceiver (FVP), paper Sec. 3.3, Eq. (1)-(2).

A fixed set of learnable latents ``P_0`` is refined by one cross-attention layer per pyramid scale
(res3, res4, res5 after a 1x1 projection ``G_p`` plus a level embedding):

    P^_j = MHCA(P_{j-1}, G_p(f_img^(j)))
    P_j  = P_{j-1} + tanh(MLP(P^_j)) * P^_j      (paper: conditional weight)
    P_j  = P_{j-1} + P^_j                        (released code: plain residual; our default)

followed by a feed-forward block, a final LayerNorm and a linear map to the LLM width. The resulting
tokens go into the LLM at ``<temporal>``. The attention is the Flamingo-style perceiver attention the
official code uses (keys/values over ``[image features; latents]``).

For video, the temporal adapter replaces ``P_0`` by the previous frame's LLM outputs at the FVP
positions, mapped back by :attr:`from_llm` (local space-time injection).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PerceiverAttention(nn.Module):
    """Latents attend to ``[media; latents]`` (names follow the release: norm_media, to_q, to_kv, to_out)."""

    def __init__(self, dim: int, num_heads: int, head_dim: int) -> None:
        super().__init__()
        inner = num_heads * head_dim
        self.num_heads = num_heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, media: torch.Tensor, latents: torch.Tensor, return_attention: bool = False):
        media = self.norm_media(media)
        latents = self.norm_latents(latents)
        batch, n_lat, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([media, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = (t.view(batch, t.shape[1], self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        if return_attention:
            weights = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1)
            out = weights @ v
        else:
            weights = None
            out = F.scaled_dot_product_attention(q, k, v)
        out = self.to_out(out.transpose(1, 2).reshape(batch, n_lat, -1))
        return out, weights


class FeedForward(nn.Sequential):
    """LayerNorm -> Linear -> GELU -> Linear, no biases (indices 0, 1, 3 as in the release)."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__(
            nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(), nn.Linear(dim * mult, dim, bias=False)
        )


class ConditionalGate(nn.Sequential):
    """The paper's conditional weight ``tanh(MLP(P^_j)) * P^_j``.

    The last layer starts at weight 0 / bias 1, so every latent begins with the same weight tanh(1) ~ 0.76
    (rather than 0, which would switch the cross-attention off) and learns to modulate it.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        nn.init.zeros_(self[2].weight)
        nn.init.ones_(self[2].bias)

    def forward(self, attended: torch.Tensor) -> torch.Tensor:
        return torch.tanh(super().forward(attended)) * attended


class FineGrainedVisualPerceiver(nn.Module):
    def __init__(
        self,
        in_channels: list[int],
        num_latents: int,
        dim: int,
        num_layers: int,
        num_heads: int,
        head_dim: int,
        ff_mult: int,
        llm_hidden: int,
        pyramid_levels: list[int],
        conditional_gate: bool = False,
    ) -> None:
        super().__init__()
        self.pyramid_levels = list(pyramid_levels)
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.level_projections = nn.ModuleList(
            nn.Conv2d(in_channels[level], dim, kernel_size=1) for level in self.pyramid_levels
        )
        self.level_embed = nn.Embedding(num_layers, dim)
        self.attention_layers = nn.ModuleList(PerceiverAttention(dim, num_heads, head_dim) for _ in range(num_layers))
        self.feed_forwards = nn.ModuleList(FeedForward(dim, ff_mult) for _ in range(num_layers))
        self.gates = nn.ModuleList(ConditionalGate(dim) for _ in range(num_layers)) if conditional_gate else None
        self.norm = nn.LayerNorm(dim)
        self.to_llm = nn.Linear(dim, llm_hidden)  # official: expanded_seg_query_project
        self.from_llm = nn.Linear(llm_hidden, dim)  # official: temporal_query_project (local injection)
        for conv in self.level_projections:  # c2_xavier_fill, as the release initialises local_project
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def initial_latents(self, batch_size: int) -> torch.Tensor:
        return self.latents.unsqueeze(0).expand(batch_size, -1, -1)

    def forward(
        self, features: list[torch.Tensor], latents: torch.Tensor | None = None, return_attention: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``features`` = [res2..res5]; returns (B, num_latents, llm_hidden) tokens and per-layer attention maps."""
        batch = features[0].shape[0]
        latents = self.initial_latents(batch) if latents is None else latents
        latents = latents.to(self.latents.dtype)
        attention_maps: list[torch.Tensor] = []
        for i, level in enumerate(self.pyramid_levels):
            media = self.level_projections[i](features[level].to(self.latents.dtype)).flatten(2).transpose(1, 2)
            media = media + self.level_embed.weight[i]
            attended, weights = self.attention_layers[i](media, latents, return_attention)
            if self.gates is not None:
                latents = latents + self.gates[i](attended)
            else:
                latents = latents + attended
            latents = latents + self.feed_forwards[i](latents)
            if weights is not None:
                attention_maps.append(weights)
        return self.to_llm(self.norm(latents)), attention_maps
