"""Pick the referring score threshold on the val split: below it the answer is "no such object".

    python research/tools/referring_threshold.py --checkpoint assets/hyperseg-lite --samples 300

The pipeline answers a referring query with its best mask when score = sigmoid(prompt logit) x mask quality
reaches the threshold, and with an empty answer otherwise (gRefCOCO's no-target case). This asks every val sample
once at threshold 0, keeps (score, mask), and replays each candidate threshold offline, printing cIoU, gIoU,
no-target accuracy and target accuracy. Val only: the test split stays unseen until the choice is made.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.mask_metrics import IoUAccumulator
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline

CANDIDATES = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def collect(pipe, world: World, samples: int) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(score, predicted mask, ground truth) per sample; an empty mask gets score 0 (never kept)."""
    rows = []
    for index in range(samples):
        sample = world.sample("referring", index)
        size = sample.image.shape[:2]
        result = pipe.refer(sample.image, sample.expression, threshold=0.0)
        pred = result.union() if len(result) else np.zeros(size, bool)
        score = float(result.scores[0]) if len(result) else 0.0
        gt = sample.masks.any(0) if len(sample.masks) else np.zeros(size, bool)
        rows.append((score, pred, gt))
    return rows


def replay(rows, threshold: float) -> dict[str, float]:
    scores, found = IoUAccumulator(), []
    for score, pred, gt in rows:
        kept = pred if score >= threshold else np.zeros_like(pred)
        scores.add(kept, gt)
        if gt.any():
            found.append(bool(kept.any()))
    return {
        "threshold": threshold,
        "cIoU": scores.ciou,
        "gIoU": scores.giou,
        "no_target_accuracy": scores.no_target_accuracy,
        "target_accuracy": float(np.mean(found)),
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint)
    world = World("val", args.seed, image_size=pipe.model.config.image_size)
    rows = collect(pipe, world, args.samples)
    no_target = sum(not gt.any() for _, _, gt in rows)
    print(f"val seed {args.seed}: {len(rows)} samples, {no_target} without a target")
    report = [replay(rows, t) for t in CANDIDATES]
    print("| threshold | cIoU | gIoU | no-target acc | target acc |\n|---|---|---|---|---|")
    for r in report:
        print(
            f"| {r['threshold']:.2f} | {r['cIoU']:.3f} | {r['gIoU']:.3f} | {r['no_target_accuracy']:.3f} | "
            f"{r['target_accuracy']:.3f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
