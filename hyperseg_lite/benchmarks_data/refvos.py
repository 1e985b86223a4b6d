"""Referring / reasoning video object segmentation: an expression over a clip, scored on every frame.

* Ref-YouTube-VOS (and Ref-DAVIS17 in ReferFormer's conversion): ``meta_expressions/<split>/meta_expressions.json``
  (or ``meta_expressions.json`` in ``--data``): ``{"videos": {vid: {"expressions": {"0": {"exp", "obj_id"}},
  "frames": [...]}}}``; frames in ``<split>/JPEGImages/<vid>/<frame>.jpg`` (or ``JPEGImages/``), masks from
  the palette PNGs ``<split>/Annotations/<vid>/<frame>.png`` (pixel = ``obj_id``).
* ReVOS / ReasonVOS: ``meta_expressions_valid_.json`` / ``meta_expressions.json`` whose expressions carry
  ``anno_id`` (a list) and ``type_id`` (ReVOS: 0 referring, 1 reasoning), frames in ``JPEGImages/<vid>/``,
  masks in ``mask_dict.json``: ``{anno_id: [RLE or null per frame]}``; an expression's mask is the union of its
  annotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import BenchmarkDataError, coco_segmentation_mask, first_existing, read_json, read_palette_png

META_NAMES = ("meta_expressions.json", "meta_expressions_valid_.json", "meta_expressions_valid.json")


@dataclass
class RefVideoSample:
    key: str
    frames: list[Path]
    text: str
    kind: str  # "referring" or "reasoning"
    masks: "MaskSource"


class MaskSource:
    """The target of one expression on frame ``t`` ((H, W) bool), read only when asked."""

    def __init__(self, pngs: list[Path] | None = None, obj_ids: list[int] = (), rles: list[list] | None = None) -> None:
        self.pngs, self.obj_ids, self.rles = pngs, [int(o) for o in obj_ids], rles

    def __call__(self, t: int, size: tuple[int, int]) -> np.ndarray | None:
        if self.rles is not None:
            mask = np.zeros(size, dtype=bool)
            for track in self.rles:
                if track[t] is not None:
                    mask |= coco_segmentation_mask(track[t], *size)
            return mask
        if self.pngs is None or not self.pngs[t].exists():
            return None
        return np.isin(read_palette_png(self.pngs[t]), self.obj_ids)


class RefVOSReader:
    def __init__(self, data, split: str = "valid", meta=None) -> None:
        data = Path(data)
        candidates = [data / "meta_expressions" / split / "meta_expressions.json", *(data / n for n in META_NAMES)]
        self.meta_path = Path(meta) if meta else first_existing(candidates, "meta expressions JSON")
        self.videos = read_json(self.meta_path)["videos"]
        self.frame_root = first_existing([data / split / "JPEGImages", data / "JPEGImages"], "JPEGImages/ folder")
        self.anno_root = next((p for p in (data / split / "Annotations", data / "Annotations") if p.exists()), None)
        mask_dict = data / "mask_dict.json"
        self.mask_dict = read_json(mask_dict) if mask_dict.exists() else None
        self.items = [(vid, exp_id) for vid in sorted(self.videos) for exp_id in sorted(self.videos[vid]["expressions"], key=int)]
        if not self.items:
            raise BenchmarkDataError(f"{self.meta_path.name} lists no expressions")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> RefVideoSample:
        vid, exp_id = self.items[index]
        video = self.videos[vid]
        expression = video["expressions"][exp_id]
        names = video.get("frames") or sorted(p.stem for p in (self.frame_root / vid).glob("*.jpg"))
        frames = [self.frame_root / vid / f"{name}.jpg" for name in names]
        kind = "reasoning" if expression.get("type_id", 0) == 1 else "referring"
        if "anno_id" in expression:
            if self.mask_dict is None:
                raise BenchmarkDataError(f"{self.meta_path.name} names anno_id but mask_dict.json is missing")
            anno_ids = expression["anno_id"] if isinstance(expression["anno_id"], list) else [expression["anno_id"]]
            masks = MaskSource(rles=[self.mask_dict[str(a)] for a in anno_ids])
        else:
            obj_ids = expression["obj_id"] if isinstance(expression["obj_id"], list) else [expression["obj_id"]]
            pngs = [self.anno_root / vid / f"{name}.png" for name in names] if self.anno_root else None
            masks = MaskSource(pngs=pngs, obj_ids=obj_ids)
        return RefVideoSample(f"{vid}_{exp_id}", frames, expression["exp"], kind, masks)
