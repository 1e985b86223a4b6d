"""Keep the parts of a visual prompt's mask that the prompt points at.

The decoder's mask for one click often also covers look-alikes elsewhere in the image: another pentagon of the
same colour, a second crescent. On val seed 0 (one click, 76 objects of 40 images) the chosen masks had 628
false-positive pixels per object against 193 missed. A click or a scribble says *which* object, and a box says
*where* it is, so after the choice the mask keeps only:

- clicks and scribbles: its connected parts that a positive click or the scribble's stroke touches (click each
  part of an object an occluder splits);
- boxes: what lies inside the box;
- tracking (a video frame after the prompt's): its parts that touch the object's mask on the frame before;
- a drawn mask: everything (the mask prompt is the object, any part of the answer may be right).

If nothing would be left (a click on a mask that does not cover it, an object that moved off its last mask) the
mask is returned as it was: the choice made by the scores stands. Keeping nearby parts too (within 1.5-10% of
the image side) or a margin around the box scored no better on val (docs/research/embedded-v2.md, "Masks keep
the parts the prompt points at"). Not in the release: ``HyperSegPipeline(keep_prompted_parts=False)``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .inputs import Region
from .predictor import EncodedImage

REMOVED_LOGIT = -1.0  # what a dropped pixel's logit becomes: below the mask threshold (0), so upsampling stays smooth


def _touched_parts(binary: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The connected parts of ``binary`` that ``anchors`` touch (all of it when they touch none)."""
    count, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    if count <= 2:  # background plus at most one part: nothing to drop
        return binary
    touched = np.unique(labels[anchors & binary])
    touched = touched[touched > 0]
    if len(touched) == 0:
        return binary
    return np.isin(labels, touched)


def _anchors(points: np.ndarray, shape: tuple[int, int], stroke: bool) -> np.ndarray:
    """(n, 2) (x, y) at the working size -> a bool map of the clicked pixels, or of the drawn stroke's line."""
    xy = np.stack(
        [np.clip(np.round(points[:, 0]), 0, shape[1] - 1), np.clip(np.round(points[:, 1]), 0, shape[0] - 1)], axis=1
    ).astype(np.int32)
    anchors = np.zeros(shape, dtype=np.uint8)
    if stroke and len(xy) > 1:
        cv2.polylines(anchors, [xy.reshape(-1, 1, 2)], isClosed=False, color=1, thickness=1)
    anchors[xy[:, 1], xy[:, 0]] = 1
    return anchors.astype(bool)


def _inside_box(corners: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``corners``: the box's two corners at the working size, (2, 2) (x, y), in either order."""
    x0, x1 = sorted(corners[:, 0])
    y0, y1 = sorted(corners[:, 1])
    inside = np.zeros(shape, dtype=bool)
    inside[max(0, int(np.floor(y0))) : int(np.ceil(y1)), max(0, int(np.floor(x0))) : int(np.ceil(x1))] = True
    return inside


def keep_prompted_parts(
    logits: torch.Tensor,
    region: Region | None,
    image: EncodedImage,
    previous: torch.Tensor | None = None,
) -> torch.Tensor:
    """(h, w) logits of one chosen mask at the working size -> the same with the parts the prompt does not point
    at pushed below 0. ``image``: the encoded image the region's coordinates refer to; ``previous``: the object's
    mask on the frame before, when tracking (``region`` is then None)."""
    binary = (logits > 0).cpu().numpy()
    if not binary.any():
        return logits
    shape = binary.shape
    if previous is not None:
        keep = _touched_parts(binary, previous.cpu().numpy().astype(bool))
    elif region is None or region.mask is not None:
        return logits
    elif region.box is not None:
        corners = image.working_points(np.asarray(region.box, dtype=np.float64).reshape(2, 2))
        keep = binary & _inside_box(corners, shape)
        if not keep.any():
            return logits
    else:
        stroke = region.scribble is not None
        points = np.asarray(region.scribble, dtype=np.float64) if stroke else region.positive_points
        keep = _touched_parts(binary, _anchors(image.working_points(points.reshape(-1, 2)), shape, stroke))
    dropped = binary & ~keep
    if not dropped.any():
        return logits
    return torch.where(torch.from_numpy(dropped).to(logits.device), logits.clamp(max=REMOVED_LOGIT), logits)
