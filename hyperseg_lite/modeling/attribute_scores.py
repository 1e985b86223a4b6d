"""Attribute scores: the colour and the category an expression states meet each mask's own, in dedicated terms.

Not in HyperSeg (an improvement, ``decoder_config.colour_attributes`` / ``category_attributes``, 0 = off by
default and in every converted checkpoint). Why: in `lite2` the referring score is one dot product of the
referring embedding with each mask token's state, and it ignores colour words although both sides hold the colour
(the pixel features pooled under a token's own mask name it at 0.58-0.70, the expressions carry it): thousands of
referring steps, and even samples only the colour decides, did not teach the dot product to join them; "the
<shape>" was chosen right 0.44 of the time where some mask covered the object 0.80 (docs/research/embedded-v2.md).
Here each join is explicit, as attribute-factored referring models do. Per attribute group (colour, category):

- a mask head names each mask token's value from the features under its own mask: p(value | mask);
- a text head reads which value the expression states for its target, or none: p(value | text), p(none | text),
  from the LLM's hidden states of the expression's tokens, attention-pooled (the referring embedding itself is
  their mean, in which the target's words and an anchor's mix). The category group has one more column:
  the expression names a thing outside the world ("the purple elephant", another language, nonsense), which no
  mask has;
- the referring probability is multiplied by p(none | text) + sum_v p(v | text) p(v | mask) for every group: by
  1 when the expression states nothing of the group, by the probability that the mask has the stated value when
  it does, by about 0 when it names something outside the world.

Both heads learn only from their own targets (``training/attribute_supervision.py``); the referring loss sees the
product as a fixed factor (trained through it too, it pulled the colour text head towards "no colour"). The text
head starts at "none stated", so enabling a group on trained weights multiplies every answer's probability by
about 0.98 until it is trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ATTRIBUTE_GROUPS = ("colour", "category")  # the config's <group>_attributes, the decoder's <group>_attributes
NONE_STATED_BIAS = 6.0  # initial logit of "none stated": p(none) ~ 0.98 with 10-12 values, scores nearly unchanged


class AttributeScores(nn.Module):
    """One attribute group. Mask-pooled features (B, Q, in_dim) and the expression's LLM hidden states
    (B, L, text_dim) -> (B, Q, 1) log-compatibilities.

    The text head's columns: the ``num_values`` values, "none stated", and with ``outside`` "names a thing outside
    the world" (compatible with no mask)."""

    def __init__(self, in_dim: int, dim: int, num_values: int, text_dim: int, outside: bool = False) -> None:
        super().__init__()
        self.num_values = num_values
        self.outside = outside
        self.mask_head = self.new_mask_head(in_dim, dim, num_values)
        self.text_norm = nn.LayerNorm(text_dim)
        self.text_attention = nn.Linear(text_dim, 1)  # which tokens name the target's value
        self.text_head = nn.Linear(text_dim, num_values + 1 + int(outside))
        nn.init.zeros_(self.text_head.weight)
        with torch.no_grad():
            self.text_head.bias.zero_()
            self.text_head.bias[num_values] = NONE_STATED_BIAS

    @staticmethod
    def new_mask_head(in_dim: int, dim: int, num_values: int) -> nn.Sequential:
        """The mask side: LayerNorm, Linear, GELU, Linear over ``in_dim``-channel mask-pooled features."""
        return nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, dim), nn.GELU(), nn.Linear(dim, num_values))

    @property
    def none_index(self) -> int:
        return self.num_values

    @property
    def outside_index(self) -> int | None:
        return self.num_values + 1 if self.outside else None

    def outside_probability(self, text_logits: torch.Tensor) -> torch.Tensor:
        """(B, R, columns) -> (B, R): the probability that the expression names a thing outside the world (0 for a
        group without that column)."""
        if self.outside_index is None:
            return torch.zeros(text_logits.shape[:-1], device=text_logits.device)
        return text_logits.float().softmax(-1)[..., self.outside_index]

    def mask_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, Q, in_dim) -> (B, Q, num_values): the value of each mask token's object."""
        return self.mask_head(pooled.to(self.text_head.weight.dtype))

    def text_logits(self, hidden: torch.Tensor, expression_mask: torch.Tensor) -> torch.Tensor:
        """LLM hidden states (B, L, text_dim) and the expression's tokens (B, L) -> (B, 1, columns): the value each
        expression states, then none (and outside) (rows without an expression: any value)."""
        tokens = self.text_norm(hidden.to(self.text_head.weight.dtype))
        scores = self.text_attention(tokens).squeeze(-1).float()  # (B, L)
        scores = scores.masked_fill(~expression_mask.bool(), -1e4)
        pooled = torch.einsum("bl,blh->bh", scores.softmax(-1).to(tokens.dtype), tokens)
        return self.text_head(pooled)[:, None]

    @staticmethod
    def combine(refer_logits: torch.Tensor, compatibility: torch.Tensor) -> torch.Tensor:
        """The logit whose sigmoid is sigmoid(``refer_logits``) x exp(``compatibility``): the answer's probability
        times the probability that its mask has what the expression states. (Adding the log-compatibility to the
        logit instead would vanish where the sigmoid saturates: a confident wrong-colour mask would keep its
        score.)"""
        log_p = F.logsigmoid(refer_logits.float()) + compatibility.float()
        log_p = log_p.clamp(max=-1e-6)  # below 1, so the logit stays finite
        log_not_p = torch.where(log_p > -0.6931, torch.log(-torch.expm1(log_p)), torch.log1p(-torch.exp(log_p)))
        return (log_p - log_not_p).to(refer_logits.dtype)

    def compatibility(self, mask_logits: torch.Tensor, text_logits: torch.Tensor) -> torch.Tensor:
        """log(p(none | text) + sum_v p(v | text) p(v | mask)), (B, Q, R), computed in log space ("outside"
        adds nothing: no mask has it)."""
        k = self.num_values
        mask_lp = mask_logits.float().log_softmax(-1)  # (B, Q, K)
        text_lp = text_logits.float().log_softmax(-1)  # (B, R, columns)
        stated = text_lp[..., :k][:, None] + mask_lp[:, :, None]  # (B, Q, R, K)
        none = text_lp[..., k][:, None, :, None].expand(*stated.shape[:-1], 1)  # (B, Q, R, 1)
        return torch.cat([stated, none], -1).logsumexp(-1)
