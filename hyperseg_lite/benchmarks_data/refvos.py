"""Referring / reasoning video object segmentation: an expression over a clip, scored on every frame.

* Ref-YouTube-VOS (and Ref-DAVIS17 in ReferFormer's conversion): ``meta_expressions/<split>/meta_expressions.json``
  (or ``meta_expressions.json`` in ``--data``): ``{"videos": {vid: {"expressions": {"0": {"exp", "obj_id"}},
  "frames": [...]}}}``; frames in ``<split>/JPEGImages/<vid>/<frame>.jpg`` (or ``JPEGImages/``), masks from
  the palette PNGs ``<split>/Annotations/<vid>/<frame>.png`` (pixel = ``obj_id``).
* ReVOS: ``meta_expressions_valid_.json`` whose expressions carry ``anno_id`` (a list) and ``type_id``
  (0 referring, 1 reasoning), frames in ``JPEGImages/<vid>/`` (``vid`` may be a path, ``UVO/all/...``), masks in
  ``mask_dict.json``: ``{anno_id: [RLE or null per frame]}``; an expression's mask is the union of its
  annotations. ReasonVOS converted to this form (``meta_expressions_v2.json`` + a JSON mask dict) reads the same.
* ReasonVOS as released: ``meta_expressions.json`` whose ``expressions`` is a list of ``{exp_id, obj_id,
  exp_text, is_sent}`` beside the video's ``source`` and ``frames``; the mask of an object is one binary PNG per
  frame in ``Annotations/<source>_<vid>_<obj_id>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import BenchmarkDataError, coco_segmentation_mask, first_existing, read_json, read_palette_png

META_NAMES = (
    "meta_expressions.json",
    "meta_expressions_valid_.json",
    "meta_expressions_valid.json",
    "meta_expressions_v2.json",
)


@dataclass
class RefVideoSample:
    key: str
    frames: list[Path]
    text: str
    kind: str  # "referring" or "reasoning"
    masks: MaskSource


class MaskSource:
    """The target of one expression on frame ``t`` ((H, W) bool), read only when asked."""

    def __init__(
        self,
        pngs: list[Path] | None = None,
        obj_ids: list[int] = (),
        rles: list[list] | None = None,
        binary: bool = False,
    ) -> None:
        self.pngs, self.obj_ids, self.rles, self.binary = pngs, [int(o) for o in obj_ids], rles, binary

    def __call__(self, t: int, size: tuple[int, int]) -> np.ndarray | None:
        if self.rles is not None:
            mask = np.zeros(size, dtype=bool)
            for track in self.rles:
                if track[t] is not None:
                    mask |= coco_segmentation_mask(track[t], *size)
            return mask
        if self.pngs is None or t >= len(self.pngs) or not self.pngs[t].exists():
            return None
        labels = read_palette_png(self.pngs[t])
        return labels > 0 if self.binary else np.isin(labels, self.obj_ids)


class RefVOSReader:
    def __init__(self, data, split: str = "valid", meta=None) -> None:
        data = Path(data)
        candidates = [data / "meta_expressions" / split / "meta_expressions.json", *(data / n for n in META_NAMES)]
        self.meta_path = Path(meta) if meta else first_existing(candidates, "meta expressions JSON")
        self.videos = read_json(self.meta_path)["videos"]
        for vid, video in self.videos.items():  # ReasonVOS as released: a list of expressions -> ReVOS's dict form
            if isinstance(video["expressions"], list):
                video["expressions"] = {
                    str(k): {
                        "exp": e["exp_text"],
                        "obj_id": e["obj_id"],
                        "type_id": 1,
                        "object_folder": f"{video.get('source', '')}_{vid}_{e['obj_id']}",
                    }
                    for k, e in enumerate(video["expressions"])
                }
        self.frame_root = first_existing([data / split / "JPEGImages", data / "JPEGImages"], "JPEGImages/ folder")
        self.anno_root = next((p for p in (data / split / "Annotations", data / "Annotations") if p.exists()), None)
        self.data = data
        mask_dict = next(
            (p for p in (data / "mask_dict.json", data / "mask_dict_v2.json") if p.exists()), data / "mask_dict.json"
        )
        self.mask_dict = read_json(mask_dict) if mask_dict.exists() else None
        self.items = [
            (vid, exp_id) for vid in sorted(self.videos) for exp_id in sorted(self.videos[vid]["expressions"], key=int)
        ]
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
        if "object_folder" in expression:
            folder = self.data / "Annotations" / expression["object_folder"]
            pngs = [folder / f"{name}.png" for name in names]
            if not any(p.exists() for p in pngs):  # named by position rather than by frame
                pngs = sorted(folder.glob("*.png"))
            masks = MaskSource(pngs=pngs, binary=True)
        elif "anno_id" in expression:
            if self.mask_dict is None:
                raise BenchmarkDataError(f"{self.meta_path.name} names anno_id but mask_dict.json is missing")
            anno_ids = expression["anno_id"] if isinstance(expression["anno_id"], list) else [expression["anno_id"]]
            masks = MaskSource(rles=[self.mask_dict[str(a)] for a in anno_ids])
        else:
            obj_ids = expression["obj_id"] if isinstance(expression["obj_id"], list) else [expression["obj_id"]]
            pngs = [self.anno_root / vid / f"{name}.png" for name in names] if self.anno_root else None
            masks = MaskSource(pngs=pngs, obj_ids=obj_ids)
        return RefVideoSample(f"{vid}_{exp_id}", frames, expression["exp"], kind, masks)
