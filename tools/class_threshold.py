"""Pick the class-prompt score thresholds on the val split: semantic (mIoU) and panoptic (PQ).

    python tools/class_threshold.py --checkpoint runs/lite/checkpoint --samples 100 --write

Class prompts drop weak evidence: in semantic mode a pixel whose best class evidence sum_q p(k|q) p(pixel|q) is
below ``config.semantic_threshold`` stays unlabelled, in instance / panoptic mode a candidate segment scoring below
``config.segment_threshold`` is dropped. Both default to 0.5, a guess that suits confident models; a checkpoint
whose true-class scores sit lower loses correct segments to it. This runs the model once per val sample, replays
each candidate threshold on the kept outputs through the evaluation's own metric code (so the figures are the ones
``hyperseg_lite.evaluate`` would print), and prints a table per mode. Val only: the test split stays unseen until
the thresholds are written into the checkpoint's config (``--write``: its ``config.json`` gets the best values,
which ``tools/ship_checkpoint.py`` then carries into ``assets/``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.tasks import evaluate_panoptic, evaluate_semantic
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import Candidates, HyperSegPipeline, HyperSegPredictor
from hyperseg_lite.pipeline.answers import class_answer
from hyperseg_lite.pipeline.inputs import check_class_names

CANDIDATES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8)


class ReplayingPipeline:
    """Answers ``segment_classes`` like the pipeline at a fixed threshold, running the model once per input.

    The evaluation loops only call ``segment_classes``; caching the candidate masks and scores by image and
    class list lets every threshold be scored on the same model outputs in a fraction of the time.
    """

    def __init__(self, pipe: HyperSegPipeline):
        self.pipe = pipe
        self.predictor = HyperSegPredictor(pipe)
        self.threshold = 0.5
        self.cache: dict[str, Candidates] = {}

    def segment_classes(self, image, class_names, mode: str = "panoptic", stuff=(), threshold=None):
        key = hashlib.sha1(np.ascontiguousarray(image).tobytes() + repr((mode, list(class_names))).encode()).hexdigest()
        if key not in self.cache:
            names = check_class_names(class_names, self.pipe.processor.check_text)
            self.cache[key] = self.predictor.predict(class_names=names, mode=mode, image=self.predictor.encode(image))
        return class_answer(self.cache[key], mode, set(stuff), self.threshold)


@torch.inference_mode()
def sweep(pipe: HyperSegPipeline, world: World, samples: int, candidates=CANDIDATES) -> dict[str, list[dict]]:
    """{"semantic": [{threshold, mIoU}], "panoptic": [{threshold, PQ, SQ, RQ}]} over ``candidates``."""
    replaying = ReplayingPipeline(pipe)
    report: dict[str, list[dict]] = {"semantic": [], "panoptic": []}
    for threshold in candidates:
        replaying.threshold = threshold
        report["semantic"].append({"threshold": threshold, **evaluate_semantic(replaying, world, samples)})
        report["panoptic"].append({"threshold": threshold, **evaluate_panoptic(replaying, world, samples)})
    return report


def best(rows: list[dict], metric: str) -> float:
    return max(rows, key=lambda r: r[metric])["threshold"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", type=float, nargs="+", default=CANDIDATES, help="thresholds to replay")
    parser.add_argument("--json", default=None)
    parser.add_argument("--write", action="store_true", help="store the best values in the checkpoint's config.json")
    args = parser.parse_args(argv)
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint)
    config = pipe.model.config
    world = World("val", args.seed, image_size=config.image_size)
    report = sweep(pipe, world, args.samples, tuple(args.candidates))
    print(
        f"val seed {args.seed}, {args.samples} samples per mode; checkpoint's thresholds: semantic "
        f"{config.semantic_threshold}, segment {config.segment_threshold}"
    )
    print("| threshold | semantic mIoU | PQ | SQ | RQ |\n|---|---|---|---|---|")
    for sem, pan in zip(report["semantic"], report["panoptic"]):
        print(f"| {sem['threshold']:.2f} | {sem['mIoU']:.3f} | {pan['PQ']:.3f} | {pan['SQ']:.3f} | {pan['RQ']:.3f} |")
    report["best"] = {
        "semantic_threshold": best(report["semantic"], "mIoU"),
        "segment_threshold": best(report["panoptic"], "PQ"),
    }
    print(f"best on val: {report['best']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    if args.write:
        write_thresholds(Path(args.checkpoint), report["best"])
    return report


def write_thresholds(checkpoint: Path, values: dict[str, float]) -> None:
    """Set these keys of ``config.json``, leaving the rest as training wrote it."""
    path = checkpoint / "config.json"
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    print(f"wrote {values} to {path}")


if __name__ == "__main__":
    main()
