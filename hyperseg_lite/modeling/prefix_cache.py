"""The LLM's state on the last prompt asked about an image, so the next prompt runs only what differs.

Every prompt about an image starts alike: the conversation's opening, the global image tokens at ``<image>`` and
the FVP tokens at ``<temporal>`` (``prompts.IMAGE_PREFIX``); two clicks share their instruction too, two
expressions everything up to the expression. The LLM is causal, so its keys, values and hidden states on a
shared beginning do not depend on what follows: kept from one prompt's pass (its first row), they serve the
next prompt, whose LLM pass then covers only the positions after the longest beginning it shares with the kept
one (an interactive session's next click skips ~70% of the LLM's positions, a second expression ~60%).

What a position holds must be the same for it to count as shared: the same token id, and for placeholders the
same embedding. The cache belongs to the very image / FVP token tensors it was made with
(:meth:`PrefixCache.belongs_to`: another image or a video frame encoded with a temporal state never reads it);
mask-query positions hold the model's own parameters; a region position holds a pooled region (it differs
click to click), so sharing stops there. Inference only: training never passes a cache.

Protocol: the caller (the predictor) makes a cache per image, :meth:`PrefixCache.plan` s each batch of CPU ids
(how many leading positions the pass takes from the cache, ``reuse_length``, 0 for none), and the model's LLM
pass reads those and then :meth:`PrefixCache.keep` s the new prompt's state for the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from ..constants import IMAGE_TOKEN_INDEX, SEG_TOKEN_INDEX, TEMPORAL_TOKEN_INDEX

# placeholders whose embedding is fixed for one cache (image and FVP tokens: the cache's own; mask queries: the
# model's parameters); every other placeholder (a region) ends what two prompts can share
_SHAREABLE_PLACEHOLDERS = (IMAGE_TOKEN_INDEX, TEMPORAL_TOKEN_INDEX, SEG_TOKEN_INDEX)


def image_end(input_ids: torch.Tensor) -> int:
    """(B, L) CPU ids -> the position after the last ``<image>`` / ``<temporal>`` placeholder of any row (0: none):
    a reused beginning must hold them all, so that the rest of the pass needs no image token."""
    where = ((input_ids == IMAGE_TOKEN_INDEX) | (input_ids == TEMPORAL_TOKEN_INDEX)).any(dim=0).nonzero()
    return int(where[-1]) + 1 if where.numel() else 0


def shareable_length(row: torch.Tensor) -> int:
    """(L,) CPU ids -> how many leading positions hold only text and fixed placeholders."""
    other = (row < 0) & ~torch.isin(row, torch.tensor(_SHAREABLE_PLACEHOLDERS))
    where = other.nonzero()
    return int(where[0]) if where.numel() else int(row.shape[0])


@dataclass
class PrefixCache:
    """The LLM's keys, values and last hidden states on ``input_ids`` (one earlier prompt's real tokens) about the
    image whose tokens are ``global_tokens`` / ``fvp_tokens``; empty until a pass :meth:`keep` s one."""

    global_tokens: torch.Tensor  # (1, N, H) the image tokens it belongs to (by identity)
    fvp_tokens: torch.Tensor  # (1, P, H) the FVP tokens it belongs to (by identity)
    input_ids: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))  # (n,) CPU
    key_values: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # per layer (1, h, n, d)
    hidden: torch.Tensor | None = None  # (1, n, H)
    reuse_length: int = 0  # set by plan(): leading positions the coming pass takes from here
    next_length: int = 0  # set by plan(): real positions of the coming pass's row 0 (what keep() stores)
    _next_ids: torch.Tensor | None = field(default=None, repr=False)

    def belongs_to(self, global_tokens: torch.Tensor, fvp_tokens: torch.Tensor) -> bool:
        """Made with these very tensors (an image encoded again, even identically, gets a new cache)."""
        return self.global_tokens is global_tokens and self.fvp_tokens is fvp_tokens

    def plan(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> int:
        """For a right-padded batch (B, L) of CPU prompt ids about this image: how many leading positions every row
        shares with the kept prompt (at least all image / FVP positions, and at least one position left to run;
        else 0: a whole pass). Stored as ``reuse_length`` for the coming pass, and returned."""
        lengths = attention_mask.sum(dim=1)
        shortest = int(lengths.min())
        self.next_length = int(lengths[0])
        self._next_ids = input_ids[0, : self.next_length].clone()
        limit = min(self.input_ids.shape[0], shortest - 1, shareable_length(input_ids[0]))
        same = (input_ids[:, :limit] == self.input_ids[:limit]).all(dim=0) if limit > 0 else torch.zeros(0, dtype=bool)
        length = int(same.long().cumprod(0).sum()) if limit > 0 else 0
        if self.hidden is None or length < max(image_end(input_ids), 1):
            length = 0
        self.reuse_length = length
        return length

    def as_cache(self, batch: int) -> DynamicCache:
        """A fresh transformers cache holding the first ``reuse_length`` positions for ``batch`` rows (the pass
        appends to it, never to this object's tensors)."""
        n = self.reuse_length
        return DynamicCache(
            ddp_cache_data=[
                (k[:, :, :n].expand(batch, -1, -1, -1), v[:, :, :n].expand(batch, -1, -1, -1))
                for k, v in self.key_values
            ]
        )

    def reused_hidden(self, batch: int) -> torch.Tensor:
        """(batch, reuse_length, H) the kept hidden states of the shared positions."""
        return self.hidden[:, : self.reuse_length].expand(batch, -1, -1)

    def keep(self, cache: DynamicCache, hidden: torch.Tensor) -> None:
        """Keep the pass's row 0 (its real positions: keys, values, hidden states) for the next prompt."""
        n = self.next_length
        self.key_values = [(layer.keys[:1, :, :n].clone(), layer.values[:1, :, :n].clone()) for layer in cache.layers]
        self.hidden = hidden[:1, :n].clone()
        self.input_ids = self._next_ids
        self.reuse_length = 0
