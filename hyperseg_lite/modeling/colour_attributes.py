"""Colour attribute scores: an expression's colour word meets each mask's colour in a dedicated term.

Not in HyperSeg (an improvement, ``decoder_config.colour_attributes``, 0 = off by default and in every converted
checkpoint). Why: in `lite2` the referring score is one dot product of the referring embedding with each mask
token's state, and it ignores colour words although both sides hold the colour (the pixel features pooled under
a token's own mask name it at 0.58-0.70, the expressions carry it): thousands of referring steps, and even
samples only the colour decides, did not teach the dot product to join them (docs/research/embedded-v2.md,
"Expressions only the colour decides"). Here the join is explicit, as attribute-factored referring models do:

- a mask head names each mask token's colour from the features under its own mask: p(colour | mask);
- a text head reads which colour the expression states for its target, or none: p(colour | text), p(none | text),
  from the LLM's hidden states of the expression's tokens, attention-pooled (the referring embedding itself is
  their mean, in which the target's colour word and an anchor's mix, and which stage 2 had taught to drop
  colour: 7% of its variance);
- the referring probability is multiplied by p(none | text) + sum_c p(c | text) p(c | mask): by 1 when the
  expression states no colour, by the probability that the mask has the stated colour when it does.

Both heads learn only from their own targets (``training/attribute_supervision.py``): the mask head from each
matched object's painted colour, the text head from the colour the expression states; the referring loss sees
their product as a fixed factor (trained through it too, it pulled the text head towards "no colour"). The text
head starts at "no colour stated", so enabling the term on trained weights multiplies every answer's probability
by about 0.98 until it is trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NO_COLOUR_BIAS = 6.0  # initial logit of "no colour stated": p(none) ~ 0.98 with 10 colours, scores nearly unchanged


class ColourAttributeScores(nn.Module):
    """Mask-pooled features (B, Q, in_dim) and the expression's LLM hidden states (B, L, text_dim) -> (B, Q, 1)
    log-compatibilities."""

    def __init__(self, in_dim: int, dim: int, num_colours: int, text_dim: int) -> None:
        super().__init__()
        self.num_colours = num_colours
        self.mask_head = nn.Sequential(
            nn.LayerNorm(in_dim), nn.Linear(in_dim, dim), nn.GELU(), nn.Linear(dim, num_colours)
        )
        self.text_norm = nn.LayerNorm(text_dim)
        self.text_attention = nn.Linear(text_dim, 1)  # which tokens name the target's colour
        self.text_head = nn.Linear(text_dim, num_colours + 1)  # the last column: the expression states no colour
        nn.init.zeros_(self.text_head.weight)
        with torch.no_grad():
            self.text_head.bias.zero_()
            self.text_head.bias[-1] = NO_COLOUR_BIAS

    def mask_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, Q, in_dim) -> (B, Q, num_colours): the colour of each mask token's object."""
        return self.mask_head(pooled.to(self.text_head.weight.dtype))

    def text_logits(self, hidden: torch.Tensor, expression_mask: torch.Tensor) -> torch.Tensor:
        """LLM hidden states (B, L, text_dim) and the expression's tokens (B, L) -> (B, 1, num_colours + 1): the
        colour each expression states, the last column none (rows without an expression: any value)."""
        tokens = self.text_norm(hidden.to(self.text_head.weight.dtype))
        scores = self.text_attention(tokens).squeeze(-1).float()  # (B, L)
        scores = scores.masked_fill(~expression_mask.bool(), -1e4)
        pooled = torch.einsum("bl,blh->bh", scores.softmax(-1).to(tokens.dtype), tokens)
        return self.text_head(pooled)[:, None]

    @staticmethod
    def combine(refer_logits: torch.Tensor, compatibility: torch.Tensor) -> torch.Tensor:
        """The logit whose sigmoid is sigmoid(``refer_logits``) x exp(``compatibility``): the answer's probability
        times the probability that its mask has the stated colour. (Adding the log-compatibility to the logit
        instead would vanish where the sigmoid saturates: a confident wrong-colour mask would keep its score.)"""
        log_p = F.logsigmoid(refer_logits.float()) + compatibility.float()
        log_p = log_p.clamp(max=-1e-6)  # below 1, so the logit stays finite
        log_not_p = torch.where(log_p > -0.6931, torch.log(-torch.expm1(log_p)), torch.log1p(-torch.exp(log_p)))
        return (log_p - log_not_p).to(refer_logits.dtype)

    @staticmethod
    def compatibility(mask_logits: torch.Tensor, text_logits: torch.Tensor) -> torch.Tensor:
        """log(p(none | text) + sum_c p(c | text) p(c | mask)), (B, Q, R), computed in log space."""
        mask_lp = mask_logits.float().log_softmax(-1)  # (B, Q, K)
        text_lp = text_logits.float().log_softmax(-1)  # (B, R, K + 1)
        stated = text_lp[..., :-1][:, None] + mask_lp[:, :, None]  # (B, Q, R, K)
        none = text_lp[..., -1][:, None, :, None].expand(*stated.shape[:-1], 1)  # (B, Q, R, 1)
        return torch.cat([stated, none], -1).logsumexp(-1)
