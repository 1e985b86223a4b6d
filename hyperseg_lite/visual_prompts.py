"""Render visual prompts into region masks, as the paper does before pooling.

Points become discs (radius 10 px at 1024 px), scribbles discs of radius 5 along the stroke, boxes and
masks are used as they are. Radii scale with the image so a click means the same at any resolution.
All functions work on the pixel grid of the image the user clicked on (x = column, y = row).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def scaled_radius(radius_at_reference: float, image_size: tuple[int, int], reference: int = 1024) -> int:
    """A radius given at ``reference`` px (longest side), scaled to this image; at least 1 px."""
    return max(1, round(radius_at_reference * max(image_size) / reference))


def disc_mask(image_size: tuple[int, int], centers: Sequence[Sequence[float]], radius: float) -> np.ndarray:
    """Union of discs at ``centers`` [(x, y), ...] on an (H, W) grid."""
    height, width = image_size
    mask = np.zeros((height, width), dtype=bool)
    ys, xs = np.ogrid[:height, :width]
    for x, y in centers:
        mask |= (xs - x) ** 2 + (ys - y) ** 2 <= radius**2
    return mask


def box_mask(image_size: tuple[int, int], box: Sequence[float]) -> np.ndarray:
    """Filled box (x0, y0, x1, y1), inclusive of the pixels it touches."""
    height, width = image_size
    x0, y0, x1, y1 = box
    mask = np.zeros((height, width), dtype=bool)
    c0, c1 = int(np.floor(max(0, min(x0, x1)))), int(np.ceil(min(width, max(x0, x1))))
    r0, r1 = int(np.floor(max(0, min(y0, y1)))), int(np.ceil(min(height, max(y0, y1))))
    mask[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)] = True
    return mask


def scribble_mask(image_size: tuple[int, int], stroke: Sequence[Sequence[float]], radius: float) -> np.ndarray:
    """A stroke [(x, y), ...] drawn with round caps and joins of the given radius."""
    height, width = image_size
    canvas = np.zeros((height, width), dtype=np.uint8)
    points = np.round(np.asarray(stroke, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
    thickness = max(1, int(round(2 * radius)))
    if len(points) == 1:
        cv2.circle(canvas, tuple(int(v) for v in points[0, 0]), int(round(radius)), 1, thickness=-1)
    else:
        cv2.polylines(canvas, [points], isClosed=False, color=1, thickness=thickness, lineType=cv2.LINE_8)
        for x, y in points[:, 0]:
            cv2.circle(canvas, (int(x), int(y)), int(round(radius)), 1, thickness=-1)
    return canvas.astype(bool)
