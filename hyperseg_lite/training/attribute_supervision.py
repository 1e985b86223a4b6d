"""Stage 2 training of the attribute scores (``modeling/attribute_scores.py``): every head learns directly.

The referring loss alone reaches the heads only through their product, and in `lite2` it never taught the
plain score to read colour words. So each head has its own target, per attribute group:

- ``loss_<group>_mask``: every mask token the criterion matched to an object names that object's value, in every
  task whose prompts are scored. Colour: the painted colour, from the pixels
  (``colour_auxiliary.palette_colours``), so every task's objects have one. Category: the class of a class
  prompt's objects, and the category a referring expression states for its targets;
- ``loss_<group>_text``: every expression names the value it states for its target (``Sample.stated_colour`` /
  ``stated_category``, which the world's queries record), "none" when it states none (reasoning questions
  state none), and for the category "outside the world" for the out-of-world expressions.

With the colour relation scores on (``modeling/relation_scores.py``), ``loss_colour_relation_text``: every
expression says whether it asks for the objects of another's colour and names that anchor's category
(``Sample.colour_anchor_category``, which the world's reasoning questions record). With the category ranking
scores on (``modeling/ranking_scores.py``), ``loss_category_ranking_text``: every expression says whether it ranks
objects by a category fact, and where it does, its ranking picks the answer's category among those present
(``Sample.ranked_category``, ``present_categories``). With the plurality head on (``modeling/plurality_scores.py``),
``loss_plurality_text``: every referring expression says whether it names several objects (``Sample.names_several``).

``python -m hyperseg_lite.train --colour-attributes ... --category-attributes ...`` switches the groups on;
``--colour-attribute-weight`` / ``--category-attribute-weight`` weigh their losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.out_of_world import OUT_OF_WORLD
from ..data.vocabulary import CATEGORIES, COLOUR_NAMES
from ..modeling.plurality_scores import PLURALITY_GROUP, plurality_text_loss
from ..modeling.ranking_scores import RANKING_GROUP, ranking_text_loss
from ..modeling.relation_scores import RELATION_GROUP, relation_text_loss
from .colour_auxiliary import matched_label_loss, target_colours
from .shape_auxiliary import object_categories

VALUES = {"colour": COLOUR_NAMES, "category": CATEGORIES}
QUESTION_HEADS_REPORT_FILE = "question_heads_fit.json"  # tools/fit_question_heads.py's report beside the weights


def stated_labels(group: str, samples: list, kinds: list[str]) -> torch.Tensor:
    """Per batch row the index of the ``group`` value its expression states: the value's index, ``len(values)``
    for none, ``len(values) + 1`` for outside the world (category), -100 (ignored) for rows that score no
    expression."""
    values = VALUES[group]
    labels = []
    for sample, kind in zip(samples, kinds):
        stated = getattr(sample, f"stated_{group}")
        if kind != "refer":
            labels.append(-100)
        elif stated is None:
            labels.append(len(values))
        elif stated == OUT_OF_WORLD:
            labels.append(len(values) + 1)
        else:
            labels.append(values.index(stated))
    return torch.tensor(labels, dtype=torch.long)


def relation_labels(samples: list, kinds: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per batch row: 1 when its expression asks for the objects of another's colour, 0 when not, -100 for rows
    that score no expression; and the index of that anchor's category (-100 where none is stated)."""
    relation, anchor = [], []
    for sample, kind in zip(samples, kinds):
        category = getattr(sample, "colour_anchor_category", None)
        relation.append(-100 if kind != "refer" else int(category is not None))
        anchor.append(CATEGORIES.index(category) if kind == "refer" and category is not None else -100)
    return torch.tensor(relation, dtype=torch.long), torch.tensor(anchor, dtype=torch.long)


def ranking_labels(samples: list, kinds: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per batch row: 1 when its expression ranks objects by a category fact, 0 when not, -100 for rows that score
    no expression; the answer's category index where it ranks (-100 elsewhere); the categories present in its
    scene (rows x categories, bool)."""
    gate, answer, present = [], [], torch.zeros(len(samples), len(CATEGORIES), dtype=torch.bool)
    for row, (sample, kind) in enumerate(zip(samples, kinds)):
        category = getattr(sample, "ranked_category", None) if kind == "refer" else None
        gate.append(-100 if kind != "refer" else int(category is not None))
        answer.append(CATEGORIES.index(category) if category else -100)
        for name in getattr(sample, "present_categories", None) or []:
            present[row, CATEGORIES.index(name)] = True
    return torch.tensor(gate, dtype=torch.long), torch.tensor(answer, dtype=torch.long), present


def plurality_labels(samples: list, kinds: list[str]) -> torch.Tensor:
    """Per batch row: 1 when its expression names several objects, 0 when one, -100 where unknown (rows that
    score no expression, the out-of-world expressions; reasoning questions are answered by one token)."""
    labels = []
    for sample, kind in zip(samples, kinds):
        several = getattr(sample, "names_several", None) if sample.task == "referring" else None
        labels.append(-100 if kind != "refer" or several is None else int(several))
    return torch.tensor(labels, dtype=torch.long)


def target_values(group: str, sample, target, pixel_values: torch.Tensor, config) -> torch.Tensor:
    """The ``group`` value index of each target object of one batch row (-1: unknown)."""
    if group == "colour":
        return target_colours(sample, target, pixel_values, config)
    categories = object_categories(sample.class_names, target)
    stated = getattr(sample, "stated_category", None)
    if not sample.class_names and stated in CATEGORIES:  # every object an expression refers to has its category
        categories = torch.full_like(categories, CATEGORIES.index(stated))
    return categories


def attribute_losses(out, samples: list, batch: dict, config) -> dict[str, torch.Tensor]:
    """The head losses of one frame's output, ``loss_<group>_mask`` / ``loss_<group>_text`` per group that is on
    (either may be missing: no matched object with a known value, or no expression in the batch)."""
    losses = {}
    for group, mask_logits in (out.attribute_logits or {}).items():
        if out.matched_indices is None:
            break
        values = [
            target_values(group, sample, target, pixels, config)
            for sample, target, pixels in zip(samples, batch["targets"], batch["pixel_values"])
        ]
        mask_loss = matched_label_loss(mask_logits, out.matched_indices, values)
        if mask_loss is not None:
            losses[f"loss_{group}_mask"] = mask_loss
    for group, text_logits in (out.refer_attribute_logits or {}).items():
        if group == PLURALITY_GROUP:
            labels = plurality_labels(samples, out.prompt_kind).to(text_logits.device)
            if (labels >= 0).any():
                losses[f"loss_{group}_text"] = plurality_text_loss(text_logits, labels)
            continue
        if group == RANKING_GROUP:
            gate, answer, present = (t.to(text_logits.device) for t in ranking_labels(samples, out.prompt_kind))
            if (gate >= 0).any():
                losses[f"loss_{group}_text"] = ranking_text_loss(text_logits, gate, answer, present)
            continue
        if group == RELATION_GROUP:
            relation, anchor = (t.to(text_logits.device) for t in relation_labels(samples, out.prompt_kind))
            if (relation >= 0).any():
                losses[f"loss_{group}_text"] = relation_text_loss(text_logits, relation, anchor)
            continue
        labels = stated_labels(group, samples, out.prompt_kind).to(text_logits.device)
        if (labels >= 0).any():
            losses[f"loss_{group}_text"] = F.cross_entropy(text_logits[:, 0].float(), labels)
    return losses
