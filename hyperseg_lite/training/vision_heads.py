"""Stage-1 heads: what the image encoders must predict from their features while they are pretrained.

They exist only during stage 1 and are not part of the model: the pyramid gets a small FPN (the same shape
as Mask2Former's pixel decoder, without attention) that labels every pixel with its class, object colour and
whether it lies on an outline; the global tower labels each of its tokens with the class and colour of its cell.
Optionally (``pretrain_vision --object-loss-weight``) a linear head names each object's shape from its
mask-pooled pyramid features, the features the probe gate reads and a mask query gathers, and
(``--deep-colour-loss-weight``) another names its colour from the two deepest stages alone.

With ``--pixel-decoder-weight`` stage 1 trains the model's own pixel decoder too (HyperSeg starts from a
pretrained Mask2Former pixel decoder): a linear layer labels every pixel of its ``mask_features`` (what each mask
is a dot product with), and one linear layer per attended level names each object's shape and colour from its
mask-pooled feature (what the mask decoder's queries gather).

On a two-stream pyramid (``modeling/two_stream_pyramid.py``) the thing classes come from the shape stream's
channels alone (:class:`TwoStreamDenseHead`), so that no head learns colour as evidence about a category.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.vocabulary import CATEGORIES
from ..modeling.losses import point_bce_loss, point_dice_loss
from ..modeling.two_stream_pyramid import first_channels
from .vision_targets import NUM_CLASSES, NUM_COLOURS

OUTPUTS = NUM_CLASSES + NUM_COLOURS + 1  # classes, colours, outline
NUM_THINGS = len(CATEGORIES)  # the first classes; the rest are stuff


def shape_levels(pyramid: nn.Module, levels: list[torch.Tensor]) -> list[torch.Tensor]:
    """The shape stream's channels of each level on a two-stream pyramid; every channel on a single one."""
    channels = getattr(pyramid, "shape_channels", None)
    return levels if channels is None else first_channels(levels, channels)


class DensePyramidHead(nn.Module):
    """FPN over the four pyramid stages -> (B, OUTPUTS, S/4, S/4) logits."""

    def __init__(self, channels: list[int], width: int = 64, outputs: int = OUTPUTS) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.smooth = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(8, width), nn.ReLU())
        self.out = nn.Conv2d(width, outputs, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        top = self.lateral[-1](features[-1])
        for level in range(len(features) - 2, -1, -1):
            lateral = self.lateral[level](features[level])
            top = F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=False) + lateral
        return self.out(self.smooth(top))


class TwoStreamDenseHead(nn.Module):
    """:class:`DensePyramidHead`'s outputs on a two-stream pyramid: the thing classes' logits from an FPN on the
    shape channels alone, the stuff classes', the colours' and the outline's from one on every channel. Colour can
    raise stuff against all things alike, never one category against another."""

    def __init__(self, channels: list[int], shape_channels: list[int], width: int = 64) -> None:
        super().__init__()
        self.shape_channels = list(shape_channels)
        self.shapes = DensePyramidHead(self.shape_channels, width, outputs=NUM_THINGS)
        self.rest = DensePyramidHead(channels, width, outputs=OUTPUTS - NUM_THINGS)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        shapes = self.shapes(first_channels(features, self.shape_channels))
        return torch.cat([shapes, self.rest(features)], 1)


class TokenHead(nn.Module):
    """Global tokens (B, N, C) -> (B, N, NUM_CLASSES + NUM_COLOURS) logits."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, NUM_CLASSES + NUM_COLOURS)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(tokens))


def mask_pool(pyramid: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
    """Mean pyramid feature under each object's mask, all levels concatenated: (sum n_i, sum C_l).

    ``masks[b]`` is image b's (n_b, H, W) float masks; each level is averaged with the mask resized to it."""
    pooled = []
    for row, object_masks in enumerate(masks):
        per_level = []
        for level in pyramid:
            weights = F.interpolate(object_masks[:, None], size=level.shape[-2:], mode="area")[:, 0]
            weights = weights / weights.sum((1, 2), keepdim=True).clamp(min=1e-6)
            per_level.append(torch.einsum("nhw,chw->nc", weights, level[row]))
        pooled.append(torch.cat(per_level, 1))
    return torch.cat(pooled)


class ObjectHead(nn.Module):
    """Mask-pooled pyramid features (N, sum C_l) -> (N, num_categories) logits (shapes, or colours): a linear
    layer, like the probes."""

    def __init__(self, channels: list[int], num_categories: int = 12) -> None:
        super().__init__()
        self.out = nn.Linear(sum(channels), num_categories)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(pooled)


