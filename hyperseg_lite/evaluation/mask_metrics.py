"""Mask metrics as the referring / video benchmarks define them.

* ``jaccard``: region similarity J (IoU); two empty masks agree perfectly (DAVIS convention).
* ``boundary_f_measure``: DAVIS's contour accuracy F, boundaries matched within 0.8 % of the image diagonal.
* ``IoUAccumulator``: cIoU (cumulative intersection over cumulative union) and gIoU (mean per-sample IoU, an
  empty prediction on a no-target sample counting as 1, as gRefCOCO scores it).
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    pred, gt = pred.astype(bool), gt.astype(bool)
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def _boundary(mask: np.ndarray) -> np.ndarray:
    mask = mask.astype(np.uint8)
    return (mask - cv2.erode(mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)) > 0


def boundary_f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    pred_b, gt_b = _boundary(pred), _boundary(gt)
    if not pred_b.any() and not gt_b.any():
        return 1.0
    if not pred_b.any() or not gt_b.any():
        return 0.0
    radius = max(1, math.ceil(bound_th * math.hypot(*pred.shape)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    gt_zone = cv2.dilate(gt_b.astype(np.uint8), disk) > 0
    pred_zone = cv2.dilate(pred_b.astype(np.uint8), disk) > 0
    precision = float((pred_b & gt_zone).sum() / pred_b.sum())
    recall = float((gt_b & pred_zone).sum() / gt_b.sum())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


class IoUAccumulator:
    """cIoU / gIoU over samples, plus no-target accuracy for samples whose answer is empty."""

    def __init__(self) -> None:
        self.intersection = 0
        self.union = 0
        self.per_sample: list[float] = []
        self.no_target_hits: list[bool] = []

    def add(self, pred: np.ndarray, gt: np.ndarray) -> float:
        pred, gt = pred.astype(bool), gt.astype(bool)
        self.intersection += int(np.logical_and(pred, gt).sum())
        self.union += int(np.logical_or(pred, gt).sum())
        if not gt.any():
            self.no_target_hits.append(not pred.any())
        iou = jaccard(pred, gt)
        self.per_sample.append(iou)
        return iou

    @property
    def ciou(self) -> float:
        return self.intersection / self.union if self.union else 1.0

    @property
    def giou(self) -> float:
        return float(np.mean(self.per_sample)) if self.per_sample else float("nan")

    @property
    def no_target_accuracy(self) -> float:
        return float(np.mean(self.no_target_hits)) if self.no_target_hits else float("nan")
