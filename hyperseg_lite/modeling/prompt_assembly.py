"""VLLM input assembly: put image tokens, FVP tokens, mask queries and regions into the LLM's input.

The processor has already expanded every placeholder to its final number of positions, so each kind is
filled with a single masked scatter over the whole batch (the official code loops over chunks of every
sample). Positions come from the attention mask, so left- and right-padded batches of prompts of
different lengths give each token the same position it would have alone.
"""

from __future__ import annotations

import torch
from torch import nn

from ..constants import IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX, SEG_TOKEN_INDEX, TEMPORAL_TOKEN_INDEX


def _fill(embeds: torch.Tensor, input_ids: torch.Tensor, token_id: int, values: torch.Tensor, what: str) -> torch.Tensor:
    where = input_ids == token_id
    expected = int(where.sum())
    if values.shape[0] != expected:
        raise ValueError(f"the prompts hold {expected} {what} positions but {values.shape[0]} {what} embeddings were given")
    if expected == 0:
        return embeds
    return embeds.masked_scatter(where.unsqueeze(-1), values.to(embeds.dtype))


def assemble_inputs_embeds(embed_tokens: nn.Embedding, input_ids: torch.Tensor, image_tokens: torch.Tensor,
                           fvp_tokens: torch.Tensor, mask_queries: torch.Tensor,
                           region_features: torch.Tensor | None = None,
                           region_valid: torch.Tensor | None = None) -> torch.Tensor:
    """``image_tokens`` (B, N, H), ``fvp_tokens`` (B, P, H), ``mask_queries`` (Q, H), regions (B, R, H) padded."""
    embeds = embed_tokens(input_ids.clamp(min=0))
    embeds = _fill(embeds, input_ids, IMAGE_TOKEN_INDEX, image_tokens.reshape(-1, image_tokens.shape[-1]), "image")
    embeds = _fill(embeds, input_ids, TEMPORAL_TOKEN_INDEX, fvp_tokens.reshape(-1, fvp_tokens.shape[-1]), "FVP")
    rows_with_queries = int((input_ids == SEG_TOKEN_INDEX).any(dim=1).sum())  # generation prompts may have none
    queries = mask_queries.unsqueeze(0).expand(rows_with_queries, -1, -1).reshape(-1, mask_queries.shape[-1])
    embeds = _fill(embeds, input_ids, SEG_TOKEN_INDEX, queries, "mask-query")
    if region_features is not None and region_valid is not None and region_valid.any():
        regions = region_features[region_valid]
    else:
        regions = embeds.new_zeros((0, embeds.shape[-1]))
    return _fill(embeds, input_ids, REGION_TOKEN_INDEX, regions, "region")


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
