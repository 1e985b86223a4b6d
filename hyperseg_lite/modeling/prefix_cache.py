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

Protocol: the caller (the predictor) makes a :class:`PrefixCache` per image and, for each batch of CPU prompt ids,
asks it for a :class:`PrefixReuse` (:meth:`PrefixCache.plan`): how many leading positions the pass takes from it
(0: a whole pass) and a snapshot of the state they come from. The model's LLM pass reads that plan and hands the new
prompt's state back (:meth:`PrefixReuse.keep`), which replaces the cache's state in one assignment: two passes on
one image at once each read a consistent snapshot, and the last one's state is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class KeptPrompt:
    """One prompt's real positions: its ids (CPU), the LLM's keys and values per layer (1, h, n, d) and its last
    hidden states (1, n, H)."""

    input_ids: torch.Tensor
    key_values: list[tuple[torch.Tensor, torch.Tensor]]
    hidden: torch.Tensor


@dataclass
class PrefixCache:
    """The LLM's state on the last prompt asked about the image whose tokens are ``global_tokens`` / ``fvp_tokens``
    (empty until a pass keeps one)."""

    global_tokens: torch.Tensor  # (1, N, H) the image tokens it belongs to (by identity)
    fvp_tokens: torch.Tensor  # (1, P, H) the FVP tokens it belongs to (by identity)
    kept: KeptPrompt | None = None

    def belongs_to(self, global_tokens: torch.Tensor, fvp_tokens: torch.Tensor) -> bool:
        """Made with these very tensors (an image encoded again, even identically, gets a new cache)."""
        return self.global_tokens is global_tokens and self.fvp_tokens is fvp_tokens

    def plan(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> PrefixReuse:
        """For a right-padded batch (B, L) of CPU prompt ids about this image: the leading positions every row
        shares with the kept prompt, when they hold at least all image / FVP positions and leave at least one
        position to run (else 0: a whole pass)."""
        kept = self.kept
        lengths = attention_mask.sum(dim=1)
        next_ids = input_ids[0, : int(lengths[0])].clone()
        length = 0
        if kept is not None:
            limit = min(kept.input_ids.shape[0], int(lengths.min()) - 1, shareable_length(input_ids[0]))
            if limit > 0:
                same = (input_ids[:, :limit] == kept.input_ids[:limit]).all(dim=0)
                length = int(same.long().cumprod(0).sum())
            if length < max(image_end(input_ids), 1):
                length = 0
        return PrefixReuse(self, length, kept if length else None, next_ids)


@dataclass(frozen=True)
class PrefixReuse:
    """What one LLM pass takes from a :class:`PrefixCache` (``length`` leading positions of ``kept``, a snapshot)
    and gives back to it (:meth:`keep`, its own first row)."""

    cache: PrefixCache
    length: int
    kept: KeptPrompt | None
    next_ids: torch.Tensor  # (n,) the pass's row 0, real positions

    @property
    def global_tokens(self) -> torch.Tensor:
        return self.cache.global_tokens

    @property
    def fvp_tokens(self) -> torch.Tensor:
        return self.cache.fvp_tokens

    def as_cache(self, batch: int) -> DynamicCache:
        """A fresh transformers cache holding the first ``length`` positions for ``batch`` rows (the pass appends to
        it, never to the kept tensors)."""
        n = self.length
        return DynamicCache(
            ddp_cache_data=[
                (k[:, :, :n].expand(batch, -1, -1, -1), v[:, :, :n].expand(batch, -1, -1, -1))
                for k, v in self.kept.key_values
            ]
        )

    def reused_hidden(self, batch: int) -> torch.Tensor:
        """(batch, length, H) the kept hidden states of the shared positions."""
        return self.kept.hidden[:, : self.length].expand(batch, -1, -1)

    def keep(self, cache: DynamicCache, hidden: torch.Tensor) -> None:
        """Keep the pass's row 0 (its real positions: keys, values, hidden states) for the next prompt."""
        n = self.next_ids.shape[0]
        key_values = [(layer.keys[:1, :, :n].clone(), layer.values[:1, :, :n].clone()) for layer in cache.layers]
        self.cache.kept = KeptPrompt(self.next_ids, key_values, hidden[:1, :n].clone())
