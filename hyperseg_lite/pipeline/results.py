"""One result type for every task, with exporters that other tools read.

``masks`` are boolean at the original image resolution, one per segment; ``labels`` name them (class name,
the expression, or ``region 1``...); ``ids`` are instance ids (images) or track ids (video, stable across
frames). An empty result with ``no_match=True`` is an explicit answer: nothing in the image matches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import exporters


@dataclass
class SegmentationResult:
    task: str
    prompt: str
    masks: np.ndarray  # (N, H, W) bool
    labels: list[str]
    scores: np.ndarray  # (N,) float in [0, 1]
    ids: np.ndarray  # (N,) int
    answer: str | None = None
    absent: list[str] = field(default_factory=list)  # class names asked for and not found
    notices: list[str] = field(default_factory=list)
    frame_index: int | None = None

    def __post_init__(self) -> None:
        if self.masks.ndim != 3:
            raise ValueError("masks must be (N, H, W)")
        if not (len(self.labels) == len(self.scores) == len(self.ids) == self.masks.shape[0]):
            raise ValueError("masks, labels, scores and ids must have one entry per segment")

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    @property
    def no_match(self) -> bool:
        return self.masks.shape[0] == 0

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def union(self) -> np.ndarray:
        """All segments as one mask (what generalized referring answers)."""
        return self.masks.any(axis=0) if len(self) else np.zeros(self.image_size, dtype=bool)

    def label_map(self) -> np.ndarray:
        """(H, W) uint16: 0 = background, i + 1 = segment i (later segments drawn over earlier ones)."""
        return exporters.masks_to_label_map(self.masks)

    def to_coco_rle(self) -> list[dict]:
        return [
            dict(rle, label=label, score=float(score), id=int(i))
            for rle, label, score, i in zip(exporters.encode_rle(self.masks), self.labels, self.scores, self.ids)
        ]

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "prompt": self.prompt,
            "answer": self.answer,
            "no_match": self.no_match,
            "image_size": list(self.image_size),
            "absent": self.absent,
            "notices": self.notices,
            "frame_index": self.frame_index,
            "segments": self.to_coco_rle(),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    def save_label_png(self, path: str | Path) -> Path:
        return exporters.save_label_png(self.label_map(), path)

    def overlay(self, image: np.ndarray, alpha: float = 0.5, legend: bool = True) -> np.ndarray:
        from .overlay import draw_overlay

        return draw_overlay(image, self.masks, self.labels, self.ids, alpha=alpha, legend=legend)

    @classmethod
    def empty(cls, task: str, prompt: str, image_size: tuple[int, int], **kwargs) -> SegmentationResult:
        return cls(
            task,
            prompt,
            np.zeros((0, *image_size), dtype=bool),
            [],
            np.zeros(0, dtype=np.float32),
            np.zeros(0, dtype=np.int64),
            **kwargs,
        )
