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
  probability inside its mask, 0 for a mask under :data:`MIN_AREA`), normalised over tokens;
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

RELATION_GROUP = "colour_relation"  # its key among the expression's attribute text logits
NO_RELATION_BIAS = 8.0  # initial logit gap of "no relation": p(relation) ~ 3e-4, answers unchanged until trained
MIN_AREA = 5e-4  # share of the mask grid a token must cover to count as an object (about 20 pixels at 256 px)
# p(anchor category) x objectness of the best anchor token from which on the relation answers fully; below it the
# referring score takes over in proportion (val seeds 0 / 1: 0.5 lost 5 / 2 points of the relation questions' gIoU,
# 0.1 and 0.2 nothing; the app's example, whose anchor is hidden behind two others, scores 0.04)
ANCHOR_FOUND = 0.2
MIN_DISTANCE = 0.05  # centres closer than this (share of the side) are the same object, not an anchor and a mate


def mask_geometry(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask logits (B, Q, h, w) -> objectness (B, Q): the mean probability inside the mask, 0 for one under
    :data:`MIN_AREA`; and centres (B, Q, 2) as shares of the width / height."""
    probs = masks.float().sigmoid()
    inside = (probs > 0.5).float()
    area = inside.flatten(2).sum(-1)
    objectness = (probs * inside).flatten(2).sum(-1) / area.clamp(min=1)
    objectness = objectness * (area >= MIN_AREA * masks.shape[-1] * masks.shape[-2])
    h, w = masks.shape[-2:]
    ys = (torch.arange(h, device=masks.device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=masks.device, dtype=torch.float32) + 0.5) / w
    weight = inside / area.clamp(min=1)[..., None, None]
    centres = torch.stack([(weight.sum(-2) * xs).sum(-1), (weight.sum(-1) * ys).sum(-1)], -1)
    return objectness, centres


def pool_question(
    norm: nn.LayerNorm, attention: nn.Linear, hidden: torch.Tensor, expression_mask: torch.Tensor
) -> torch.Tensor:
    """LLM hidden states (B, L, D) of a prompt and its expression's tokens (B, L) -> (B, K, D): one attention-pooled
    summary of the expression per output of ``attention`` (what a question head reads: which tokens say the
    relation or ranking, which name its value)."""
    tokens = norm(hidden.to(attention.weight.dtype))
    scores = attention(tokens).float().masked_fill(~expression_mask.bool()[..., None], -1e4)  # (B, L, K)
    return torch.einsum("blk,blh->bkh", scores.softmax(1).to(tokens.dtype), tokens)


def mix(refer_logits: torch.Tensor, stated: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """The logits of (1 - stated) x sigmoid(``refer_logits``) + stated x ``answer`` (probabilities, (B, Q, R))."""
    probability = (1 - stated) * refer_logits.float().sigmoid() + stated * answer
    return torch.logit(probability.clamp(1e-6, 1 - 1e-6)).to(refer_logits.dtype)


class ColourRelationScores(nn.Module):
    """The text head and the scoring of the colour relation over ``num_categories`` anchor categories."""

    def __init__(self, text_dim: int, num_categories: int) -> None:
        super().__init__()
        self.num_categories = num_categories
        self.text_norm = nn.LayerNorm(text_dim)
        self.text_attention = nn.Linear(text_dim, 2)  # which tokens say "same colour as", which name the anchor
        self.relation_head = nn.Linear(text_dim, 2)  # no relation, same colour as
        self.anchor_head = nn.Linear(text_dim, num_categories)
        for head in (self.relation_head, self.anchor_head):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        with torch.no_grad():
            self.relation_head.bias[0] = NO_RELATION_BIAS

    def text_logits(self, hidden: torch.Tensor, expression_mask: torch.Tensor) -> torch.Tensor:
        """LLM hidden states (B, L, D) and the expression's tokens (B, L) -> (B, 1, 2 + categories): the relation
        logits (none, same colour as), then the anchor's category logits."""
        pooled = pool_question(self.text_norm, self.text_attention, hidden, expression_mask)  # (B, 2, D)
        return torch.cat([self.relation_head(pooled[:, 0]), self.anchor_head(pooled[:, 1])], -1)[:, None]

    @staticmethod
    def split(text_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, R, 2 + categories) -> relation logits (B, R, 2), anchor category logits (B, R, categories)."""
        return text_logits[..., :2], text_logits[..., 2:]

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
        weight = is_anchor * objectness[..., None]
        weight = weight / weight.sum(1, keepdim=True).clamp(min=1e-6)  # over tokens: which one is the anchor
        same_colour = torch.einsum("bqv,bjv->bqj", colour, colour)
        apart = (torch.cdist(centres, centres) > MIN_DISTANCE).float()
        mates = torch.einsum("bqj,bjr->bqr", same_colour * apart, weight)
        answer = objectness[..., None] * mates * (1 - is_anchor)
        # no mask found the anchor (hidden behind others, say): nothing to compare with, the referring score answers
        found = ((is_anchor * objectness[..., None]).amax(1) / ANCHOR_FOUND).clamp(max=1)  # (B, R)
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
