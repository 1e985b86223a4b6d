"""Per-task latency of the pipeline, end to end (image decode excluded, pre/post-processing included).

    python benchmarks/pipeline.py --preset lite            # random weights of the lite configuration
    python benchmarks/pipeline.py --checkpoint PATH        # a trained checkpoint

Image tasks on a 256x256 image; video tasks report the time per frame over an 8-frame clip.
Median of ``--runs`` rounds after one warm-up, every task once per round: a shared machine's speed drifts by 30%
or more within a minute, and interleaving spreads that drift over all tasks instead of charging it to whichever
task was running. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.pipeline import HyperSegPipeline, Region


def interleaved(tasks: dict[str, tuple[callable, int]], runs: int) -> dict[str, float]:
    """Median ms per call (per frame for clips) of every task, the tasks taking turns round by round."""
    for fn, _ in tasks.values():
        fn()  # warm-up
    times = {name: [] for name in tasks}
    for _ in range(runs):
        for name, (fn, per) in tasks.items():
            start = time.perf_counter()
            fn()
            times[name].append(1000 * (time.perf_counter() - start) / per)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    loaded = load_model(args.checkpoint) if args.checkpoint else build_random_model(args.preset)
    pipe = HyperSegPipeline(loaded)
    rng = np.random.default_rng(0)
    image = (rng.random((args.size, args.size, 3)) * 255).astype(np.uint8)
    clip = [np.roll(image, 3 * i, axis=1) for i in range(8)]
    names = ["circle", "square", "triangle", "star", "heart", "ring", "sky", "grass"]
    frames = len(clip)
    tasks = {
        "referring (1 expression)": (lambda: pipe.refer(image, "the small red star left of the blue ring"), 1),
        "reasoning (mask only)": (lambda: pipe.reason(image, "which object could roll?"), 1),
        "panoptic (8 classes)": (lambda: pipe.segment_classes(image, names, mode="panoptic"), 1),
        "semantic (8 classes)": (lambda: pipe.segment_classes(image, names, mode="semantic"), 1),
        "instance (8 classes)": (lambda: pipe.segment_classes(image, names, mode="instance"), 1),
        "interactive (1 click)": (lambda: pipe.interactive(image, Region(points=[[100, 120]])), 1),
        "interactive (1 box)": (lambda: pipe.interactive(image, Region(box=[40, 40, 160, 200])), 1),
        "video object tracking, per frame": (lambda: pipe.track(clip, Region(box=[40, 40, 160, 200])), frames),
        "referring video, per frame": (lambda: pipe.refer_video(clip, "the moving star"), frames),
        "video instances (8 classes), per frame": (lambda: pipe.video_instances(clip, names), frames),
    }
    with torch.inference_mode():
        medians = interleaved(tasks, args.runs)
    print(f"model: {loaded.describe()} | {torch.get_num_threads()} threads | image {args.size}x{args.size} | "
          f"{args.runs} rounds")
    print("| task | median latency (ms) |")
    print("|---|---|")
    for name, (_, per) in tasks.items():
        rate = f" ({1000 / medians[name]:.1f} frames/s)" if per > 1 else ""
        print(f"| {name} | {medians[name]:.0f}{rate} |")


if __name__ == "__main__":
    main()
