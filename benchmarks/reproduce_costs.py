"""Per-sample cost of each paper benchmark's protocol, as ``hyperseg_lite.benchmark`` runs it (pipeline call +
scoring), on synthetic inputs of the benchmark's real size and class count. docs/reproduce.md scales these.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/reproduce_costs.py         # the embedded model, CPU
    python benchmarks/reproduce_costs.py --checkpoint weic22/HyperSeg-3B        # on a GPU machine

Median of ``--runs`` rounds after one warm-up, every benchmark once per round (a shared machine's speed drifts;
taking turns spreads the drift over all rows). Video rows are per frame.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from hyperseg_lite.benchmarks_data import scoring
from hyperseg_lite.pipeline import HyperSegPipeline, Region


def scene(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A picture with a few rectangles, and the mask of the first (the 'answer')."""
    rng = np.random.default_rng(seed)
    image = rng.integers(60, 200, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), bool)
    for k in range(4):
        y, x = rng.integers(0, height // 2), rng.integers(0, width // 2)
        image[y : y + height // 3, x : x + width // 3] = rng.integers(0, 255, 3)
        if k == 0:
            mask[y : y + height // 3, x : x + width // 3] = True
    return image, mask


def names(count: int) -> list[str]:
    return [f"object kind {k}" for k in range(count)]  # ~14 characters, as COCO / ADE names with synonyms


def calls(pipe: HyperSegPipeline) -> dict[str, callable]:
    coco, coco_gt = scene(480, 640, 0)
    reason, reason_gt = scene(768, 1024, 1)
    ade, ade_gt = scene(512, 683, 2)
    pc, pc_gt = scene(375, 500, 3)
    davis = [scene(480, 854, 10 + t)[0] for t in range(4)]
    ytvos = [scene(720, 1280, 20 + t)[0] for t in range(4)]
    coco_names, things = names(133), set(range(1, 81))
    stuffs = set(range(81, 134))

    def referring():
        scoring.text_record(pipe.refer(coco, "the man in the red shirt on the left").union(), coco_gt)

    def reasoning():
        scoring.text_record(pipe.reason(reason, "what in this room could keep food cold?").union(), reason_gt)

    def panoptic():
        result = pipe.segment_classes(coco, coco_names, mode="panoptic", stuff=coco_names[80:])
        pred = np.zeros((480, 640, 2), np.int64)
        pred[..., 0] = scoring.UNLABELLED
        for mask, label, seg in zip(result.masks, result.labels, result.ids):
            pred[mask] = (coco_names.index(label) + 1, seg)
        target = np.zeros_like(pred)
        target[coco_gt] = (1, 1)
        scoring.panoptic_record(pred, target, things, stuffs)

    def semantic(image, gt, count):
        def call():
            result = pipe.segment_classes(image, names(count), mode="semantic")
            pred = np.full(gt.shape, -1)
            for mask, label in zip(result.masks, result.labels):
                pred[mask] = int(label.rsplit(" ", 1)[1])
            scoring.class_iou_record(pred, gt.astype(int), list(range(count)))

        return call

    def vos():  # per frame: DAVIS-2017 480p, two objects
        first = [scene(480, 854, 10)[1], ~scene(480, 854, 10)[1]]
        meters = [scoring.JFMeter(), scoring.JFMeter()]
        for result in pipe.track_stream(davis, [Region(mask=m) for m in first]):
            for k, meter in enumerate(meters):
                meter.add(result.masks[k], first[k])
        return len(davis)

    def refvos():  # per frame: Ref-YouTube-VOS 720p
        meter = scoring.JFMeter()
        for result in pipe.refer_video_stream(ytvos, "a person riding a bike to the left"):
            meter.add(result.union(), scene(720, 1280, 20)[1])
        return len(ytvos)

    return {
        "RefCOCO-style referring (640x480)": referring,
        "ReasonSeg reasoning (1024x768)": reasoning,
        "COCO panoptic, 133 classes (640x480)": panoptic,
        "ADE20K semantic, 150 classes (683x512)": semantic(ade, ade_gt, 150),
        "PASCAL-Context semantic, 59 classes (500x375)": semantic(pc, pc_gt, 59),
        "DAVIS-2017 VOS, 2 objects, per frame (854x480)": vos,
        "Ref-YouTube-VOS, per frame (1280x720)": refvos,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="default: the embedded model")
    parser.add_argument("--precision", default=None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint, precision=args.precision)
    table = calls(pipe)
    wall = {name: [] for name in table}
    cpu = {name: [] for name in table}
    for round_ in range(args.runs + 1):
        for name, call in table.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            frames = call() or 1
            if round_:  # round 0 warms up
                wall[name].append((time.perf_counter() - began) / frames)
                cpu[name].append((time.process_time() - began_cpu) / frames)
    # CPU time: what the work costs on a free core; wall time also holds the waits of a busy, shared machine
    print(
        f"device {pipe.device}, torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, "
        f"median of {args.runs} rounds\n"
    )
    print("| benchmark protocol | wall s / sample | CPU s / sample |\n|---|---|---|")
    for name in table:
        print(f"| {name} | {statistics.median(wall[name]):.3f} | {statistics.median(cpu[name]):.3f} |")


if __name__ == "__main__":
    main()
