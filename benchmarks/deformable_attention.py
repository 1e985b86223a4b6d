"""What the gather form of deformable sampling saves on CPU, against the release's ``grid_sample`` form.

    python benchmarks/deformable_attention.py --checkpoint assets/hyperseg-lite

Two tables. The op alone (``deformable_sample_grid`` against ``deformable_sample_gather``) at the shapes of the
pixel decoder of the chosen model on a 256-px image, at inference and forward + backward (training); then the
pipeline with the model's deformable attention switched between the two. Both ways are timed alternately, call by
call, in one process, so that a shared machine's drift (30% or more between runs minutes apart here) falls on
both alike. Medians per call (per frame for the 8-frame clips).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager

import numpy as np
import torch

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.modeling import deformable_attention as deform
from hyperseg_lite.pipeline import HyperSegPipeline, Region

FORMS = {"grid_sample (the release)": deform.deformable_sample_grid,
         "gather (CPU default)": deform.deformable_sample_gather}


@contextmanager
def sampling(form):
    """Route the model's deformable attention through one form (``deformable_sample`` is read at call time)."""
    default = deform.deformable_sample
    deform.deformable_sample = form
    try:
        yield
    finally:
        deform.deformable_sample = default


def alternate(calls: dict[str, tuple[callable, int]], rounds: int) -> dict[tuple[str, str], float]:
    """Median ms per call of every (call, form), the forms alternating call by call (order flipped each round)."""
    times = {(name, form): [] for name in calls for form in FORMS}
    order = list(FORMS)
    for fn, _ in calls.values():
        for form in order:
            with sampling(FORMS[form]):
                fn()  # warm-up
    for round_ in range(rounds):
        for name, (fn, per) in calls.items():
            for form in (order if round_ % 2 == 0 else order[::-1]):
                with sampling(FORMS[form]):
                    start = time.perf_counter()
                    fn()
                    times[(name, form)].append(1000 * (time.perf_counter() - start) / per)
    return {key: statistics.median(values) for key, values in times.items()}


def print_table(title: str, medians: dict[tuple[str, str], float], names) -> None:
    grid, gather = FORMS
    print(f"\n{title}\n| call | {grid} (ms) | {gather} (ms) | saved |\n|---|---|---|---|")
    for name in names:
        a, b = medians[(name, grid)], medians[(name, gather)]
        print(f"| {name} | {a:.1f} | {b:.1f} | {100 * (a - b) / a:.0f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    loaded = load_model(args.checkpoint) if args.checkpoint else build_random_model(args.preset)
    pipe = HyperSegPipeline(loaded)
    attention = pipe.model.pixel_decoder.transformer.encoder.layers[0].self_attn
    heads, dim = attention.num_heads, attention.dim // attention.num_heads
    shapes = [(256 // s, 256 // s) for s in (32, 16, 8)]
    tokens = sum(h * w for h, w in shapes)
    gen = torch.Generator().manual_seed(0)
    value = torch.randn(1, tokens, heads, dim, generator=gen)
    locations = torch.rand(1, tokens, heads, len(shapes), attention.num_points, 2, generator=gen)
    weights = torch.rand(1, tokens, heads, len(shapes), attention.num_points, generator=gen).softmax(-1)

    def op() -> None:
        with torch.inference_mode():
            deform.deformable_sample(value, shapes, locations, weights)

    def op_training() -> None:
        inputs = [t.clone().requires_grad_() for t in (value, locations, weights)]
        deform.deformable_sample(inputs[0], shapes, inputs[1], inputs[2]).sum().backward()

    print(f"model: {loaded.describe()} | {torch.get_num_threads()} threads | {args.rounds} rounds")
    print_table(f"The op, {tokens} queries x {heads} heads x {len(shapes)} levels x {attention.num_points} points",
                alternate({"inference": (op, 1), "forward + backward": (op_training, 1)}, 3 * args.rounds),
                ["inference", "forward + backward"])

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
    print_table("The pipeline, 256x256 image", alternate(tasks, args.rounds), list(tasks))


if __name__ == "__main__":
    main()
