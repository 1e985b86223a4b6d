"""Exact rasterised outlines for every category (OpenCV polygons and discs), rotated and scaled."""

from __future__ import annotations

import math

import cv2
import numpy as np


def _regular(n: int, radius: float, phase: float = -math.pi / 2) -> np.ndarray:
    angles = phase + np.arange(n) * 2 * math.pi / n
    return np.stack([np.cos(angles), np.sin(angles)], 1) * radius


def _outline(category: str, r: float) -> list[np.ndarray] | None:
    """Polygon(s) centred at 0 for polygonal categories; None for categories drawn with discs."""
    if category == "square":
        return [_regular(4, r * 1.15, math.pi / 4)]
    if category == "diamond":
        return [_regular(4, r * 1.1, -math.pi / 2) * np.array([0.75, 1.0])]
    if category == "triangle":
        return [_regular(3, r * 1.15) + np.array([0, r * 0.15])]
    if category == "pentagon":
        return [_regular(5, r)]
    if category == "hexagon":
        return [_regular(6, r, 0.0)]
    if category == "star":
        outer, inner = _regular(5, r * 1.1), _regular(5, r * 0.45, -math.pi / 2 + math.pi / 5)
        return [np.stack([outer, inner], 1).reshape(-1, 2)]
    if category == "cross":
        a, b = r * 0.33, r
        return [
            np.array(
                [
                    [-a, -b],
                    [a, -b],
                    [a, -a],
                    [b, -a],
                    [b, a],
                    [a, a],
                    [a, b],
                    [-a, b],
                    [-a, a],
                    [-b, a],
                    [-b, -a],
                    [-a, -a],
                ]
            )
        ]
    if category == "arrow":
        s, h = r * 0.3, r * 0.65
        return [np.array([[-r, -s], [r * 0.15, -s], [r * 0.15, -h], [r, 0], [r * 0.15, h], [r * 0.15, s], [-r, s]])]
    if category == "heart":
        t = np.linspace(0, 2 * math.pi, 60, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return [np.stack([x, y], 1) * (r / 16.5)]
    return None


def rasterize(
    category: str, size: tuple[int, int], center: tuple[float, float], radius: float, angle: float
) -> np.ndarray:
    """Boolean mask of one object on an (H, W) canvas."""
    height, width = size
    canvas = np.zeros((height, width), dtype=np.uint8)
    cx, cy = center
    polygons = _outline(category, radius)
    if polygons is not None:
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        for polygon in polygons:
            points = polygon @ rotation.T + np.array([cx, cy])
            cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        return canvas.astype(bool)
    centre = (int(round(cx * 16)), int(round(cy * 16)))
    cv2.circle(canvas, centre, int(round(radius * 16)), 1, -1, shift=4)
    if category == "ring":
        cv2.circle(canvas, centre, int(round(radius * 0.55 * 16)), 0, -1, shift=4)
    elif category == "crescent":
        offset = (
            int(round((cx + radius * 0.45 * math.cos(angle)) * 16)),
            int(round((cy + radius * 0.45 * math.sin(angle)) * 16)),
        )
        cv2.circle(canvas, offset, int(round(radius * 0.85 * 16)), 0, -1, shift=4)
    elif category != "circle":
        raise ValueError(f"unknown category {category!r}")
    return canvas.astype(bool)
