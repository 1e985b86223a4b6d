"""Semantic segmentation folders: images + label PNGs + a class list (ADE20K-150, PASCAL-Context-59).

* ADE20K-150 (``ADEChallengeData2016``): ``images/<training|validation>/*.jpg``,
  ``annotations/<...>/*.png`` with 0 = unlabelled and k = class k - 1; class names from ``objectInfo150.csv``
  (its ``Name`` column, first synonym) or a ``classes.txt`` (one name per line).
* PASCAL-Context-59 (mmsegmentation's layout): ``JPEGImages/*.jpg``, ``SegmentationClassContext/*.png`` with
  0 = background (not scored) and k = class k - 1, ``ImageSets/SegmentationContext/<split>.txt``; class names
  from ``classes.txt`` (the 59 names in label order).
* PASCAL VOC 2012, 20 classes (PAS-20; ``VOCdevkit/VOC2012``): ``JPEGImages``, ``SegmentationClass/*.png``
  (palette; 0 = background and 255 = border, neither scored), ``ImageSets/Segmentation/<split>.txt``; the 20
  class names are VOC's own unless a ``classes.txt`` is given.

Labels come back with -1 wherever nothing is scored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import BenchmarkDataError, first_existing, read_palette_png

VOC_CLASSES = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "dining table",
    "dog",
    "horse",
    "motorbike",
    "person",
    "potted plant",
    "sheep",
    "sofa",
    "train",
    "tv monitor",
]
ADE_SPLITS = {"val": "validation", "validation": "validation", "train": "training", "training": "training"}


@dataclass
class SemanticSample:
    key: str
    image: Path
    label: np.ndarray  # (H, W) int64, class index or -1 (not scored)


def read_class_list(path: Path) -> list[str]:
    if path.suffix == ".csv":  # ADE's objectInfo150.csv: Idx, Ratio, Train, Val, Name ("wall", "building;edifice")
        with open(path, newline="") as handle:
            return [row["Name"].split(";")[0].split(",")[0].strip() for row in csv.DictReader(handle)]
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


class SemanticReader:
    def __init__(self, data, layout: str = "ade20k", split: str = "val", classes=None) -> None:
        data = Path(data)
        if layout == "ade20k":
            sub = ADE_SPLITS.get(split)
            if sub is None:
                raise BenchmarkDataError(f"ADE20K splits are {tuple(ADE_SPLITS)}, not {split!r}")
            image_dir, label_dir = data / "images" / sub, data / "annotations" / sub
            labels = sorted(label_dir.glob("*.png"))
            class_file = classes or first_existing([data / "objectInfo150.csv", data / "classes.txt"], "ADE class list")
        elif layout == "pascal-context-59":
            image_dir, label_dir = data / "JPEGImages", data / "SegmentationClassContext"
            listing = first_existing([data / "ImageSets" / "SegmentationContext" / f"{split}.txt"], f"{split}.txt")
            labels = [label_dir / f"{line.strip()}.png" for line in listing.read_text().split() if line.strip()]
            class_file = classes or first_existing([data / "classes.txt"], "PASCAL-Context class list (classes.txt)")
        elif layout == "pascal-voc-20":
            image_dir, label_dir = data / "JPEGImages", data / "SegmentationClass"
            listing = first_existing([data / "ImageSets" / "Segmentation" / f"{split}.txt"], f"{split}.txt")
            labels = [label_dir / f"{line.strip()}.png" for line in listing.read_text().split() if line.strip()]
            class_file = classes or (data / "classes.txt" if (data / "classes.txt").exists() else None)
        else:
            raise BenchmarkDataError("layout must be 'ade20k', 'pascal-context-59' or 'pascal-voc-20'")
        self.class_names = read_class_list(Path(class_file)) if class_file else list(VOC_CLASSES)
        if not labels:
            raise BenchmarkDataError(f"{label_dir} holds no label PNGs")
        self.items = [(p, image_dir / f"{p.stem}.jpg") for p in labels]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> SemanticSample:
        label_path, image_path = self.items[index]
        if not label_path.exists() or not image_path.exists():
            raise BenchmarkDataError(f"{label_path.name} or {image_path.name} is missing")
        raw = read_palette_png(label_path)
        label = raw - 1  # 0 (unlabelled / background) -> -1, k -> k - 1
        label[(raw == 0) | (raw == 255) | (label >= len(self.class_names))] = -1
        return SemanticSample(label_path.stem, image_path, label)
