"""Semi-supervised video object segmentation folders: JPEG frames + palette PNG annotations (pixel = object id).

* DAVIS-2017: ``JPEGImages/480p/<seq>/00000.jpg``, ``Annotations/480p/<seq>/00000.png``,
  ``ImageSets/2017/<split>.txt``. Every object is given on the first frame; as the official toolkit
  (davis2017-evaluation), the first and last frames are not scored.
* YouTube-VOS: ``<split>/JPEGImages/<vid>/*.jpg``, ``<split>/Annotations/<vid>/*.png``, ``<split>/meta.json``
  (each object's frames). An object is given on its first annotated frame; later annotated frames are scored
  (the valid / test splits hold first-frame masks only: predict, then submit to the challenge server).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import BenchmarkDataError, first_existing, read_json, read_palette_png


@dataclass
class VideoObjectSample:
    key: str
    frames: list[Path]
    annotations: list[Path | None]  # per frame, the palette PNG if annotated
    starts: dict[int, int]  # object id -> index of the frame that gives it (its first annotated frame)
    drop_last: bool  # DAVIS: the last frame is not scored

    def object_mask(self, t: int) -> np.ndarray | None:
        """(H, W) object ids on frame ``t``, or None where the frame has no annotation."""
        path = self.annotations[t]
        return None if path is None else read_palette_png(path)


class VOSReader:
    def __init__(self, data, layout: str = "davis", split: str = "val") -> None:
        data = Path(data)
        self.layout = layout
        if layout == "davis":
            listing = first_existing([data / "ImageSets" / "2017" / f"{split}.txt"], f"ImageSets/2017/{split}.txt")
            self.videos = [v for v in listing.read_text().split() if v]
            self.frame_root, self.anno_root = data / "JPEGImages" / "480p", data / "Annotations" / "480p"
            self.meta = None
        elif layout == "youtube-vos":
            root = data / split
            self.meta = read_json(first_existing([root / "meta.json"], f"{split}/meta.json"))["videos"]
            self.videos = sorted(self.meta)
            self.frame_root, self.anno_root = root / "JPEGImages", root / "Annotations"
        else:
            raise BenchmarkDataError("layout must be 'davis' or 'youtube-vos'")
        if not self.videos:
            raise BenchmarkDataError(f"no videos listed for split {split!r}")

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> VideoObjectSample:
        video = self.videos[index]
        frames = sorted((self.frame_root / video).glob("*.jpg"))
        if not frames:
            raise BenchmarkDataError(f"{self.frame_root / video} holds no JPEG frames")
        annotations = [self.anno_root / video / f"{f.stem}.png" for f in frames]
        annotations = [a if a.exists() else None for a in annotations]
        starts: dict[int, int] = {}
        if self.meta is not None:
            stems = [f.stem for f in frames]
            for obj, info in self.meta[video]["objects"].items():
                starts[int(obj)] = stems.index(info["frames"][0])
        else:
            first = annotations[0]
            if first is None:
                raise BenchmarkDataError(f"{video} has no first-frame annotation")
            starts = {int(o): 0 for o in np.unique(read_palette_png(first)) if o != 0}
        return VideoObjectSample(video, frames, annotations, starts, drop_last=self.layout == "davis")
