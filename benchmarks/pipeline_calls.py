"""What the pipeline benchmarks share: the calls they time, and timing them in turns.

A shared machine's speed drifts by 30% or more within a minute, so every benchmark here times its calls (and,
in an A/B, its variants) in turns, round by round, in one process, and reports medians: the drift then falls on
all of them alike instead of on whichever ran during a slow spell.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, contextmanager, nullcontext

import numpy as np
import torch

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.pipeline import HyperSegPipeline, Region

CLASS_NAMES = ["circle", "square", "triangle", "star", "heart", "ring", "sky", "grass"]
# a first prompt on a new image (encoded inside the call) -> the same kind of prompt asked again about that image,
# already encoded (``pipe.encode``): what the interactive tab's next click and a second expression cost
SECOND_PROMPTS = {
    "referring (1 expression)": "referring, 2nd expression on the encoded image",
    "interactive (1 click)": "interactive, 2nd click on the encoded image",
}


def ab_setup(description: str, rounds: int = 6):
    """The command line of an A/B benchmark (``--preset``, ``--checkpoint``, ``--rounds``) -> (args, the loaded
    model, its pipeline)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--rounds", type=int, default=rounds)
    args = parser.parse_args()
    loaded = load_model(args.checkpoint) if args.checkpoint else build_random_model(args.preset)
    return args, loaded, HyperSegPipeline(loaded)


def pipeline_calls(
    pipe: HyperSegPipeline, names: Iterable[str] | None = None, size: int = 256, frames: int = 8
) -> dict[str, tuple[Callable[[], object], int]]:
    """name -> (call, frames per call) on a random ``size`` x ``size`` image and a ``frames``-frame clip of it;
    ``names`` picks some (all by default), in this order."""
    rng = np.random.default_rng(0)
    image = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    clip = [np.roll(image, 3 * i, axis=1) for i in range(frames)]
    box = Region(box=[40, 40, 160, 200])
    # the image encoded once (pipe.encode) per kind of second prompt, on first use, and asked one prompt of that kind
    # (the interactive tab's earlier click, an earlier expression): later prompts about it skip the image side, and
    # the LLM's state kept from the earlier prompt (``reuse_prefix``) is what a real next prompt finds
    encoded = {}
    # a new expression each time: a repeated one would share its whole prompt with the one before
    expressions = itertools.cycle(["the large blue ring below the star", "the green triangle next to the circle"])

    def on_encoded(kind: str):
        if kind not in encoded:
            encoded[kind] = pipe.encode(image)
            if kind == "click":
                pipe.interactive(encoded[kind], Region(points=[[100, 120]]))
            else:
                pipe.refer(encoded[kind], "the small red star left of the blue ring")
        return encoded[kind]

    calls = {
        "referring (1 expression)": (lambda: pipe.refer(image, "the small red star left of the blue ring"), 1),
        "reasoning (mask only)": (lambda: pipe.reason(image, "which object could roll?"), 1),
        "panoptic (8 classes)": (lambda: pipe.segment_classes(image, CLASS_NAMES, mode="panoptic"), 1),
        "semantic (8 classes)": (lambda: pipe.segment_classes(image, CLASS_NAMES, mode="semantic"), 1),
        "instance (8 classes)": (lambda: pipe.segment_classes(image, CLASS_NAMES, mode="instance"), 1),
        "class-free naming (describe)": (lambda: pipe.describe(image), 1),
        "interactive (1 click)": (lambda: pipe.interactive(image, Region(points=[[100, 120]])), 1),
        "interactive (1 box)": (lambda: pipe.interactive(image, box), 1),
        SECOND_PROMPTS["referring (1 expression)"]: (
            lambda: pipe.refer(on_encoded("expression"), next(expressions)),
            1,
        ),
        SECOND_PROMPTS["interactive (1 click)"]: (
            lambda: pipe.interactive(on_encoded("click"), Region(points=[[60, 90]])),
            1,
        ),
        "video object tracking, per frame": (lambda: pipe.track(clip, box), frames),
        "referring video, per frame": (lambda: pipe.refer_video(clip, "the moving star"), frames),
        "video instances (8 classes), per frame": (lambda: pipe.video_instances(clip, CLASS_NAMES), frames),
    }
    return calls if names is None else {name: calls[name] for name in names}


def in_turns(
    calls: dict[str, tuple[Callable[[], object], int]],
    rounds: int,
    variants: dict[str, Callable[[], AbstractContextManager]] | None = None,
) -> dict[tuple[str, str], float]:
    """Median ms per call (per frame for clips) of every (call, variant), after one warm-up of each.

    ``variants``: name -> a context manager factory under which a call runs in that variant (one plain variant,
    "", by default); within a round every call runs under every variant, the variants' order flipped each round.
    """
    variants = variants or {"": nullcontext}
    order = list(variants)
    for fn, _ in calls.values():
        for variant in order:
            with variants[variant]():
                fn()
    times = {(name, variant): [] for name in calls for variant in order}
    for round_ in range(rounds):
        for name, (fn, per) in calls.items():
            for variant in order if round_ % 2 == 0 else order[::-1]:
                with variants[variant]():
                    start = time.perf_counter()
                    fn()
                    times[(name, variant)].append(1000 * (time.perf_counter() - start) / per)
    return {key: statistics.median(values) for key, values in times.items()}


def print_ab_table(
    title: str, header: tuple[str, str], medians: dict[tuple[str, str], float], names: Iterable[str]
) -> None:
    """A markdown table of two variants' medians (``header`` = their names) and what the second saves."""
    first, second = header
    print(f"\n{title}\n| call | {first} (ms) | {second} (ms) | saved |\n|---|---|---|---|")
    for name in names:
        a, b = medians[(name, first)], medians[(name, second)]
        print(f"| {name} | {a:.1f} | {b:.1f} | {100 * (a - b) / a:.0f}% |")


def with_attribute(owner: object, name: str, value: object) -> Callable[[], AbstractContextManager]:
    """A variant for :func:`in_turns`: ``owner.<name>`` set to ``value`` while a call runs, restored after."""

    @contextmanager
    def use():
        before = getattr(owner, name)
        setattr(owner, name, value)
        try:
            yield
        finally:
            setattr(owner, name, before)

    return use


def time_two_variants(args, loaded, pipe: HyperSegPipeline, names: list[str], variants: dict) -> dict:
    """Time the calls ``names`` under both ``variants`` in turns (``args.rounds``), print the model line and
    the A/B table, and return the medians."""
    with torch.inference_mode():
        medians = in_turns(pipeline_calls(pipe, names), args.rounds, variants)
    print(f"model: {loaded.describe()} | {torch.get_num_threads()} threads | {args.rounds} rounds")
    print_ab_table("", tuple(variants), medians, names)
    return medians
