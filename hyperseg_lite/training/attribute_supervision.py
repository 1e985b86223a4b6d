"""Stage 2 training of the colour attribute scores (``modeling/colour_attributes.py``): both heads learn directly.

The referring loss alone reaches the two heads only through their product, and in `lite2` it never taught the
plain score to read colour words. So each head also has its own target:

- ``loss_colour_mask``: every mask token the criterion matched to an object with a painted colour names that
  colour (cross-entropy; the colour comes from the pixels, ``colour_auxiliary.palette_colours``), in every task
  whose prompts are scored;
- ``loss_colour_text``: every expression names the colour it states for its target (``Sample.stated_colour``,
  which the world's query records), or "none" (the last column) when it states none; reasoning questions state
  none.

``python -m hyperseg_lite.train --colour-attributes --colour-attribute-weight W`` weighs both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.vocabulary import COLOUR_NAMES
from .colour_auxiliary import matched_colour_loss, target_colours


def stated_colour_labels(samples: list, kinds: list[str]) -> torch.Tensor:
    """Per batch row the index of the colour its expression states, ``len(COLOUR_NAMES)`` for none, -100 (ignored)
    for rows that score no expression."""
    none = len(COLOUR_NAMES)
    labels = [
        (COLOUR_NAMES.index(s.stated_colour) if s.stated_colour else none) if kind == "refer" else -100
        for s, kind in zip(samples, kinds)
    ]
    return torch.tensor(labels, dtype=torch.long)


def colour_attribute_losses(out, samples: list, batch: dict, config) -> dict[str, torch.Tensor]:
    """The two head losses of one frame's output (either may be missing: no matched coloured object, or no
    expression in the batch)."""
    losses = {}
    if out.colour_logits is not None and out.matched_indices is not None:
        colours = [
            target_colours(sample, target, pixels, config)
            for sample, target, pixels in zip(samples, batch["targets"], batch["pixel_values"])
        ]
        mask_loss = matched_colour_loss(out.colour_logits, out.matched_indices, colours)
        if mask_loss is not None:
            losses["loss_colour_mask"] = mask_loss
    if out.refer_colour_logits is not None:
        labels = stated_colour_labels(samples, out.prompt_kind).to(out.refer_colour_logits.device)
        if (labels >= 0).any():
            losses["loss_colour_text"] = F.cross_entropy(out.refer_colour_logits[:, 0].float(), labels)
    return losses
