"""Coloured overlays: per-segment colours, outlines and a legend (numpy + OpenCV; matplotlib for figures)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

_PALETTE = np.array(
    [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
        [220, 190, 255],
        [170, 110, 40],
        [255, 250, 200],
        [128, 0, 0],
        [170, 255, 195],
        [128, 128, 0],
        [255, 215, 180],
        [0, 0, 128],
        [128, 128, 128],
    ],
    dtype=np.uint8,
)


def colour_for(index: int) -> tuple[int, int, int]:
    """Stable colour per id, so a track keeps its colour through a video."""
    return tuple(int(c) for c in _PALETTE[int(index) % len(_PALETTE)])


def draw_overlay(
    image: np.ndarray,
    masks: np.ndarray,
    labels: Sequence[str],
    ids: Sequence[int],
    alpha: float = 0.5,
    legend: bool = True,
) -> np.ndarray:
    """RGB uint8 image with translucent masks, white-edged outlines and (optionally) a legend strip."""
    canvas = image.astype(np.float32).copy()
    for mask, index in zip(masks, ids):
        colour = np.array(colour_for(index), dtype=np.float32)
        canvas[mask] = canvas[mask] * (1 - alpha) + colour * alpha
    out = canvas.round().astype(np.uint8)
    thickness = max(1, round(max(image.shape[:2]) / 300))
    for mask, index in zip(masks, ids):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, colour_for(index), thickness)
    if legend and len(labels):
        out = _with_legend(out, labels, ids)
    return out


def _with_legend(image: np.ndarray, labels: Sequence[str], ids: Sequence[int]) -> np.ndarray:
    row = 18
    entries = list(dict.fromkeys(zip(labels, ids)))
    strip = np.full((row * len(entries) + 6, image.shape[1], 3), 255, dtype=np.uint8)
    for i, (label, index) in enumerate(entries):
        y = 4 + i * row
        cv2.rectangle(strip, (4, y), (16, y + 12), colour_for(index), -1)
        cv2.putText(strip, str(label)[:60], (22, y + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([image, strip], axis=0)


def figure(image: np.ndarray, result, title: str | None = None):
    """A matplotlib figure of an overlay with a proper legend (for notebooks and reports)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(6, 6 * image.shape[0] / max(image.shape[1], 1)))
    ax.imshow(draw_overlay(image, result.masks, result.labels, result.ids, legend=False))
    ax.set_axis_off()
    handles = [
        Patch(color=np.array(colour_for(i)) / 255, label=f"{label} ({score:.2f})")
        for label, i, score in zip(result.labels, result.ids, result.scores)
    ]
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize=8)
    ax.set_title(title or (result.answer or result.prompt)[:80], fontsize=9)
    fig.tight_layout()
    return fig
