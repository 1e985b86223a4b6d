"""Stage 2 training aid: the decoder state of every matched mask token names its object's colour.

Why: the prompt scores read the mask tokens' decoder state, and in `lite2` that state lost the colour the frozen
encoders hold (colour probe 0.11 on the state against 1.00 on backbone stage 3, `research/tools/shape_probe.py`):
class prompts name shapes, so only the referring share of the loss asks for colour, while most expressions lead
with it. A linear head on the state of each query matched to a thing, trained to name that thing's colour,
keeps colour where the scores can read it. Not in HyperSeg, whose towers and decoder learnt colour from web-scale
data; a recipe switch (``python -m hyperseg_lite.train --colour-loss-weight W``), off by default. The head is not
part of the model and not needed at inference.

The same head, reversed (``adversarial``, ``--class-colour-adversary W``), does the opposite where colour is a
shortcut: it reads what the class scores read (the input of ``CLASS_proj``) through a gradient reversal, so that
input is pushed to hold no colour the head can use. Why: no object of a held-out category-colour pair is drawn in
training, so there the colour rules shapes out, and class scores name the shape of 0.33 of held-out-pair objects
against 0.81 on val (docs/research/embedded-v2.md, "Class scores blind to colour, refitted after training").

The colour name comes from the pixels, so every task's targets get one: the world paints an object with a
palette colour times a brightness in [0.7, 1.3] (``data/textures.tinted``), so the palette colour whose scaled
copy lies nearest the object's mean colour names it, and a region no scaled palette colour fits (stuff: sky,
grass, ...) gets none.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ..data.vocabulary import COLOURS
from ..modeling.losses import SegmentationTarget
from .gradient_reversal import GradientReversal
from .shape_auxiliary import object_categories

PALETTE = torch.tensor(list(COLOURS.values()), dtype=torch.float32)  # (K, 3), 0-255
BRIGHTNESS = (0.7, 1.3)  # data/textures.tinted scales the palette colour by 0.7-1.3
MAX_FIT_ERROR = 40.0  # 0-255 units: farther than this from every scaled palette colour -> not a painted thing
COLOUR_HEAD_FILE = "colour_head.safetensors"  # the head's weights, saved beside the checkpoint it trained with


def palette_colours(
    pixel_values: torch.Tensor, target: SegmentationTarget, pixel_mean: Sequence[float], pixel_std: Sequence[float]
) -> torch.Tensor:
    """Per target object the index of its colour in ``COLOURS`` (-1 where no palette colour fits).

    ``pixel_values``: (3, S, S) normalised as the processor does; ``target.masks``: (n, S, S) on the same frame.
    """
    masks = target.masks
    if masks.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    mean = torch.as_tensor(pixel_mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.as_tensor(pixel_std, dtype=torch.float32).view(3, 1, 1)
    image = pixel_values.detach().float().cpu() * std + mean  # (3, S, S), 0-255
    weights = masks.detach().cpu().float()  # (n, S, S)
    colour = torch.einsum("chw,nhw->nc", image, weights) / weights.sum((-2, -1)).clamp(min=1.0)[:, None]
    # the best brightness per (object, palette colour), then the nearest scaled colour
    scale = (colour @ PALETTE.T) / (PALETTE * PALETTE).sum(-1)[None]  # (n, K)
    scale = scale.clamp(*BRIGHTNESS)
    error = (colour[:, None, :] - scale[..., None] * PALETTE[None]).norm(dim=-1)  # (n, K)
    best_error, best = error.min(dim=-1)
    return torch.where(best_error <= MAX_FIT_ERROR, best, torch.full_like(best, -1))


class QueryColourAuxiliary(nn.Module):
    """A linear colour classifier on the decoder state of each query the criterion matched to a thing; with
    ``adversarial``, on what the class scores read, through a gradient reversal (an adversary)."""

    def __init__(self, dim: int, num_colours: int = len(COLOURS), adversarial: bool = False) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, num_colours)
        self.adversarial = adversarial

    def loss(
        self,
        query_states: torch.Tensor,
        matched_indices: Sequence[tuple[torch.Tensor, torch.Tensor]],
        colours: Sequence[torch.Tensor],
        with_accuracy: bool = False,
    ):
        """Mean cross-entropy over the matched objects that have a colour; None when the batch has none.

        ``query_states``: (B, Q, C); ``matched_indices``: per row (query index, object index), as the criterion
        returns them; ``colours``: per row the colour index of each target object (-1: none).
        """
        states = GradientReversal.apply(query_states, 1.0) if self.adversarial else query_states
        logits = self.classifier(states.to(self.classifier.weight.dtype))
        return matched_label_loss(logits, matched_indices, colours, with_accuracy)


def matched_label_loss(
    logits: torch.Tensor,
    matched_indices: Sequence[tuple[torch.Tensor, torch.Tensor]],
    colours: Sequence[torch.Tensor],
    with_accuracy: bool = False,
):
    """Cross-entropy of (B, Q, K) per-query logits at the queries the criterion matched to objects that have a
    label (``colours``: per row each target object's colour, or other value, index; -1: none); None when none
    has one."""
    picked, labels = [], []
    for row, ((query_idx, object_idx), colour) in enumerate(zip(matched_indices, colours)):
        colour = colour.to(logits.device)[object_idx.to(logits.device)]
        keep = colour >= 0
        if keep.any():
            picked.append(logits[row, query_idx.to(logits.device)[keep]])
            labels.append(colour[keep])
    if not picked:
        return (None, float("nan")) if with_accuracy else None
    picked, labels = torch.cat(picked).float(), torch.cat(labels)
    loss = F.cross_entropy(picked, labels)
    if with_accuracy:
        return loss, float((picked.detach().argmax(-1) == labels).float().mean())
    return loss


@contextmanager
def class_score_inputs(mask_decoder: nn.Module, enabled: bool = True) -> Iterator[list[torch.Tensor]]:
    """While open, every input of the decoder's class projection (``CLASS_proj``), in call order, kept in the
    graph: the last is the last decoder layer's. Nothing is recorded when not ``enabled``."""
    seen: list[torch.Tensor] = []
    hook = mask_decoder.CLASS_proj.register_forward_hook(lambda _m, args, _o: seen.append(args[0])) if enabled else None
    try:
        yield seen
    finally:
        if hook is not None:
            hook.remove()


def target_colours(sample, target: SegmentationTarget, pixel_values: torch.Tensor, config) -> torch.Tensor:
    """The colour index of each target object of one batch row (-1: none): stuff classes of a class prompt get
    none, and neither does a region no palette colour fits."""
    colours = palette_colours(pixel_values, target, config.pixel_mean, config.pixel_std)
    if sample.class_names:  # a class prompt's objects that are no shape category are stuff
        colours[object_categories(sample.class_names, target) < 0] = -1
    return colours


def load_colour_head(head: QueryColourAuxiliary, folder: Path | None) -> bool:
    """Continue ``head`` from the one saved in ``folder``, if any; returns whether it did."""
    path = None if folder is None else Path(folder) / COLOUR_HEAD_FILE
    if path is None or not path.is_file():
        return False
    head.load_state_dict(load_file(path))
    return True
