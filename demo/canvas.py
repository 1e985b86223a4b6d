"""Drawing prompts and masks onto the image the visitor clicks: each object in its colour, include clicks as
green discs, exclude clicks as red discs, boxes as outlines, a pending box corner as a cross."""

from __future__ import annotations

import cv2
import numpy as np

from hyperseg_lite.pipeline.overlay import colour_for, draw_overlay

INCLUDE = (40, 200, 40)
EXCLUDE = (220, 30, 30)


def marker_size(shape: tuple[int, ...]) -> int:
    """Marker radius in pixels: visible on a 256 px shapes-world image and on a 4000 px photo alike."""
    return max(5, round(min(shape[:2]) / 40))


def draw_prompts(
    image: np.ndarray,
    objects: list[dict],
    masks: list[np.ndarray | None],
    corner: list[float] | None = None,
    active: int | None = None,
) -> np.ndarray:
    """``objects[i]`` (points / labels / box / scribble / mask) and ``masks[i]`` drawn in the colour of object i + 1."""
    shown = [(m, i + 1) for i, m in enumerate(masks) if m is not None]
    out = draw_overlay(
        image,
        np.array([m for m, _ in shown]).reshape(-1, *image.shape[:2]),
        [""] * len(shown),
        [i for _, i in shown],
        alpha=0.45,
        legend=False,
    )
    radius = marker_size(image.shape)
    thickness = max(1, radius // 3)
    for i, obj in enumerate(objects):
        colour = colour_for(i + 1)
        if obj.get("mask") is not None:
            tint = np.asarray(obj["mask"], dtype=bool)
            out[tint] = (0.6 * out[tint] + 0.4 * np.array(colour)).astype(np.uint8)
        for x, y in obj.get("scribble") or []:
            cv2.circle(out, (round(x), round(y)), max(1, thickness), colour, -1, cv2.LINE_AA)
        if obj.get("box") is not None:
            x0, y0, x1, y1 = (round(v) for v in obj["box"])
            cv2.rectangle(out, (x0, y0), (x1, y1), colour, thickness + (1 if i == active else 0), cv2.LINE_AA)
        for (x, y), label in zip(obj.get("points", []), obj.get("labels", [])):
            centre = (round(x), round(y))
            cv2.circle(out, centre, radius, INCLUDE if label == 1 else EXCLUDE, -1, cv2.LINE_AA)
            cv2.circle(out, centre, radius, colour, thickness, cv2.LINE_AA)
    if corner is not None:
        x, y = round(corner[0]), round(corner[1])
        colour = colour_for((active or 0) + 1)
        cv2.drawMarker(out, (x, y), colour, cv2.MARKER_CROSS, 3 * radius, thickness, cv2.LINE_AA)
    return out
