"""Panoptic annotations in the COCO panoptic format.

* COCO: ``annotations/panoptic_<split>2017.json`` + ``annotations/panoptic_<split>2017/*.png`` +
  ``<split>2017/*.jpg`` (the layout of COCO's own download; the JSON and PNG folder may also sit in ``--data``).
* ADE20K panoptic (``layout="ade20k"``), as detectron2's ``prepare_ade20k_pan_seg.py`` writes it into
  ``ADEChallengeData2016``: ``ade20k_panoptic_val.json`` + ``ade20k_panoptic_val/*.png`` + ``images/validation``.

The PNGs store segment ids as R + 256 G + 256^2 B; ``segments_info`` gives each id its category and
``iscrowd``; ``categories`` says which are things (``isthing``). Crowd regions are returned as void (not
scored), which the PQ of ``panopticapi`` approximates more finely (it also forgives predictions over crowd).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import BenchmarkDataError, first_existing, read_json, rgb_to_id


@dataclass
class PanopticSample:
    key: str
    image: Path
    target: np.ndarray  # (H, W, 2) int64: category (1..K in the order of ``categories``; 0 = void), segment id


class COCOPanopticReader:
    def __init__(self, data, split: str = "val", layout: str = "coco") -> None:
        data = Path(data)
        if layout == "coco":
            name = f"panoptic_{split}2017"
            images = [data / f"{split}2017", data / "images" / f"{split}2017"]
        elif layout == "ade20k":
            name = f"ade20k_panoptic_{split}"
            images = [data / "images" / ("validation" if split == "val" else "training")]
        else:
            raise BenchmarkDataError("layout must be 'coco' or 'ade20k'")
        self.json_path = first_existing([data / "annotations" / f"{name}.json", data / f"{name}.json"], f"{name}.json")
        self.png_dir = first_existing([self.json_path.parent / name, data / name], f"{name}/ PNG folder")
        self.image_dir = first_existing(images, "image folder")
        content = read_json(self.json_path)
        self.categories = content["categories"]
        self.things = [c["name"] for c in self.categories if c.get("isthing", 1)]
        self.stuff = [c["name"] for c in self.categories if not c.get("isthing", 1)]
        self.class_names = [c["name"] for c in self.categories]
        # contiguous ids 1..K (0 = void): some exports number their categories from 0
        self.category_ids = {c["name"]: k + 1 for k, c in enumerate(self.categories)}
        self._contiguous = {c["id"]: k + 1 for k, c in enumerate(self.categories)}
        images = {image["id"]: image for image in content["images"]}
        self.entries = [(images[a["image_id"]], a) for a in content["annotations"]]
        if not self.entries:
            raise BenchmarkDataError(f"{self.json_path.name} has no annotations")

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> PanopticSample:
        info, annotation = self.entries[index]
        ids = rgb_to_id(self.png_dir / annotation["file_name"])
        target = np.zeros((*ids.shape, 2), dtype=np.int64)
        for segment in annotation["segments_info"]:
            if segment.get("iscrowd", 0):
                continue
            target[ids == segment["id"]] = (self._contiguous[segment["category_id"]], segment["id"])
        return PanopticSample(Path(info["file_name"]).stem, self.image_dir / info["file_name"], target)
