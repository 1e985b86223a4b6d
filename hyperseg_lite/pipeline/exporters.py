"""COCO RLE (pycocotools), label-map PNG (16-bit) and their readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils


def encode_rle(masks: np.ndarray) -> list[dict]:
    """(N, H, W) bool -> COCO RLE dicts with ``counts`` as a str (JSON-ready)."""
    if masks.shape[0] == 0:
        return []
    encoded = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")} for rle in encoded]


def decode_rle(rles: list[dict]) -> np.ndarray:
    """Inverse of :func:`encode_rle` -> (N, H, W) bool."""
    if not rles:
        return np.zeros((0, 0, 0), dtype=bool)
    objs = [
        {"size": r["size"], "counts": r["counts"].encode("ascii") if isinstance(r["counts"], str) else r["counts"]}
        for r in rles
    ]
    return mask_utils.decode(objs).transpose(2, 0, 1).astype(bool)


def masks_to_label_map(masks: np.ndarray) -> np.ndarray:
    label_map = np.zeros(masks.shape[1:], dtype=np.uint16)
    for index, mask in enumerate(masks):
        label_map[mask] = index + 1
    return label_map


def save_label_png(label_map: np.ndarray, path: str | Path) -> Path:
    """16-bit grey PNG: pixel value = segment number (0 = background)."""
    path = Path(path)
    Image.fromarray(label_map.astype(np.uint16)).save(path)
    return path


def load_label_png(path: str | Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.uint16)
