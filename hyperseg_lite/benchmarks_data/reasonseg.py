"""LISA's ReasonSeg: ``<data>/<split>/NAME.jpg`` + ``NAME.json`` (labelme-style polygons).

Each JSON holds ``text`` (a list of questions or one string), ``is_sentence`` and ``shapes``: polygons labelled
``target``, ``ignore`` (not scored) or ``flag`` (skipped). The mask is drawn as LISA's ``get_mask_from_json``
draws it: larger polygons first, outline and fill, so a small polygon inside a large one wins; as LISA's
validation, the first question of each image is asked.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .common import IMAGE_SUFFIXES, BenchmarkDataError, read_json
from .referring import TextSample, image_size


def polygons_mask(shapes: list[dict], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(target, ignore) masks from ReasonSeg shapes."""
    drawn = []
    for shape in shapes:
        if shape["label"].lower() == "flag":
            continue
        points = np.array([shape["points"]], dtype=np.int32)
        single = np.zeros((height, width), dtype=np.uint8)
        cv2.polylines(single, points, True, 1, 1)
        cv2.fillPoly(single, points, 1)
        drawn.append((int(single.sum()), shape, points))
    label = np.zeros((height, width), dtype=np.uint8)
    for _, shape, points in sorted(drawn, key=lambda d: d[0], reverse=True):
        value = 255 if "ignore" in shape["label"].lower() else 1
        cv2.polylines(label, points, True, value, 1)
        cv2.fillPoly(label, points, value)
    return label == 1, label == 255


class ReasonSegReader:
    def __init__(self, data, split: str = "val") -> None:
        folder = Path(data) / split
        if not folder.is_dir():
            raise BenchmarkDataError(f"{folder} is not a folder; --data is the ReasonSeg folder holding {split}/")
        self.files = sorted(folder.glob("*.json"))
        if not self.files:
            raise BenchmarkDataError(f"{folder} holds no ReasonSeg JSON files")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> TextSample:
        path = self.files[index]
        anno = read_json(path)
        images = [path.with_suffix(s) for s in IMAGE_SUFFIXES if path.with_suffix(s).exists()]
        if not images:
            raise BenchmarkDataError(f"{path.name} has no image beside it")
        height, width = image_size(images[0])
        target, ignore = polygons_mask(anno["shapes"], height, width)
        texts = anno["text"] if isinstance(anno["text"], list) else [anno["text"]]
        return TextSample(path.stem, images[0], texts[0], target, ignore if ignore.any() else None)
