"""What scoring the prompts after the last decoder layer only saves the pipeline (``segment(aux_scores=False)``).

    python benchmarks/last_layer_scores.py --checkpoint assets/hyperseg-lite

The earlier decoder layers' prompt scores (and their mask-shape embeddings) feed only the auxiliary training
losses; the pipeline leaves them out, with the same masks and scores (``tests/test_mask_shape.py``). The two
ways are timed alternately, call by call, in one process, so that a shared machine's drift (30% or more between
runs minutes apart here) falls on both alike. Prints the median per call (per frame for the 8-frame clips).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.pipeline import HyperSegPipeline, Region


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    loaded = load_model(args.checkpoint) if args.checkpoint else build_random_model(args.preset)
    pipe = HyperSegPipeline(loaded)
    rng = np.random.default_rng(0)
    image = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    clip = [np.roll(image, 3 * i, axis=1) for i in range(8)]
    names = ["circle", "square", "triangle", "star", "heart", "ring", "sky", "grass"]
    tasks = {
        "referring (1 expression)": (lambda: pipe.refer(image, "the small red star left of the blue ring"), 1),
        "semantic (8 classes)": (lambda: pipe.segment_classes(image, names, mode="semantic"), 1),
        "video object tracking, per frame": (lambda: pipe.track(clip, Region(box=[40, 40, 160, 200])), len(clip)),
        "referring video, per frame": (lambda: pipe.refer_video(clip, "the moving star"), len(clip)),
        "video instances (8 classes), per frame": (lambda: pipe.video_instances(clip, names), len(clip)),
    }
    segment = pipe.model.segment

    def use(aux_scores: bool) -> None:
        pipe.model.segment = lambda *a, **k: segment(*a, **{**k, "aux_scores": aux_scores})

    times = {(name, every): [] for name in tasks for every in (True, False)}
    with torch.inference_mode():
        for fn, _ in tasks.values():
            fn()  # warm-up
        for round_ in range(args.rounds):
            for name, (fn, per) in tasks.items():
                for every in ((True, False) if round_ % 2 == 0 else (False, True)):
                    use(every)
                    start = time.perf_counter()
                    fn()
                    times[(name, every)].append(1000 * (time.perf_counter() - start) / per)
    pipe.model.segment = segment
    print(f"model: {loaded.describe()} | {torch.get_num_threads()} threads | {args.rounds} rounds")
    print("| task | every layer scored (ms) | last layer only, the pipeline (ms) | saved |")
    print("|---|---|---|---|")
    for name in tasks:
        every, last = statistics.median(times[(name, True)]), statistics.median(times[(name, False)])
        print(f"| {name} | {every:.0f} | {last:.0f} | {100 * (every - last) / every:.0f}% |")


if __name__ == "__main__":
    main()
