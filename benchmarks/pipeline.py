"""Per-task latency of the pipeline, end to end (image decode excluded, pre/post-processing included).

    python benchmarks/pipeline.py --preset lite            # random weights of the lite configuration
    python benchmarks/pipeline.py --checkpoint PATH        # a trained checkpoint

Image tasks on a 256x256 image; video tasks report the time per frame over an 8-frame clip.
Median of ``--runs`` after one warm-up. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.pipeline import HyperSegPipeline, Region


def timed(fn, runs: int, per: int = 1) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) / per)
    return 1000 * statistics.median(times)


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
    tasks = {
        "referring (1 expression)": lambda: pipe.refer(image, "the small red star left of the blue ring"),
        "reasoning (mask only)": lambda: pipe.reason(image, "which object could roll?"),
        "panoptic (8 classes)": lambda: pipe.segment_classes(image, names, mode="panoptic"),
        "semantic (8 classes)": lambda: pipe.segment_classes(image, names, mode="semantic"),
        "instance (8 classes)": lambda: pipe.segment_classes(image, names, mode="instance"),
        "interactive (1 click)": lambda: pipe.interactive(image, Region(points=[[100, 120]])),
        "interactive (1 box)": lambda: pipe.interactive(image, Region(box=[40, 40, 160, 200])),
    }
    video_tasks = {
        "video object tracking, per frame": lambda: pipe.track(clip, Region(box=[40, 40, 160, 200])),
        "referring video, per frame": lambda: pipe.refer_video(clip, "the moving star"),
        "video instances (8 classes), per frame": lambda: pipe.video_instances(clip, names),
    }
    print(f"model: {loaded.describe()} | {torch.get_num_threads()} threads | image {args.size}x{args.size}")
    print("| task | median latency (ms) |")
    print("|---|---|")
    with torch.inference_mode():
        for name, fn in tasks.items():
            print(f"| {name} | {timed(fn, args.runs):.0f} |")
        for name, fn in video_tasks.items():
            ms = timed(fn, max(1, args.runs // 3), per=len(clip))
            print(f"| {name} | {ms:.0f} ({1000 / ms:.1f} frames/s) |")


if __name__ == "__main__":
    main()
