"""Mask AP with pycocotools, for images (COCO instance AP) and clips (YouTube-VIS AP).

A clip's track is scored as one spatio-temporal mask: stacking its frames vertically turns the per-frame
intersections and unions into one image's, so COCOeval's mask IoU equals YouTube-VIS's track IoU.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval


class MaskAP:
    """Collect ground truth and scored predictions per image (or stacked clip), then ``compute()``."""

    def __init__(self, categories: list[str]) -> None:
        self.categories = list(categories)
        self.images: list[dict] = []
        self.gt: list[dict] = []
        self.pred: list[dict] = []

    def _rle(self, mask: np.ndarray) -> dict:
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        return rle

    def add(self, gt_masks, gt_labels, pred_masks, pred_labels, pred_scores) -> None:
        """Masks (N, H, W) bool, labels as category names; clips: stack frames first with ``stack_clip``."""
        image_id = len(self.images) + 1
        height, width = (
            (gt_masks[0].shape if len(gt_masks) else pred_masks[0].shape)
            if (len(gt_masks) or len(pred_masks))
            else (1, 1)
        )
        self.images.append({"id": image_id, "height": int(height), "width": int(width)})
        for mask, label in zip(gt_masks, gt_labels):
            rle = self._rle(mask)
            self.gt.append(
                {
                    "id": len(self.gt) + 1,
                    "image_id": image_id,
                    "category_id": self.categories.index(label) + 1,
                    "segmentation": rle,
                    "area": float(mask.sum()),
                    "iscrowd": 0,
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                }
            )
        for mask, label, score in zip(pred_masks, pred_labels, pred_scores):
            self.pred.append(
                {
                    "image_id": image_id,
                    "category_id": self.categories.index(label) + 1,
                    "segmentation": self._rle(mask),
                    "score": float(score),
                }
            )

    def compute(self) -> dict[str, float]:
        """AP (IoU .50:.95), AP50 and AP75, as COCOeval reports them; NaN when there is no ground truth."""
        if not self.gt:
            return {"AP": float("nan"), "AP50": float("nan"), "AP75": float("nan")}
        if not self.pred:
            return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
        coco = COCO()
        coco.dataset = {
            "images": self.images,
            "annotations": self.gt,
            "categories": [{"id": k + 1, "name": n} for k, n in enumerate(self.categories)],
        }
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
            detections = coco.loadRes(self.pred)
            evaluator = COCOeval(coco, detections, iouType="segm")
            evaluator.params.maxDets = [1, 10, 100]
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        stats = [max(0.0, float(v)) for v in evaluator.stats[:3]]  # COCOeval writes -1 where undefined
        return {"AP": stats[0], "AP50": stats[1], "AP75": stats[2]}


def stack_clip(frame_masks: list[np.ndarray]) -> np.ndarray:
    """(T, N, H, W) per-frame masks -> (N, T*H, W) spatio-temporal masks."""
    stacked = np.stack(frame_masks)  # (T, N, H, W)
    t, n, h, w = stacked.shape
    return stacked.transpose(1, 0, 2, 3).reshape(n, t * h, w)
