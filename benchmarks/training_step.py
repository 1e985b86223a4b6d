"""How long one training step takes, forward and backward, with the image encoders trained or frozen.

``python -m hyperseg_lite.train --freeze-vision`` holds the pyramid, the pixel decoder and the global tower fixed;
on a CPU most of a step's backward runs through them. This times the same batches both ways, taking turns step
by step (so the machine's drift falls on both alike), and prints a markdown table of mean seconds per step.

    python benchmarks/training_step.py --checkpoint assets/hyperseg-lite --task referring
"""

from __future__ import annotations

import argparse
import statistics
import time

from hyperseg_lite.data.world import TASKS, World
from hyperseg_lite.loading import load_model
from hyperseg_lite.train import freeze_vision, training_step


def timed_step(loaded, samples) -> tuple[float, float]:
    """(forward seconds, backward seconds) of one step; gradients are dropped afterwards."""
    start = time.perf_counter()
    loss, _ = training_step(loaded, samples, "cpu", "both")
    middle = time.perf_counter()
    loss.backward()
    end = time.perf_counter()
    loaded.model.zero_grad(set_to_none=True)
    return middle - start, end - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="assets/hyperseg-lite")
    parser.add_argument("--task", default="referring", choices=TASKS)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6, help="timed steps each way, after one warm-up step each")
    args = parser.parse_args()
    models = {
        "trained": load_model(args.checkpoint, precision="fp32", device_map="cpu"),
        "frozen": load_model(args.checkpoint, precision="fp32", device_map="cpu"),
    }
    for loaded in models.values():
        loaded.model.train()
    freeze_vision(models["frozen"].model)
    world = World("train", 0, image_size=models["frozen"].model.config.image_size, clip_length=(2, 2))
    times = {name: [] for name in models}
    for step in range(args.steps + 1):
        samples = [world.sample(args.task, step * args.batch_size + i) for i in range(args.batch_size)]
        for name, loaded in models.items():
            measured = timed_step(loaded, samples)
            if step:  # the first step of each warms up
                times[name].append(measured)
    print(f"{args.task}, batch {args.batch_size}, mean of {args.steps} steps each way")
    print("| image encoders | forward (s) | backward (s) | step (s) |\n|---|---|---|---|")
    for name, rows in times.items():
        forward, backward = statistics.mean(r[0] for r in rows), statistics.mean(r[1] for r in rows)
        print(f"| {name} | {forward:.2f} | {backward:.2f} | {forward + backward:.2f} |")


if __name__ == "__main__":
    main()
