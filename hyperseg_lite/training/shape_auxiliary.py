"""Training aids for from-scratch models: losses that teach what shape each object has.

``MaskShapeAuxiliary`` (with ``decoder_config.mask_shape_embedding``) trained the shipped model's mask-shape
embedding; ``ShapeAuxiliary`` puts the same loss on the pyramid backbone's pooled features, which did not move
off chance in short runs (model card). Both: ``python -m hyperseg_lite.train --shape-loss-weight W``.

Why: HyperSeg's backbones come pretrained (SigLIP, Swin on ImageNet), so their features already tell a star from
a heart; the ``lite`` pyramid is trained from scratch on the shapes world and, with the segmentation losses alone,
learnt colour and texture (all its masks need) but no shape: a linear probe finds the shape category at chance in
every stage (``research/tools/shape_probe.py``), and class prompts score the twelve shapes at chance.

What: for every object of a class-prompt sample whose class is a shape category, a linear classifier predicts
the category (cross-entropy) from the mask-shape embedding of its ground-truth mask, or from each backbone stage's
features averaged over that mask. The classifiers are not part of the model and not needed at inference, so this
is a recipe switch (``--shape-loss-weight``), off by default.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ..data.vocabulary import CATEGORIES
from ..modeling.losses import SegmentationTarget

SHAPE_HEAD_FILE = "shape_head.safetensors"  # a shape head's weights, saved beside the checkpoint it trained with


def decoder_mask_size(config) -> tuple[int, int]:
    """The (h, w) of the mask decoder's masks for a ``HyperSegConfig``: its pixel decoder works at stride 4."""
    side = config.image_size // 4
    return side, side


def load_shape_head(head: nn.Module, folder: Path | None) -> bool:
    """Continue ``head`` from the one saved in ``folder`` when there is one of the same kind (same tensor shapes).

    Returns whether it did: a folder may hold no head, or the other kind's (backbone vs mask-shape).
    """
    path = None if folder is None else Path(folder) / SHAPE_HEAD_FILE
    if path is None or not path.is_file():
        return False
    saved = load_file(path)
    if {k: v.shape for k, v in saved.items()} != {k: v.shape for k, v in head.state_dict().items()}:
        return False
    head.load_state_dict(saved)
    return True


def object_categories(class_names: Sequence[str] | None, target: SegmentationTarget) -> torch.Tensor:
    """Per target object its shape-category index in ``CATEGORIES``, or -1 (stuff, or no class list)."""
    if not class_names:
        return torch.full((target.masks.shape[0],), -1, dtype=torch.long)
    index = {name: k for k, name in enumerate(CATEGORIES)}
    return torch.tensor([index.get(class_names[int(label)], -1) for label in target.labels.tolist()], dtype=torch.long)


def mask_pooled(stages: Sequence[torch.Tensor], masks: torch.Tensor) -> torch.Tensor:
    """Stage features (B, C_l, h_l, w_l) averaged over masks (B, N, S, S) -> (B, N, sum C_l)."""
    pooled = []
    for stage in stages:
        weights = F.adaptive_avg_pool2d(masks.to(stage.dtype), stage.shape[-2:])  # (B, N, h, w) area fractions
        sums = torch.einsum("bchw,bnhw->bnc", stage, weights)
        pooled.append(sums / weights.sum((-2, -1)).clamp(min=1e-6).unsqueeze(-1))
    return torch.cat(pooled, dim=-1)


class ShapeAuxiliary(nn.Module):
    """A linear shape classifier on mask-pooled backbone features, and the hook that feeds it."""

    def __init__(self, stage_channels: Sequence[int], num_categories: int = len(CATEGORIES)) -> None:
        super().__init__()
        self.classifier = nn.Linear(sum(stage_channels), num_categories)

    @contextmanager
    def capture(self, backbone: nn.Module) -> Iterator[list]:
        """Within the block, every forward of ``backbone`` appends its stage list to the yielded list."""
        seen: list = []
        handle = backbone.register_forward_hook(lambda _module, _inputs, output: seen.append(list(output)))
        try:
            yield seen
        finally:
            handle.remove()

    def loss(
        self,
        stages: Sequence[torch.Tensor],
        targets: Sequence[SegmentationTarget],
        categories: Sequence[torch.Tensor],
        with_accuracy: bool = False,
    ):
        """Mean cross-entropy over the objects that have a shape category; None when the batch has none.

        ``with_accuracy``: also the fraction of those objects classified right, as ``(loss, accuracy)``.
        """
        features, labels = [], []
        for row, (target, category) in enumerate(zip(targets, categories)):
            keep = category >= 0
            if not keep.any():
                continue
            masks = target.masks[keep.to(target.masks.device)].unsqueeze(0)  # (1, n, S, S)
            row_stages = [stage[row : row + 1] for stage in stages]
            features.append(mask_pooled(row_stages, masks)[0])
            labels.append(category[keep])
        if not features:
            return (None, float("nan")) if with_accuracy else None
        logits = self.classifier(torch.cat(features).to(self.classifier.weight.dtype))
        labels = torch.cat(labels).to(logits.device)
        loss = F.cross_entropy(logits, labels)
        if with_accuracy:
            return loss, float((logits.detach().argmax(-1) == labels).float().mean())
        return loss


class MaskShapeAuxiliary(nn.Module):
    """A linear shape classifier on the decoder's mask-shape embedding of each object's ground-truth mask.

    The mask-shape embedding (:mod:`~hyperseg_lite.modeling.mask_shape`) otherwise learns only through the prompt
    scores, whose other side (the class-name embeddings) starts out unable to tell the shapes apart: slow. Fed the
    true outlines here with their categories, its CNN learns what the shapes look like directly; at inference
    it reads the predicted masks, whose outlines match.
    """

    def __init__(self, dim: int, num_categories: int = len(CATEGORIES)) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, num_categories)

    def loss(
        self,
        encoder: nn.Module,
        mask_size: tuple[int, int],
        targets: Sequence[SegmentationTarget],
        categories: Sequence[torch.Tensor],
        with_accuracy: bool = False,
    ):
        """Mean cross-entropy over the objects that have a shape category; None when the batch has none."""
        masks, labels = [], []
        for target, category in zip(targets, categories):
            keep = (category >= 0).to(target.masks.device)
            if keep.any():
                masks.append(F.interpolate(target.masks[keep][:, None].float(), size=mask_size, mode="area")[:, 0])
                labels.append(category[keep.cpu()])
        if not masks:
            return (None, float("nan")) if with_accuracy else None
        as_logits = torch.cat(masks).mul(2).sub(1).mul(10)[None]  # 0/1 coverage -> confident logits, (1, N, h, w)
        logits = self.classifier(encoder(as_logits)[0].to(self.classifier.weight.dtype))
        labels = torch.cat(labels).to(logits.device)
        loss = F.cross_entropy(logits, labels)
        if with_accuracy:
            return loss, float((logits.detach().argmax(-1) == labels).float().mean())
        return loss
