"""Visual prompts sampled from ground truth as the paper does: clicks inside the object, jittered boxes,
scribbles through the object, and (eroded / dilated) masks. Coordinates are (x, y) pixels."""

from __future__ import annotations

import cv2
import numpy as np


def click(mask: np.ndarray, rng: np.random.Generator, inside: bool = True) -> list[float]:
    """A point inside (or, for a negative click, outside) ``mask``, preferring the interior."""
    if inside:
        distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
        ys, xs = np.nonzero(distance >= max(1.0, distance.max() * 0.4))
        if len(ys) == 0:  # OpenCV's 3x3 L2 estimate can stay below 1 in thin masks: any pixel of the mask
            ys, xs = np.nonzero(mask)
    else:
        ys, xs = np.nonzero(~mask)
    if len(ys) == 0:
        raise ValueError("cannot click " + ("inside an empty mask" if inside else "outside a full mask"))
    k = int(rng.integers(len(ys)))
    return [float(xs[k]), float(ys[k])]


def box(mask: np.ndarray, rng: np.random.Generator, jitter: float = 0.1) -> list[float]:
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    w, h = x1 - x0, y1 - y0
    height, width = mask.shape
    out = [
        x0 + rng.normal(0, jitter) * w,
        y0 + rng.normal(0, jitter) * h,
        x1 + rng.normal(0, jitter) * w,
        y1 + rng.normal(0, jitter) * h,
    ]
    out = [
        float(np.clip(out[0], 0, width - 2)),
        float(np.clip(out[1], 0, height - 2)),
        float(np.clip(out[2], 0, width)),
        float(np.clip(out[3], 0, height)),
    ]
    if out[2] - out[0] < 2:
        out[2] = min(width, out[0] + 2)
    if out[3] - out[1] < 2:
        out[3] = min(height, out[1] + 2)
    return out


def scribble(mask: np.ndarray, rng: np.random.Generator, points: int = 4) -> list[list[float]]:
    return [click(mask, rng) for _ in range(points)]


def rough_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kernel = np.ones((3, 3), np.uint8)
    steps = int(rng.integers(0, 3))
    out = mask.astype(np.uint8)
    out = cv2.erode(out, kernel, iterations=steps) if rng.random() < 0.5 else cv2.dilate(out, kernel, iterations=steps)
    return out.astype(bool) if out.any() else mask.copy()


def sample_region(mask: np.ndarray, rng: np.random.Generator, kind: str | None = None) -> dict:
    """One visual prompt for ``mask``: {"kind": "point" | "box" | "scribble" | "mask", ...}."""
    kind = kind or str(rng.choice(["point", "box", "scribble", "mask"], p=[0.4, 0.3, 0.15, 0.15]))
    if kind == "point":
        points = [click(mask, rng) for _ in range(int(rng.integers(1, 3)))]
        labels = [1] * len(points)
        if rng.random() < 0.3:
            points.append(click(mask, rng, inside=False))
            labels.append(0)
        return {"kind": "point", "points": points, "labels": labels}
    if kind == "box":
        return {"kind": "box", "box": box(mask, rng)}
    if kind == "scribble":
        return {"kind": "scribble", "scribble": scribble(mask, rng)}
    return {"kind": "mask", "mask": rough_mask(mask, rng)}
