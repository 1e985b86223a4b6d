"""Hybrid Entity Recognition (HER), paper Sec. 3.4: prompt embeddings and semantically enhanced mask tokens.

After the single LLM pass, the hidden states are read at fixed places:

* mask tokens: the positions of the ``<seg>`` queries -> ``E_Q`` (projected to the decoder width);
* referring / reasoning: the mean over the expression tokens and their ``[SEG]`` (``<refer>`` span);
* class prompts: one mean per class name span (name tokens + ``[SEG]``) -> one embedding per class;
* visual prompts: the hidden state at each ``<region>`` position.

The segmentation predictor scores every mask token against these prompt embeddings by dot products,
so recognition ("which prompt does this mask answer, if any") uses the LLM's semantics, while the masks
come from the decoder: the hybrid of generation-based and decoder-based recognition.

All poolings are batched (one-hot matmuls / masked sums / gathers), no Python loop over tokens or samples,
and every shape comes from the host-side :class:`~.prompt_layout.PromptLayout`: no device syncs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import REGION_TOKEN_INDEX, SEG_TOKEN_INDEX
from .prompt_layout import PromptLayout


@dataclass
class PromptEmbeddings:
    mask_queries: torch.Tensor  # (B, Q, D)
    refer: torch.Tensor  # (B, 1, D)
    refer_valid: torch.Tensor  # (B,)
    classes: torch.Tensor  # (B, K, D)
    class_valid: torch.Tensor  # (B, K)
    regions: torch.Tensor  # (B, R, D)
    region_valid: torch.Tensor  # (B, R)


def first_positions(where: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the first ``count`` true entries of each row of ``where`` (B, L), in order -> (B, count).

    A stable sort instead of ``nonzero``: the result's shape is known in advance, so nothing waits for the device.
    """
    return torch.sort(where.to(torch.uint8), dim=1, descending=True, stable=True).indices[:, :count]


def gather_rows(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``hidden[b, index[b, k]]`` -> (B, K, H)."""
    return hidden.gather(1, index.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))


def gather_fixed(hidden: torch.Tensor, input_ids: torch.Tensor, token_id: int, count: int) -> torch.Tensor:
    """Hidden states at the ``count`` positions per row holding ``token_id`` -> (B, count, H).

    Every row must hold exactly ``count`` of them (:class:`~.prompt_layout.PromptLayout` checks it on the host).
    """
    return gather_rows(hidden, first_positions(input_ids == token_id, count))


def mean_over_mask(hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of hidden states where ``mask`` (B, L) is true -> (B, 1, H) and validity (B,)."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    count = weights.sum(dim=1)
    pooled = (hidden * weights).sum(dim=1) / count.clamp(min=1)
    return pooled.unsqueeze(1), count.squeeze(-1) > 0


def mean_over_spans(
    hidden: torch.Tensor, spans: torch.Tensor, num_spans: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``spans`` (B, L) holds k+1 on span k -> per-span means (B, K, H) and validity (B, K).

    ``num_spans`` (K) comes from the host-side layout; left out, it is read from ``spans`` (one device sync).
    """
    if num_spans is None:
        num_spans = int(spans.max().item()) if spans.numel() else 0
    if num_spans == 0:
        return hidden.new_zeros((hidden.shape[0], 0, hidden.shape[-1])), spans.new_zeros(
            (hidden.shape[0], 0), dtype=torch.bool
        )
    one_hot = F.one_hot(spans.clamp(0, num_spans), num_spans + 1)[..., 1:].to(hidden.dtype)  # (B, L, K)
    counts = one_hot.sum(dim=1)  # (B, K)
    sums = one_hot.transpose(1, 2) @ hidden  # (B, K, H)
    return sums / counts.clamp(min=1).unsqueeze(-1), counts > 0


def gather_variable(
    hidden: torch.Tensor, positions: torch.Tensor, num: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states at a variable number of positions per row -> (B, R, H) zero padded, validity (B, R).

    ``num`` (R, the most positions in a row) comes from the host-side layout; left out, it is read from
    ``positions`` (one device sync).
    """
    per_row = positions.sum(dim=1)
    if num is None:
        num = int(per_row.max().item()) if positions.numel() else 0
    valid = torch.arange(num, device=hidden.device) < per_row.unsqueeze(1)  # (B, R)
    out = gather_rows(hidden, first_positions(positions, num))
    return torch.where(valid.unsqueeze(-1), out, out.new_zeros(())), valid


class HybridEntityRecognition(nn.Module):
    """Projects the LLM's hidden states to the decoder width, one projector per role (as the release)."""

    def __init__(self, llm_hidden: int, decoder_dim: int) -> None:
        super().__init__()
        self.mask_query_projector = nn.Linear(llm_hidden, decoder_dim)  # official: seg_query_projector
        self.refer_projector = nn.Linear(llm_hidden, decoder_dim)  # official: SEG_token_projector
        self.class_projector = nn.Linear(llm_hidden, decoder_dim)  # official: class_name_projector
        self.region_projector = nn.Linear(llm_hidden, decoder_dim)  # official: region_projector

    def forward(
        self,
        hidden: torch.Tensor,
        input_ids: torch.Tensor,
        class_spans: torch.Tensor | None,
        refer_mask: torch.Tensor | None,
        num_queries: int,
        layout: PromptLayout | None = None,
    ) -> PromptEmbeddings:
        """``layout`` (counts read on the host) keeps this free of device syncs; left out, it is derived."""
        layout = layout if layout is not None else PromptLayout.of(input_ids, class_spans, refer_mask)
        layout.check_filled("mask-query", layout.query_positions, num_queries)
        hidden = hidden.to(self.mask_query_projector.weight.dtype)
        batch = hidden.shape[0]
        mask_queries = self.mask_query_projector(gather_fixed(hidden, input_ids, SEG_TOKEN_INDEX, num_queries))
        if refer_mask is None:
            refer_mask = torch.zeros_like(input_ids, dtype=torch.bool)
        refer, refer_valid = mean_over_mask(hidden, refer_mask)
        if class_spans is None:
            class_spans = torch.zeros_like(input_ids)
        classes, class_valid = mean_over_spans(hidden, class_spans, layout.max_class_names)
        regions, region_valid = gather_variable(hidden, input_ids == REGION_TOKEN_INDEX, layout.max_regions)
        return PromptEmbeddings(
            mask_queries=mask_queries,
            refer=self.refer_projector(refer),
            refer_valid=refer_valid,
            classes=self.class_projector(classes)
            if classes.shape[1]
            else classes.new_zeros((batch, 0, mask_queries.shape[-1])),
            class_valid=class_valid,
            regions=self.region_projector(regions)
            if regions.shape[1]
            else regions.new_zeros((batch, 0, mask_queries.shape[-1])),
            region_valid=region_valid,
        )
