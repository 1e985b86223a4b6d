"""Colour relation scores: "what shape is the same colour as the ring?" answered by comparing masks' colours.

Not in HyperSeg (an improvement, ``decoder_config.colour_relation``, off by default and in every converted
checkpoint; it needs the colour and category attribute scores, ``modeling/attribute_scores.py``). Why: such a
question names no property of its answer, only of another object, so the one referring score has to find the
anchor, read its colour and find that colour elsewhere in a single dot product; on val it chose a right object
for about one question in six (gIoU 0.16, where its other questions reach 0.6-0.97; docs/research/embedded-v2.md).
The mask side already names each mask token's colour and category. So, as relationship modules of modular
referring models do (MAttNet, Yu et al. 2018), the relation is scored explicitly:

- a text head reads from the question's LLM hidden states whether it asks for the objects that share the colour
  of another, p(relation | text), and which category that anchor has, p(c | text) (attention-pooled, like the
  attribute scores' text heads);
- the anchor: each mask token weighted by p(its category is the anchor's) x its objectness (the mean
  probability inside its mask, 0 for a mask under :data:`~.question_heads.MIN_AREA`), normalised over tokens;
- a token answers the relation with probability objectness x sum over anchors of weight x p(same colour) for
  anchors whose centre lies apart from its own (:data:`MIN_DISTANCE`), x p(it is not itself of the anchor's
  category);
- the answer's probability is the mixture (1 - w) x the referring probability + w x that, where w is p(relation)
  scaled down when no token covers the anchor (an object hidden behind others): then there is nothing to compare
  with, and the referring score answers. An expression the category attribute scores read as a thing outside the
  world ("a toothbrush") gets no relation answer either: the same veto the referring score has.

Replacing the referring score where the relation is stated, not multiplying it, is measured: on val seeds 0 / 1
(the model's own heads, the relation and anchor read off the question by rule) the product with the referring
probability chose right for gIoU 0.45 / 0.46, the relation score alone 0.53 / 0.51. Like the attribute scores,
the text head learns only from its own targets (``training/attribute_supervision.py``), and nothing trains
through the mixture. Its relation column starts at "no relation", so adding it to trained weights changes no
answer until it is trained (``tools/fit_question_heads.py`` fits it on frozen weights in minutes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .question_heads import gated_heads, mask_geometry, mix, pool_question, split_gate

RELATION_GROUP = "colour_relation"  # its key among the expression's attribute text logits
NO_RELATION_BIAS = 8.0  # initial logit gap of "no relation": p(relation) ~ 3e-4, answers unchanged until trained
# p(anchor category) x objectness of the best anchor token from which on the relation answers fully; below it the
# referring score takes over in proportion (val seeds 0 / 1: 0.5 lost 5 / 2 points of the relation questions' gIoU,
# 0.1 and 0.2 nothing; the app's example, whose anchor is hidden behind two others, scores 0.04)
ANCHOR_FOUND = 0.2
MIN_DISTANCE = 0.05  # centres closer than this (share of the side) are the same object, not an anchor and a mate


class ColourRelationScores(nn.Module):
    """The text head and the scoring of the colour relation over ``num_categories`` anchor categories."""

    def __init__(self, text_dim: int, num_categories: int) -> None:
        super().__init__()
        self.text_norm = nn.LayerNorm(text_dim)
        self.text_attention = nn.Linear(text_dim, 2)  # which tokens say "same colour as", which name the anchor
        # no relation / same colour as; the anchor's category
        self.relation_head, self.anchor_head = gated_heads(text_dim, num_categories, NO_RELATION_BIAS)

    def text_logits(self, hidden: torch.Tensor, expression_mask: torch.Tensor) -> torch.Tensor:
        """LLM hidden states (B, L, D) and the expression's tokens (B, L) -> (B, 1, 2 + categories): the relation
        logits (none, same colour as), then the anchor's category logits."""
        pooled = pool_question(self.text_norm, self.text_attention, hidden, expression_mask)  # (B, 2, D)
        return torch.cat([self.relation_head(pooled[:, 0]), self.anchor_head(pooled[:, 1])], -1)[:, None]

    split = staticmethod(split_gate)  # -> relation logits (B, R, 2), anchor category logits (B, R, categories)

    def relation_probability(
        self, masks: torch.Tensor, colour_logits: torch.Tensor, category_logits: torch.Tensor, text_logits: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per token and expression (B, Q, R): the probability that it answers the colour relation, and the
        probability that the expression states the relation at all (B, 1, R)."""
        relation_logits, anchor_logits = self.split(text_logits.float())
        stated = relation_logits.softmax(-1)[..., 1]  # (B, R)
        anchor = anchor_logits.softmax(-1)  # (B, R, C)
        objectness, centres = mask_geometry(masks)
        colour = colour_logits.float().softmax(-1)  # (B, Q, V)
        category = category_logits.float().softmax(-1)  # (B, Q, C)
        is_anchor = torch.einsum("bqc,brc->bqr", category, anchor)  # p(token's category is the anchor's)
        anchor_mass = is_anchor * objectness[..., None]
        weight = anchor_mass / anchor_mass.sum(1, keepdim=True).clamp(min=1e-6)  # over tokens: which one is the anchor
        same_colour = torch.einsum("bqv,bjv->bqj", colour, colour)
        apart = (torch.cdist(centres, centres) > MIN_DISTANCE).float()
        mates = torch.einsum("bqj,bjr->bqr", same_colour * apart, weight)
        answer = objectness[..., None] * mates * (1 - is_anchor)
        # no mask found the anchor (hidden behind others, say): nothing to compare with, the referring score answers
        found = (anchor_mass.amax(1) / ANCHOR_FOUND).clamp(max=1)  # (B, R)
        return answer.clamp(0, 1), (stated * found)[:, None]

    def combine(
        self,
        refer_logits: torch.Tensor,
        masks: torch.Tensor,
        colour_logits: torch.Tensor,
        category_logits: torch.Tensor,
        text_logits: torch.Tensor,
        outside: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Referring logits (B, Q, R) -> the logits of the mixture of the referring probability and the relation's
        answer, weighted by p(relation stated). ``outside`` (B, 1, R): the probability that the expression names a
        thing outside the world (the category attribute scores' text head), which no relation answers either."""
        answer, stated = self.relation_probability(masks, colour_logits, category_logits, text_logits)
        if outside is not None:
            answer = answer * (1 - outside.float())
        return mix(refer_logits, stated, answer)


def relation_text_loss(
    text_logits: torch.Tensor, relation_labels: torch.Tensor, anchor_labels: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the relation column for every scored expression (``relation_labels`` -100 elsewhere) and
    of the anchor's category where a relation is stated (``anchor_labels`` -100 elsewhere)."""
    relation_logits, anchor_logits = ColourRelationScores.split(text_logits[:, 0].float())
    loss = F.cross_entropy(relation_logits, relation_labels, ignore_index=-100)
    if (anchor_labels >= 0).any():
        loss = loss + F.cross_entropy(anchor_logits, anchor_labels, ignore_index=-100)
    return loss
