"""How fast the procedural world draws training data, per task (issue: the embedded model).

Training on a CPU interleaves drawing samples with optimisation steps, so drawing must stay a small part of a
step (about 0.85 s for batch 4 on 2 cores). Prints a markdown table: milliseconds per scene and per sample of
each task (median over ``--samples`` draws after one warm-up draw that loads the texture photos).

    python benchmarks/world.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from hyperseg_lite.data.scene import generate_scene
from hyperseg_lite.data.world import TASKS, World


def median_ms(draw, count: int) -> float:
    times = []
    for index in range(count):
        start = time.perf_counter()
        draw(index)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    generate_scene(rng)  # loads the photos once
    world = World("train", seed=0)
    print(f"median of {args.samples} draws, 256-px images, video clips of 8-16 frames")
    print("| what | ms per draw |\n|---|---|")
    print(f"| one scene | {median_ms(lambda _: generate_scene(rng), args.samples):.1f} |")
    for task in TASKS:
        world.sample(task, 10_000)  # warm-up
        print(f"| {task} sample | {median_ms(lambda i, task=task: world.sample(task, i), args.samples):.1f} |")


if __name__ == "__main__":
    main()
