"""Per-sample records and their exact merge: what makes N processes score exactly like one.

Every sample is reduced to a small JSON record of the sums its metric needs (intersection and union pixels,
per-class PQ true / false positives and IoU sums, per-object J and F); a benchmark's score is computed once,
on rank 0, from all records in sample order. Global metrics are summed, never averaged across shards:
cIoU = sum I / sum U, mIoU from per-class sums, PQ from per-class TP / FP / FN / IoU sums. The metric code is
the world evaluation's (``hyperseg_lite.evaluation``): ``IoUAccumulator``, ``jaccard``,
``boundary_f_measure`` and torchmetrics' ``PanopticQuality`` with the same "unlabelled" convention.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.detection import PanopticQuality

from ..evaluation.mask_metrics import IoUAccumulator, boundary_f_measure, jaccard
from ..evaluation.tasks import UNLABELLED


# ---------------------------------------------------------------- referring / reasoning: cIoU, gIoU, N-acc, T-acc
def text_record(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> dict:
    """One referring / reasoning answer; ``ignore`` pixels (ReasonSeg) count on neither side."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    if ignore is not None:
        pred, gt = pred & ~ignore, gt & ~ignore
    return {
        "intersection": int(np.logical_and(pred, gt).sum()),
        "union": int(np.logical_or(pred, gt).sum()),
        "iou": jaccard(pred, gt),
        "gt_empty": not gt.any(),
        "pred_empty": not pred.any(),
    }


def text_metrics(records: list[dict]) -> dict:
    scores = IoUAccumulator()
    found_target = []
    for r in records:
        scores.intersection += r["intersection"]
        scores.union += r["union"]
        scores.per_sample.append(r["iou"])
        if r["gt_empty"]:
            scores.no_target_hits.append(r["pred_empty"])
        else:
            found_target.append(not r["pred_empty"])
    return {
        "cIoU": scores.ciou,
        "gIoU": scores.giou,
        "no_target_accuracy": scores.no_target_accuracy,
        "target_accuracy": float(np.mean(found_target)) if found_target else float("nan"),
        "samples": len(records),
    }


# ---------------------------------------------------------------- semantic: mIoU from per-class sums
def class_iou_record(pred: np.ndarray, gt: np.ndarray, classes: list, valid: np.ndarray | None = None) -> dict:
    """(H, W) class maps (any ids); per class in ``classes``, pixel intersection and union where ``valid``."""
    inter, union = {}, {}
    for c in classes:
        p, g = pred == c, gt == c
        if valid is not None:
            p, g = p & valid, g & valid
        u = int((p | g).sum())
        if u:
            inter[str(c)], union[str(c)] = int((p & g).sum()), u
    return {"class_intersection": inter, "class_union": union}


def miou(records: list[dict], classes: list) -> dict:
    inter = dict.fromkeys(map(str, classes), 0)
    union = dict.fromkeys(map(str, classes), 0)
    for r in records:
        for c, v in r["class_intersection"].items():
            inter[c] += v
        for c, v in r["class_union"].items():
            union[c] += v
    ious = [inter[str(c)] / union[str(c)] for c in classes if union[str(c)] > 0]
    return {"mIoU": float(np.mean(ious)) if ious else float("nan"), "samples": len(records)}


# ---------------------------------------------------------------- panoptic: PQ from per-class sums
def panoptic_metric(things: set[int], stuffs: set[int]) -> PanopticQuality:
    """torchmetrics' PQ as the world evaluation builds it: predicted empty pixels are the "unlabelled" stuff.

    ``sync_on_compute=False``: the records already hold every process's sums; torchmetrics must not add them
    again across processes."""
    return PanopticQuality(
        things=set(things),
        stuffs=set(stuffs) | {UNLABELLED},
        return_sq_and_rq=True,
        return_per_class=True,
        sync_on_compute=False,
    )


def panoptic_record(pred: np.ndarray, target: np.ndarray, things: set[int], stuffs: set[int]) -> dict:
    """(H, W, 2) category / segment id maps -> this sample's per-class PQ sums and the classes it shows."""
    metric = panoptic_metric(things, stuffs)
    metric.update(torch.from_numpy(pred)[None], torch.from_numpy(target)[None])
    seen = set(np.unique(target[..., 0]).tolist()) | set(np.unique(pred[..., 0]).tolist())
    return {
        "iou_sum": metric.iou_sum.tolist(),
        "tp": metric.true_positives.tolist(),
        "fp": metric.false_positives.tolist(),
        "fn": metric.false_negatives.tolist(),
        "seen": sorted(seen),
    }


def panoptic_quality(records: list[dict], things: set[int], stuffs: set[int]) -> dict:
    """PQ / SQ / RQ averaged over the classes with a segment on either side (as ``evaluate_panoptic``)."""
    metric = panoptic_metric(things, stuffs)
    iou_sum = torch.zeros_like(metric.iou_sum)
    counts = [torch.zeros_like(metric.true_positives) for _ in range(3)]
    seen: set[int] = set()
    for r in records:  # summed in sample order, as one metric updated sample by sample sums them
        iou_sum += torch.tensor(r["iou_sum"], dtype=iou_sum.dtype)
        for total, key in zip(counts, ("tp", "fp", "fn")):
            total += torch.tensor(r[key], dtype=total.dtype)
        seen |= set(r["seen"])
    metric.iou_sum, metric.true_positives, metric.false_positives, metric.false_negatives = iou_sum, *counts
    metric._update_count = max(1, len(records))  # the states are set, not updated: no "compute before update"
    stuffs = set(stuffs) | {UNLABELLED}
    order = sorted(things) + sorted(stuffs)  # torchmetrics' row order: things, then stuffs, each sorted
    per_class = metric.compute().numpy()
    rows = [order.index(c) for c in sorted(seen - {0, UNLABELLED}) if c in order]
    pq, sq, rq = (float(v) for v in per_class[rows].mean(0)) if rows else (float("nan"),) * 3
    return {"PQ": pq, "SQ": sq, "RQ": rq, "samples": len(records)}


# ---------------------------------------------------------------- video: J, F, J&F over objects / expressions
class JFMeter:
    """Streams one object's frames: J and F per frame, kept as two running lists of floats."""

    def __init__(self) -> None:
        self.j: list[float] = []
        self.f: list[float] = []

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        self.j.append(jaccard(pred, gt))
        self.f.append(boundary_f_measure(pred, gt))

    def result(self) -> list[float]:
        return [float(np.mean(self.j)), float(np.mean(self.f))] if self.j else [float("nan"), float("nan")]


def video_metrics(records: list[dict]) -> dict:
    """J&F = (mean J + mean F) / 2 over objects (VOS) or expressions (referring video); per kind when labelled."""

    def summary(objects):
        js = [o[0] for o in objects]
        fs = [o[1] for o in objects]
        j, f = float(np.mean(js)) if js else float("nan"), float(np.mean(fs)) if fs else float("nan")
        return {"J&F": (j + f) / 2, "J": j, "F": f}

    everything = [o for r in records for o in r["objects"]]
    metrics = {**summary(everything), "samples": len(records)}
    kinds = sorted({r["kind"] for r in records if r.get("kind")})
    if len(kinds) > 1:
        for kind in kinds:
            for key, value in summary([o for r in records if r.get("kind") == kind for o in r["objects"]]).items():
                metrics[f"{key}_{kind}"] = value
    return metrics
