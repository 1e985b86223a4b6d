"""Stage 1's colour-blind shape term, and how well shapes are named in colours never seen with them.

Why: in the world every category is drawn in eight or nine of the ten colours, the rest held out for the
compositional split. A classifier trained on the other pairs learns that colour carries category evidence ("a red
object is never a circle"), and the longer stage 1 runs, the more: after 16,000 steps the dense head names the
category on 0.51 of a held-out pair's pixels against 0.83 for the train pairs of the same compositional scenes,
and stage 2 on those encoders loses such objects even under a box prompt (docs/research/embedded-v2.md).

The term (``pretrain_vision --colour-blind-weight``): the same pyramid and dense head also see each batch in grey
with every segment at a random brightness (:func:`grey`), learn the classes there, and the colour image's class
distribution is pulled towards the grey one's (KL, the grey side held fixed). Those images hold no colour, so the
grey distribution's doubt between shapes is shape doubt; following it keeps colour from vetoing a category. No
held-out pair is ever shown: the grey images have no colour, and the colour images are the train split's own.

Measured (fine-tunes of the shipped encoders, 1,000 steps): it did not move the held-out pairs and cost the train
pairs 3-9 points, so it is off in the recipe. The veto is learnt from the colour images, where no pixel ever
contradicts it; a soft target on the train pairs does not reach the unseen ones.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.vocabulary import CATEGORIES, COLOUR_NAMES
from ..data.world import HELD_OUT_PAIRS
from ..modeling.two_stream_pyramid import LUMINANCE as PYRAMID_LUMINANCE
from .vision_heads import split_dense
from .vision_targets import DenseTargets

FOLLOW_RAMP_STEPS = 500  # steps over which the colour side comes to follow the grey one (grey CE starts at 5)
LUMINANCE = np.array(PYRAMID_LUMINANCE, np.float32)  # ITU-R BT.601, as PIL's "L" mode
GREY_LEVELS = (30.0, 225.0)  # a segment's brightness in grey, drawn anew for every segment and step
GREY_CONTRAST = (0.5, 1.5)  # its texture's contrast, likewise


def grey(image: np.ndarray, segments: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 and its segment ids (H, W) -> the image without colour: luminance in all three channels,
    each segment's mean brightness replaced by a random level and its texture's contrast scaled at random.

    Plain luminance is not colour-blind: the ten palette colours have ten brightnesses (red 94, blue 58, yellow
    200, ...), and a stage 1 trained on plain grey learnt the same veto (docs/research/embedded-v2.md)."""
    luminance = image.astype(np.float32) @ LUMINANCE
    out = np.empty_like(luminance)
    for segment in np.unique(segments):
        inside = segments == segment
        values = luminance[inside]
        level, contrast = rng.uniform(*GREY_LEVELS), rng.uniform(*GREY_CONTRAST)
        out[inside] = level + contrast * (values - values.mean())
    return np.repeat(np.clip(out + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def recolour(image: np.ndarray, segments: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 and its segment ids (H, W) -> every segment in a colour drawn uniformly from the RGB cube,
    its texture kept (each channel's deviation from the segment's mean, contrast scaled at random).

    For a shape stream that reads colour (``pyramid_config.num_channels == 3``): colour then says nothing of a
    category, as brightness says nothing in :func:`grey`, while neighbouring segments keep an edge between them
    far more often than at two random brightnesses."""
    pixels = image.astype(np.float32)
    out = np.empty_like(pixels)
    for segment in np.unique(segments):
        inside = segments == segment
        values = pixels[inside]
        colour, contrast = rng.uniform(20.0, 235.0, 3), rng.uniform(*GREY_CONTRAST)
        out[inside] = colour + contrast * (values - values.mean(0))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def colour_blind_loss(
    colour_logits: torch.Tensor,
    grey_logits: torch.Tensor,
    classes: torch.Tensor,
    follow_weight: float = 1.0,
    stride: int = 2,
) -> torch.Tensor:
    """Dense head outputs on the colour and the grey batch (B, OUTPUTS, h, w), the class targets (B, H, W) ->
    cross entropy of the grey classes plus ``follow_weight`` x KL(grey || colour) of the class distributions on
    the objects' pixels, at 1/``stride``. The grey side starts far worse than the colour one (an untrained
    reading of grey), so the caller ramps ``follow_weight`` up (:func:`follow_weight`) rather than pull the colour
    side towards noise."""
    classes = classes[:, ::stride, ::stride]
    size = classes.shape[-2:]
    colour_classes = split_dense(F.interpolate(colour_logits, size=size, mode="bilinear", align_corners=False))[0]
    grey_classes = split_dense(F.interpolate(grey_logits, size=size, mode="bilinear", align_corners=False))[0]
    teacher = grey_classes.detach().log_softmax(1)
    kl = F.kl_div(colour_classes.log_softmax(1), teacher, log_target=True, reduction="none").sum(1)
    things = classes < len(CATEGORIES)  # stuff is told apart by its colour (sky and water): only objects follow
    kl = (kl * things).sum() / things.sum().clamp(min=1)
    return F.cross_entropy(grey_classes, classes) + follow_weight * kl


def follow_weight(step: int, ramp_steps: int = FOLLOW_RAMP_STEPS) -> float:
    """The KL's weight at ``step``: 0 at the first step, 1 from ``ramp_steps`` on."""
    return min(1.0, step / ramp_steps)


class FrozenBatchStatistics:
    """Within the block, BatchNorm layers normalise by the batch as in training but keep their running
    statistics: the grey batch must not move the statistics the colour images are normalised by at inference."""

    def __init__(self, module: nn.Module) -> None:
        self.norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def __enter__(self) -> None:
        self.saved = [m.momentum for m in self.norms]
        for m in self.norms:
            m.momentum = 0.0

    def __exit__(self, *exc) -> None:
        for m, momentum in zip(self.norms, self.saved):
            m.momentum = momentum


class PairAccuracy:
    """Per object, the share of its pixels a dense head names with the object's category; averaged separately
    over objects of held-out category-colour pairs and of train pairs (compositional scenes hold both), and over
    the train-pair objects placed first in their scene.

    Why the last: a compositional scene places its held-out pair first, and every later object may cover part of
    it, so the fair control for ``held_out_pair_acc`` is ``first_placed_acc`` on val scenes (train pairs only),
    not the later objects beside it (docs/research/embedded-v2.md, "A two-stream pyramid")."""

    def __init__(self) -> None:
        self.shares = {"held_out": [], "train": [], "first_placed": []}

    def add(self, logits: torch.Tensor, items: list[DenseTargets]) -> None:
        size = items[0].classes.shape
        predicted = split_dense(F.interpolate(logits, size=size, mode="bilinear", align_corners=False))[0].argmax(1)
        for row, item in enumerate(items):
            for index, (category, colour) in enumerate(zip(item.object_categories, item.object_colours)):
                mask = item.segments == index
                if mask.sum() < 20 or colour >= len(COLOUR_NAMES):
                    continue
                held_out = (CATEGORIES[category], COLOUR_NAMES[colour]) in HELD_OUT_PAIRS
                share = float((predicted[row].numpy()[mask] == category).mean())
                self.shares["held_out" if held_out else "train"].append(share)
                if index == 0 and not held_out:
                    self.shares["first_placed"].append(share)

    def result(self, prefix: str = "") -> dict[str, float]:
        mean = {k: float(np.mean(v)) if v else float("nan") for k, v in self.shares.items()}
        return {
            f"{prefix}held_out_pair_acc": mean["held_out"],
            f"{prefix}train_pair_acc": mean["train"],
            f"{prefix}first_placed_acc": mean["first_placed"],
        }
