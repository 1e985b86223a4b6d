"""VLLM input assembly: put image tokens, FVP tokens, mask queries and regions into the LLM's input.

The processor has already expanded every placeholder to its final number of positions, so each kind is
filled for the whole batch at once: the k-th placeholder of row b takes embedding k of row b, gathered by
the running count of placeholders (the official code loops over chunks of every sample). Counts come from
the host-side :class:`~.prompt_layout.PromptLayout`, so no step waits for the device. Positions come from
the attention mask, so left- and right-padded batches of prompts of different lengths give each token the
same position it would have alone.
"""

from __future__ import annotations

import torch
from torch import nn

from ..constants import IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX, SEG_TOKEN_INDEX, TEMPORAL_TOKEN_INDEX
from .prompt_layout import PromptLayout


def fill_placeholders(embeds: torch.Tensor, where: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``where`` (B, L) marks the placeholders; row b's k-th marked position takes ``values[b, k]`` (B, N, H).

    Equals a masked scatter of the rows' values in order, without its data-dependent bookkeeping.
    """
    rank = (where.long().cumsum(dim=1) - 1).clamp(0, values.shape[1] - 1)
    picked = values.gather(1, rank.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
    return torch.where(where.unsqueeze(-1), picked.to(embeds.dtype), embeds)


def assemble_inputs_embeds(
    embed_tokens: nn.Embedding,
    input_ids: torch.Tensor,
    image_tokens: torch.Tensor,
    fvp_tokens: torch.Tensor,
    mask_queries: torch.Tensor,
    region_features: torch.Tensor | None = None,
    layout: PromptLayout | None = None,
) -> torch.Tensor:
    """``image_tokens`` (B, N, H), ``fvp_tokens`` (B, P, H), ``mask_queries`` (Q, H), regions (B, R, H) padded.

    Every row holds N image and P FVP positions, Q mask-query positions or none (text generation), and at most
    R region positions, filled with its own first regions in order.
    """
    layout = layout if layout is not None else PromptLayout.of(input_ids)
    batch = input_ids.shape[0]
    layout.check_filled("image", layout.image_positions, image_tokens.shape[1])
    layout.check_filled("FVP", layout.fvp_positions, fvp_tokens.shape[1])
    layout.check_filled("mask-query", layout.query_positions, mask_queries.shape[0], allow_none=True)
    available = 0 if region_features is None else region_features.shape[1]
    if layout.max_regions > available:
        raise ValueError(
            f"the prompts hold {list(layout.region_positions)} region positions per row but only "
            f"{available} region embeddings per row were given"
        )
    embeds = embed_tokens(input_ids.clamp(min=0))
    fills = [
        (IMAGE_TOKEN_INDEX, image_tokens, layout.image_positions),
        (TEMPORAL_TOKEN_INDEX, fvp_tokens, layout.fvp_positions),
        (SEG_TOKEN_INDEX, mask_queries.unsqueeze(0).expand(batch, -1, -1), layout.query_positions),
        (REGION_TOKEN_INDEX, region_features, layout.region_positions),
    ]
    for token_id, values, counts in fills:
        if any(counts):
            embeds = fill_placeholders(embeds, input_ids == token_id, values)
    return embeds


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
