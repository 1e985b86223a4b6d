"""Mask-pooled features: the pixel features under a mask token's own mask, added to the state its prompts score.

Not in HyperSeg (an improvement, ``decoder_config.mask_pooled_scores``, off by default and in every converted
checkpoint). Why: a prompt score reads only the token's decoder state. In `lite2` that state is colour-blind
(probe at chance at every decoder layer) although the levels it attends to hold colour: the LLM's mask query
arrives with the shape and no colour, and masked cross-attention spreads over far more than the object (in the
shipped `lite` the colour arrives with the query instead). The stride-4 ``mask_features`` the masks are drawn from,
averaged under the token's own final mask (mask pooling, as Osprey's region features), name the object's colour
and shape (docs/research/embedded-v2.md, "Where colour enters"), so "the yellow heart" can be told from "the
white heart". The mask weights are detached, so the scores do not reshape the masks; the gradient
reaches the pixel decoder through the features. The last layer starts at zero, so enabling it on trained weights
changes no output until it is trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# what a mask-pooled module may average: the pixel decoder's ``mask_features``; the pyramid's stride-4 and -8
# stages; a two-stream pyramid's shape channels of every stage (that stream learns from images whose colours
# say nothing of the category)
POOLED_SOURCES = ("pixel_decoder", "pyramid", "shape_stream")


def upsampled_concat(levels: list[torch.Tensor]) -> torch.Tensor:
    """Feature maps, finest first -> one (B, sum C, h, w) map at the finest one's size (bilinear upsampling)."""
    size = levels[0].shape[-2:]
    return torch.cat(
        [levels[0].float()]
        + [F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False) for x in levels[1:]],
        1,
    )


def masked_mean(mask_logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """(B, Q, h, w) mask logits, (B, C, h, w) features -> (B, Q, C) mean of the features weighted by each mask's
    probabilities (detached); an all-background mask gives an almost uniform mean instead of a division by zero."""
    weights = mask_logits.detach().float().sigmoid()
    pooled = torch.einsum("bqhw,bchw->bqc", weights, features.float())
    return pooled / weights.sum((-2, -1)).clamp(min=1e-6)[..., None]


class MaskPooledFeatures(nn.Module):
    """(B, Q, h, w) mask logits + (B, C, h, w) pixel features -> (B, Q, dim) embeddings to add to the states."""

    def __init__(self, in_dim: int, dim: int, init_std: float = 0.0) -> None:
        """``init_std`` 0: the last layer starts at zero (no output changes until trained); above 0, its weights
        start normal with that deviation, so the scores see the pooled features from the first step."""
        super().__init__()
        self.in_dim = in_dim
        self.norm = nn.LayerNorm(in_dim)
        self.hidden = nn.Linear(in_dim, dim)
        self.out = nn.Linear(dim, dim)
        nn.init.normal_(self.out.weight, std=init_std) if init_std > 0 else nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, mask_logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.project(masked_mean(mask_logits, features))

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, Q, in_dim) features already averaged under each mask (:func:`masked_mean`) -> (B, Q, dim)."""
        pooled = pooled.to(self.out.weight.dtype)
        return self.out(nn.functional.gelu(self.hidden(self.norm(pooled))))
