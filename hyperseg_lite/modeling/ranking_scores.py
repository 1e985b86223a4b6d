"""Category ranking scores: "the object with the most corners" picks the object present whose category ranks first.

Not in HyperSeg (an improvement, ``decoder_config.category_ranking``, off by default and in every converted
checkpoint; it needs the category attribute scores, ``modeling/attribute_scores.py``). Why: the referring score
scores each mask token on its own, but whether a hexagon is "the object with the most corners" depends on what
else is there (not if a star is); on val that question was answered with gIoU 0.62-0.70 where the best mask
token reached 0.85-0.89 (docs/research/embedded-v2.md). So the comparison is made explicit, over the objects the
mask tokens found:

- a text head reads from the question's LLM hidden states whether it ranks objects by a fact of their category,
  p(ranking | text), and the ranking itself: a logit u_c per category (attention-pooled, like the attribute
  scores' text heads). Trained as a choice among the categories present in a scene (the answer's category
  against the others'), u_c - u_d is the log-odds that a c is the answer where a d is also there;
- a token's score is its expected ranking logit, s_k = sum_c p(c | token k) u_c, from the category mask head;
- a token answers with probability objectness x exp(s_k - s_best) (at most 1), where s_best is the highest score
  among the tokens that found an object (objectness over 0.5): the first-ranked object present answers fully,
  the others by their odds against it;
- the answer's probability is the mixture (1 - p(ranking)) x the referring probability + p(ranking) x that.

Like the attribute and relation scores, the text head learns only from its own targets
(``training/attribute_supervision.py``); nothing trains through the mixture. Its gate starts at "no ranking".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .question_heads import gated_heads, mask_geometry, mix, pool_question, split_gate

RANKING_GROUP = "category_ranking"  # its key among the expression's attribute text logits
NO_RANKING_BIAS = 8.0  # initial logit gap of "no ranking": p(ranking) ~ 3e-4, answers unchanged until trained
FOUND = 0.5  # objectness from which a token counts as an object the ranking compares


class CategoryRankingScores(nn.Module):
    """The text head and the scoring of a ranking over ``num_categories`` categories."""

    def __init__(self, text_dim: int, num_categories: int) -> None:
        super().__init__()
        self.text_norm = nn.LayerNorm(text_dim)
        self.text_attention = nn.Linear(text_dim, 2)  # which tokens say "ranked by", which say by what
        # no ranking / ranking; the ranking's logit per category
        self.gate_head, self.ranking_head = gated_heads(text_dim, num_categories, NO_RANKING_BIAS)

    def text_logits(self, hidden: torch.Tensor, expression_mask: torch.Tensor) -> torch.Tensor:
        """LLM hidden states (B, L, D) and the expression's tokens (B, L) -> (B, 1, 2 + categories): the gate
        logits (no ranking, ranking), then the ranking's logit per category."""
        pooled = pool_question(self.text_norm, self.text_attention, hidden, expression_mask)  # (B, 2, D)
        return torch.cat([self.gate_head(pooled[:, 0]), self.ranking_head(pooled[:, 1])], -1)[:, None]

    split = staticmethod(split_gate)  # -> gate logits (B, R, 2), ranking logits (B, R, categories)

    def ranking_probability(
        self, masks: torch.Tensor, category_logits: torch.Tensor, text_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per token and expression (B, Q, R): the probability that it is the first-ranked object present, and the
        probability that the expression ranks at all (B, 1, R)."""
        gate_logits, ranking = self.split(text_logits.float())
        stated = gate_logits.softmax(-1)[..., 1]  # (B, R)
        objectness, _ = mask_geometry(masks)
        scores = torch.einsum("bqc,brc->bqr", category_logits.float().softmax(-1), ranking)  # (B, Q, R)
        found = (objectness > FOUND)[..., None]
        best = torch.where(found.any(1, keepdim=True), scores.masked_fill(~found, -1e4), scores).amax(1, keepdim=True)
        answer = objectness[..., None] * torch.exp((scores - best).clamp(max=0))
        return answer, stated[:, None]

    def combine(
        self, refer_logits: torch.Tensor, masks: torch.Tensor, category_logits: torch.Tensor, text_logits: torch.Tensor
    ) -> torch.Tensor:
        """Referring logits (B, Q, R) -> the logits of the mixture of the referring probability and the ranking's
        answer, weighted by p(ranking stated)."""
        answer, stated = self.ranking_probability(masks, category_logits, text_logits)
        return mix(refer_logits, stated, answer)


def ranking_text_loss(
    text_logits: torch.Tensor, gate_labels: torch.Tensor, answer_labels: torch.Tensor, present: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the gate for every scored expression (``gate_labels`` -100 elsewhere), and where a ranking
    is stated, of the answer's category (``answer_labels``, -100 elsewhere) among the categories ``present`` in
    its scene (B, categories) bool."""
    gate_logits, ranking = CategoryRankingScores.split(text_logits[:, 0].float())
    loss = F.cross_entropy(gate_logits, gate_labels, ignore_index=-100)
    ranked = answer_labels >= 0
    if ranked.any():
        logits = ranking[ranked].masked_fill(~present[ranked], -1e4)
        loss = loss + F.cross_entropy(logits, answer_labels[ranked])
    return loss
