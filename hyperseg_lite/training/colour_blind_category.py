"""A category mask head that cannot lean on colour: refit on frozen features with a colour adversary.

Not in HyperSeg (it has no attribute scores; ``modeling/attribute_scores.py``). Why: the category attribute
scores' mask head names each mask token's category from the features pooled under its mask, and those features
hold the colour as well. No object of the compositional split's held-out category-colour pairs is ever drawn in
training, so there the colour alone rules categories out (p(circle | red) = 0), and a head trained as usual
learns it: the `lite2` head as trained names the category of 0.35 of held-out-pair objects against 0.82 on val, and
multiplies the referring probability of the right mask by a small compatibility
(``research/tools/category_head_probe.py``; docs/research/embedded-v2.md, "A category head blind to colour").

The fix is a training objective, not an architecture: the same head (LayerNorm, Linear, GELU, Linear) is fitted
to the categories of the objects its mask tokens cover, while a colour classifier reads its hidden layer through
a gradient reversal (Ganin & Lempitsky, 2015), so the hidden layer is pushed to carry no colour the classifier
can use. The model's features stay as they are (the head is refitted on frozen features, so nothing else of the
model moves), and the adversary exists only while fitting: the saved checkpoint has the same tensors and config.

A head barred from the colour also loses the help colour gives in-distribution (in training it does rule two
categories in twelve out): on the test split the colour-blind head cost about a point of referring gIoU. A blend
keeps both: one head distilled to the mean of the checkpoint's and the colour-blind head's probabilities
(:func:`distil_category_head`). ``tools/refit_category_head.py`` runs either on a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.vocabulary import ALL_CLASS_NAMES, CATEGORIES, COLOUR_NAMES
from ..data.world import HELD_OUT_PAIRS
from .gradient_reversal import GradientReversal

REFIT_REPORT_FILE = "category_head_refit.json"  # what tools/refit_category_head.py did, beside the weights


@dataclass
class CategoryExamples:
    """The category mask head's input for the mask token that covers each scene object best, with its labels."""

    features: np.ndarray  # (N, in_dim) the pooled features the head reads
    category: np.ndarray  # (N,) index into CATEGORIES
    colour: np.ndarray  # (N,) index into COLOUR_NAMES

    def __len__(self) -> int:
        return len(self.category)

    def subset(self, keep: np.ndarray) -> CategoryExamples:
        return CategoryExamples(self.features[keep], self.category[keep], self.colour[keep])

    def held_out_pairs(self) -> CategoryExamples:
        """The objects whose (category, colour) is one of the compositional split's held-out pairs."""
        pairs = {(CATEGORIES.index(c), COLOUR_NAMES.index(k)) for c, k in HELD_OUT_PAIRS}
        return self.subset(np.asarray([pair in pairs for pair in zip(self.category, self.colour)], dtype=bool))


@torch.inference_mode()
def collect_category_examples(predictor, world, scenes: int, min_iou: float = 0.5) -> CategoryExamples:
    """One panoptic prompt with every class name per scene of ``world``; for each object (30 pixels or more) the
    mask token that covers it best, if its IoU reaches ``min_iou``: what the category mask head read there."""
    heads = predictor.model.mask_decoder.attribute_scores().get("category")
    if heads is None:
        raise ValueError("the model has no category attribute scores (decoder_config.category_attributes is 0)")
    seen = {}
    hook = heads.mask_head.register_forward_hook(lambda _module, args, _out: seen.update(pooled=args[0]))
    features, category, colour = [], [], []
    try:
        for index in range(scenes):
            scene = world.scene(world.rng("semantic", index))
            candidates = predictor.predict(
                class_names=list(ALL_CLASS_NAMES), mode="panoptic", image=predictor.encode(scene.image)
            )
            masks = candidates.to_original()
            for obj in scene.objects:
                if obj.mask.sum() < 30:
                    continue
                ious = (masks & obj.mask).sum((1, 2)) / np.maximum((masks | obj.mask).sum((1, 2)), 1)
                token = int(ious.argmax())
                if ious[token] < min_iou:
                    continue
                features.append(seen["pooled"][0, token].float().numpy())
                category.append(CATEGORIES.index(obj.category))
                colour.append(COLOUR_NAMES.index(obj.colour))
    finally:
        hook.remove()
    width = heads.mask_head[0].normalized_shape[0]
    return CategoryExamples(
        np.asarray(features, dtype=np.float32).reshape(-1, width),
        np.asarray(category, dtype=np.int64),
        np.asarray(colour, dtype=np.int64),
    )


