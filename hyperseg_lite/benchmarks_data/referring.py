"""RefCOCO / RefCOCO+ / RefCOCOg / gRefCOCO: one sample per (referring expression, sentence), as the papers score.

Files in ``--data`` (one dataset folder, e.g. LISA's ``refer_seg/refcoco``):

* the refs as JSON: ``refs(unc).json`` (RefCOCO, RefCOCO+), ``refs(umd).json`` (RefCOCOg, UMD split),
  ``grefs(unc).json`` (gRefCOCO, as released); a list of refs with ``image_id``, ``ann_id`` (an int, or a
  list for gRefCOCO, ``-1`` / ``no_target`` for no-target expressions), ``split`` and ``sentences``
  (``{"sent": ...}``). The refer toolkit ships ``refs(*).p`` pickles, which this reader never opens (a
  pickle can run code): export your own trusted copy once with
  ``python -c "import json,pickle;json.dump(pickle.load(open('refs(unc).p','rb')),open('refs(unc).json','w'))"``.
* ``instances.json``: COCO images, annotations (polygons or RLE) and categories.
* or, when there is no refs JSON, MDETR's per-split export ``final_<dataset>_<split>.json`` (``final_refcoco_val.json``,
  ``final_refcocog_test.json``...; used by MDETR, GLIP, X-Decoder / SEEM, UNINEXT): one ``images`` entry per
  sentence (``caption``, ``file_name``, ``height``, ``width``) and its ``annotations`` by ``image_id``.
* the COCO train2014 images: ``--images DIR``, or found under ``images/mscoco/images/train2014``,
  ``images/train2014``, ``train2014`` next to or above the folder.

The target of a sample is the union of its annotations (gRefCOCO: several, or none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .common import BenchmarkDataError, coco_segmentation_mask, first_existing, read_json

REFS_FILES = {
    "refcoco": "refs(unc).json",
    "refcoco+": "refs(unc).json",
    "refcocog": "refs(umd).json",
    "grefcoco": "grefs(unc).json",
}
SPLITS = {
    "refcoco": ("val", "testA", "testB"),
    "refcoco+": ("val", "testA", "testB"),
    "refcocog": ("val", "test"),
    "grefcoco": ("val", "testA", "testB"),
}


@dataclass
class TextSample:
    """An image, a text, the mask that answers it (empty: no target) and pixels not scored (``ignore``)."""

    key: str
    image: Path
    text: str
    mask: np.ndarray
    ignore: np.ndarray | None = None

    @property
    def no_target(self) -> bool:
        return not self.mask.any()


def image_folder(data: Path, images: Path | None, file_name: str) -> Path:
    if images is not None:
        return Path(images)
    roots = [data, data.parent, data.parent.parent]
    candidates = [
        root / sub
        for root in roots
        for sub in ("images/mscoco/images/train2014", "images/train2014", "train2014", "images")
    ]
    for folder in candidates:
        if (folder / file_name).exists():
            return folder
    raise BenchmarkDataError(f"cannot find the COCO image {file_name}; pass --images (the train2014 folder)")


class RefCOCOReader:
    def __init__(self, data, dataset: str = "refcoco", split: str = "val", images=None) -> None:
        if dataset not in REFS_FILES:
            raise BenchmarkDataError(f"dataset must be one of {tuple(REFS_FILES)}")
        if split not in SPLITS[dataset]:
            raise BenchmarkDataError(f"{dataset} has the splits {SPLITS[dataset]}, not {split!r}")
        self.data, self.dataset, self.split = Path(data), dataset, split
        self.image_root = Path(images) if images is not None else None
        refs_path = self.data / REFS_FILES[dataset]
        mdetr = self.data / f"final_{dataset}_{split}.json"
        if not refs_path.exists() and mdetr.exists():
            self._read_mdetr(mdetr)
            return
        if not refs_path.exists() and refs_path.with_suffix(".p").exists():
            raise BenchmarkDataError(
                f"{refs_path.with_suffix('.p')} is a pickle, which is never opened here; export "
                f"it to {refs_path.name} (see hyperseg_lite/benchmarks_data/referring.py)"
            )
        refs = read_json(first_existing([refs_path, self.data / "refs.json"], f"{dataset} refs JSON"))
        instances = read_json(first_existing([self.data / "instances.json"], "instances.json"))
        self.images = {image["id"]: image for image in instances["images"]}
        self.annotations = {ann["id"]: ann for ann in instances["annotations"]}
        self.samples = []  # (ref_id, sentence index, image_id, annotation ids, sentence)
        for ref in refs:
            if ref.get("split") != split:
                continue
            ann_ids = ref["ann_id"] if isinstance(ref["ann_id"], list) else [ref["ann_id"]]
            ann_ids = [] if ref.get("no_target") else [a for a in ann_ids if a is not None and a >= 0]
            for k, sentence in enumerate(ref["sentences"]):
                self.samples.append((ref["ref_id"], k, ref["image_id"], ann_ids, sentence["sent"]))
        if not self.samples:
            raise BenchmarkDataError(f"{refs_path.name} has no refs of split {split!r}")

    def _read_mdetr(self, path: Path) -> None:
        """MDETR's export: every image entry is one sentence; its annotations are the target."""
        content = read_json(path)
        self.images = {image["id"]: image for image in content["images"]}
        self.annotations = {}
        targets: dict[int, list[int]] = {image_id: [] for image_id in self.images}
        for k, ann in enumerate(content["annotations"]):
            ann_id = ann.get("id", k)
            self.annotations[ann_id] = ann
            targets.setdefault(ann["image_id"], []).append(ann_id)
        self.samples = [
            (image.get("original_id", image_id), 0, image_id, targets[image_id], image["caption"])
            for image_id, image in self.images.items()
        ]
        if not self.samples:
            raise BenchmarkDataError(f"{path.name} has no images")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> TextSample:
        ref_id, k, image_id, ann_ids, sentence = self.samples[index]
        info = self.images[image_id]
        height, width = info["height"], info["width"]
        mask = np.zeros((height, width), dtype=bool)
        for ann_id in ann_ids:
            if ann_id not in self.annotations:
                raise BenchmarkDataError(f"ref {ref_id} names annotation {ann_id}, which instances.json lacks")
            mask |= coco_segmentation_mask(self.annotations[ann_id]["segmentation"], height, width)
        if self.image_root is None:
            self.image_root = image_folder(self.data, None, info["file_name"])
        image = self.image_root / info["file_name"]
        if not image.exists():
            raise BenchmarkDataError(f"the image {image} is missing")
        return TextSample(f"{ref_id}_{k}_{index}", image, sentence, mask)


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.height, image.width
