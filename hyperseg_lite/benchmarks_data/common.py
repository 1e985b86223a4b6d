"""What every reader shares: one clear error type, JSON reading, polygon / RLE / palette-PNG decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils


class BenchmarkDataError(ValueError):
    """A benchmark folder is missing something or holds something unexpected; the message says what."""


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BenchmarkDataError(f"{path} does not exist") from None
    except json.JSONDecodeError as error:
        raise BenchmarkDataError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None


def first_existing(candidates, what: str) -> Path:
    """The first of ``candidates`` that exists, or an error naming them all."""
    candidates = [Path(c) for c in candidates]
    for path in candidates:
        if path.exists():
            return path
    raise BenchmarkDataError(f"no {what} found; looked for " + ", ".join(str(c) for c in candidates))


def coco_segmentation_mask(segmentation, height: int, width: int) -> np.ndarray:
    """A COCO ``segmentation`` (polygons, uncompressed or compressed RLE) -> (H, W) bool."""
    if isinstance(segmentation, list):  # polygons
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles) if rles else None
        return mask_utils.decode(rle).astype(bool) if rle is not None else np.zeros((height, width), bool)
    if isinstance(segmentation.get("counts"), list):  # uncompressed RLE
        segmentation = mask_utils.frPyObjects(segmentation, height, width)
    elif isinstance(segmentation.get("counts"), str):
        segmentation = dict(segmentation, counts=segmentation["counts"].encode("ascii"))
    return mask_utils.decode(segmentation).astype(bool)


def read_palette_png(path: Path) -> np.ndarray:
    """A palette (mode P) or grey annotation PNG -> (H, W) int of its indices (object ids / class labels)."""
    image = Image.open(path)
    if image.mode not in ("P", "L", "I", "I;16"):
        raise BenchmarkDataError(f"{path} is a {image.mode} image; annotations must be palette or grey PNGs")
    return np.asarray(image).astype(np.int64)


def rgb_to_id(path: Path) -> np.ndarray:
    """COCO panoptic PNG -> (H, W) segment ids (R + 256 G + 256^2 B)."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
