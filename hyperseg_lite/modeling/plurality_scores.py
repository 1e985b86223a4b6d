"""Plurality: does a referring expression name one object or several ("the brown arrow at the top" / "all brown
objects")?

Not in HyperSeg (an improvement, ``decoder_config.plurality``, off by default and in every converted checkpoint).
Why: an expression about several objects is answered with every mask token scoring at least
``config.referring_union_threshold`` (``pipeline/postprocess.py``, ``referring_union``), as the decoder proposes
objects one per token. A singular expression whose words fit two objects ("the brown arrow at the top" where two
brown arrows are) then gets both: on val (seeds 0 / 1, the embedded weights) the union at 0.6 took the plural
expressions' cIoU 0.701 -> 0.894 and 0.635 -> 0.768 but the singular ones' 0.784 -> 0.779 and 0.789 -> 0.752; with
the union for the plural expressions only, all expressions reach 0.809 and 0.783 (0.804 and 0.756 with it for all;
docs/research/embedded-v2.md).

So a text head reads from the expression's LLM hidden states (attention-pooled, like the other question heads)
p(several | text); the pipeline unions only where it is at least one half. Nothing else reads it and it changes no
score. It starts at "one object", so a checkpoint that gains it unions nothing until the head is fitted
(``tools/fit_question_heads.py --heads plurality``, on the frozen weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .question_heads import closed_gate, pool_question

PLURALITY_GROUP = "plurality"  # its key among the expression's attribute text logits
ONE_OBJECT_BIAS = 8.0  # initial logit gap of "one object": p(several) ~ 3e-4 until the head is fitted


class PluralityHead(nn.Module):
    """Reads whether an expression names one object or several."""

    def __init__(self, text_dim: int) -> None:
        super().__init__()
        self.text_norm = nn.LayerNorm(text_dim)
        self.text_attention = nn.Linear(text_dim, 1)  # which tokens say how many ("all", a plural noun)
        self.head = closed_gate(text_dim, ONE_OBJECT_BIAS)  # one object, several

    def text_logits(self, hidden: torch.Tensor, expression_mask: torch.Tensor) -> torch.Tensor:
        """LLM hidden states (B, L, D) and the expression's tokens (B, L) -> (B, 1, 2): one object, several."""
        pooled = pool_question(self.text_norm, self.text_attention, hidden, expression_mask)  # (B, 1, D)
        return self.head(pooled[:, 0])[:, None]

    @staticmethod
    def several_probability(text_logits: torch.Tensor) -> torch.Tensor:
        """(B, R, 2) -> p(the expression names several objects) (B, R)."""
        return text_logits.float().softmax(-1)[..., 1]


def plurality_text_loss(text_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of one / several (``labels`` 0 / 1, -100 where an expression has none; 0 when none has)."""
    if not (labels >= 0).any():
        return text_logits.sum() * 0.0
    return F.cross_entropy(text_logits[:, 0].float(), labels, ignore_index=-100)