def move_category_head(model, source: str) -> None:
    """Point the category attribute scores' mask head at ``source``'s features (``mask_pooling.POOLED_SOURCES``):
    a fresh head of the new width, the trained text head kept, the config rewritten. ValueError when the model has
    no such features (``shape_stream`` needs a two-stream pyramid)."""
    heads = model.mask_decoder.attribute_scores().get("category")
    if heads is None:
        raise ValueError("the model has no category attribute scores (decoder_config.category_attributes is 0)")
    model.enable_attribute_scores("category", heads.num_values, source)


def fresh_head_like(mask_head: nn.Sequential, seed: int) -> nn.Sequential:
    """A newly initialised head of ``mask_head``'s shape (LayerNorm, Linear, GELU, Linear), float32."""
    norm, first, _, last = mask_head
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.LayerNorm(norm.normalized_shape),
        nn.Linear(first.in_features, first.out_features),
        nn.GELU(),
        nn.Linear(last.in_features, last.out_features),
    )


def fit_category_head(
    head: nn.Sequential,
    examples: CategoryExamples,
    colour_adversary: float,
    steps: int = 3000,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> nn.Sequential:
    """Fit ``head`` (in place) to name ``examples``' categories; with ``colour_adversary`` > 0 a linear colour
    classifier reads its hidden layer (``head[:3]``) through a gradient reversal of that weight."""
    generator = torch.Generator().manual_seed(seed)
    hidden, out = head[:3], head[3]
    colour_probe = nn.Linear(out.in_features, len(COLOUR_NAMES))
    parameters = [*head.parameters(), *colour_probe.parameters()]
    optimiser = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.01)
    x = torch.as_tensor(examples.features)
    category, colour = torch.as_tensor(examples.category), torch.as_tensor(examples.colour)
    head.train()
    for _ in range(steps):
        batch = torch.randint(len(x), (batch_size,), generator=generator)
        h = hidden(x[batch])
        loss = F.cross_entropy(out(h), category[batch])
        if colour_adversary > 0:
            loss = loss + F.cross_entropy(colour_probe(GradientReversal.apply(h, colour_adversary)), colour[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return head.eval()


def distil_category_head(
    head: nn.Sequential,
    examples: CategoryExamples,
    teachers: list[tuple[nn.Sequential, float]],
    steps: int = 3000,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> nn.Sequential:
    """Fit ``head`` (in place) to the weighted mean of ``teachers``' category probabilities on ``examples``'
    features: one head of the checkpoint's shape that answers like a blend of two (the checkpoint's own and a
    colour-blind one), so the model keeps its tensors."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(examples.features)
    with torch.no_grad():
        target = sum(weight * teacher(x).softmax(-1) for teacher, weight in teachers) / sum(w for _, w in teachers)
    optimiser = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    head.train()
    for _ in range(steps):
        batch = torch.randint(len(x), (batch_size,), generator=generator)
        loss = -(target[batch] * head(x[batch]).log_softmax(-1)).sum(-1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return head.eval()


@torch.no_grad()
def category_accuracy(head: nn.Sequential, examples: CategoryExamples) -> float:
    """How often ``head`` names the category of ``examples`` (NaN without examples)."""
    if not len(examples):
        return float("nan")
    predicted = head(torch.as_tensor(examples.features)).argmax(-1).numpy()
    return float((predicted == examples.category).mean())