def split_dense(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, OUTPUTS, h, w) -> class logits, colour logits, outline logits (B, h, w)."""
    return logits[:, :NUM_CLASSES], logits[:, NUM_CLASSES : NUM_CLASSES + NUM_COLOURS], logits[:, -1]


def cell_labels(labels: torch.Tensor, grid: int, num: int) -> torch.Tensor:
    """(B, H, W) int labels -> (B, grid*grid) the label covering most of each cell (raster order)."""
    one_hot = F.one_hot(labels, num).permute(0, 3, 1, 2).float()
    return F.adaptive_avg_pool2d(one_hot, grid).argmax(1).flatten(1)


def dense_losses(
    logits: torch.Tensor, classes: torch.Tensor, colours: torch.Tensor, outline: torch.Tensor, stride: int = 2
) -> dict[str, torch.Tensor]:
    """Cross entropy on classes and colours, BCE on outlines, at 1/``stride`` of the targets' resolution.

    Stride 2 keeps outlines and small objects (a small object is ~35 px across at 256 px) at a quarter of the
    full-resolution cost, which on a CPU is as much as the backbone's own step."""
    if stride > 1:
        classes, colours = classes[:, ::stride, ::stride], colours[:, ::stride, ::stride]
        outline = F.max_pool2d(outline[:, None], stride)[:, 0]
    logits = F.interpolate(logits, size=classes.shape[-2:], mode="bilinear", align_corners=False)
    class_logits, colour_logits, outline_logits = split_dense(logits)
    positive = outline.mean().clamp(min=1e-3)  # outlines are ~5% of pixels: weigh both sides equally
    return {
        "class": F.cross_entropy(class_logits, classes),
        "colour": F.cross_entropy(colour_logits, colours),
        "outline": F.binary_cross_entropy_with_logits(
            outline_logits, outline, pos_weight=((1 - positive) / positive).detach()
        ),
    }


def token_losses(logits: torch.Tensor, classes: torch.Tensor, colours: torch.Tensor) -> dict[str, torch.Tensor]:
    grid = int(round(logits.shape[1] ** 0.5))
    class_targets = cell_labels(classes, grid, NUM_CLASSES)
    colour_targets = cell_labels(colours, grid, NUM_COLOURS)
    return {
        "token_class": F.cross_entropy(logits[..., :NUM_CLASSES].flatten(0, 1), class_targets.flatten()),
        "token_colour": F.cross_entropy(logits[..., NUM_CLASSES:].flatten(0, 1), colour_targets.flatten()),
    }


class MaskFeatureHead(nn.Module):
    """The pixel decoder's ``mask_features`` (B, D, S/4, S/4) -> (B, OUTPUTS, S/4, S/4): one 1x1 linear layer,
    so class, colour and outline must be linearly readable there, as a mask query reads them."""

    def __init__(self, mask_dim: int) -> None:
        super().__init__()
        self.out = nn.Conv2d(mask_dim, OUTPUTS, 1)

    def forward(self, mask_features: torch.Tensor) -> torch.Tensor:
        return self.out(mask_features)


class LevelObjectHeads(nn.Module):
    """One linear layer per attended level: an object's mask-pooled feature -> its shape and its colour logits."""

    def __init__(self, width: int, levels: int, num_shapes: int, num_colours: int) -> None:
        super().__init__()
        self.num_shapes = num_shapes
        self.out = nn.ModuleList(nn.Linear(width, num_shapes + num_colours) for _ in range(levels))

    def forward(self, levels: list[torch.Tensor], masks: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per level: (shape logits (N, num_shapes), colour logits (N, num_colours)) of every object."""
        logits = [head(mask_pool([level], masks)) for head, level in zip(self.out, levels)]
        return [(x[:, : self.num_shapes], x[:, self.num_shapes :]) for x in logits]


class InstanceQueryHead(nn.Module):
    """An object's mask-pooled ``mask_features`` -> a query whose dot product with every pixel's ``mask_features``
    is that object's mask logit, the way a mask token draws its mask (``--instance-loss-weight``).

    The dense losses ask only for class, colour and outline per pixel, so two touching objects of one class and
    colour may share one feature and no query can split them; trained through this head, ``mask_features`` must
    tell each object's pixels from its neighbours'."""

    def __init__(self, mask_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(mask_dim, mask_dim)

    def forward(self, mask_features: torch.Tensor, masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """``mask_features`` (B, D, h, w), ``masks[b]`` image b's (n_b, H, W) -> per image (n_b, h, w) logits."""
        queries = self.query(mask_pool([mask_features], masks)).split([len(m) for m in masks])
        return [torch.einsum("nd,dhw->nhw", q, features) for q, features in zip(queries, mask_features)]


def instance_targets(masks: list[torch.Tensor], size: tuple[int, int]) -> list[torch.Tensor]:
    """Object masks (n, H, W) area-resized to the mask features' (h, w): the share of each cell inside."""
    return [F.interpolate(m[:, None], size=size, mode="area")[:, 0] for m in masks]


def instance_losses(logits: list[torch.Tensor], targets: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Binary cross entropy and dice of every object's mask logits against its (soft) mask, as the mask losses of
    stage 2 (mean over objects)."""
    logits, targets = torch.cat(logits).flatten(1), torch.cat(targets).flatten(1)
    return {
        "instance_bce": point_bce_loss(logits, targets).mean(),
        "instance_dice": point_dice_loss(logits, targets).mean(),
    }


def instance_ious(logits: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """IoU of each object's mask (logit > 0) with its mask (cells at least half inside), (sum n_b,)."""
    predicted, truth = torch.cat(logits) > 0, torch.cat(targets) >= 0.5
    inter = (predicted & truth).flatten(1).sum(1)
    union = (predicted | truth).flatten(1).sum(1)
    return inter / union.clamp(min=1)
