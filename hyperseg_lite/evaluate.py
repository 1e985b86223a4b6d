"""Measure a checkpoint on a split of the world with the paper's metrics, task by task.

    python -m hyperseg_lite.evaluate --checkpoint assets/hyperseg-lite --split test --seed 0 --json test.json
    python -m hyperseg_lite.evaluate --split compositional --tasks referring reasoning --samples 50
    python -m hyperseg_lite.evaluate --tasks describe --naming-samples 0    # naming from the greedy list alone

The split is generated from ``--seed`` (nothing is downloaded); every task runs through ``HyperSegPipeline``, so
the numbers are what users get. Prints a table and, with ``--json``, writes every metric and the settings.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from .data.world import World
from .evaluation.tasks import EVALUATORS, evaluate_task
from .loading import EMBEDDED_CHECKPOINT
from .tasks import REGISTRY, VIDEO_TASKS

HEADLINE = {task.name: task.metric for task in REGISTRY}  # each task's metric, as the paper's tables report it


def run(
    checkpoint,
    split: str = "test",
    seed: int = 0,
    tasks=tuple(EVALUATORS),
    samples: int = 100,
    video_samples: int = 20,
    clip_length: tuple[int, int] = (8, 16),
    precision: str = "fp32",
    device: str | None = None,
    naming_samples: int | None = None,
) -> dict:
    from .pipeline import HyperSegPipeline

    options = {} if naming_samples is None else {"naming_samples": naming_samples}
    pipe = HyperSegPipeline.from_pretrained(str(checkpoint), precision=precision, device_map=device, **options)
    world = World(split, seed, image_size=pipe.model.config.image_size, clip_length=tuple(clip_length))
    report = {
        "checkpoint": str(checkpoint),
        "split": split,
        "seed": seed,
        "precision": precision,
        "device": str(pipe.model.device),
        "torch_threads": torch.get_num_threads(),
        "naming_samples": pipe.naming_samples,
        "tasks": {},
    }
    for task in tasks:
        began = time.perf_counter()
        metrics = evaluate_task(pipe, world, task, video_samples if task in VIDEO_TASKS else samples)
        metrics["seconds"] = round(time.perf_counter() - began, 1)
        report["tasks"][task] = metrics
        print(f"{task:16s} " + "  ".join(f"{k}={_fmt(v)}" for k, v in metrics.items()), flush=True)
    return report


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) and not math.isnan(value) and value != int(value) else str(value)


def table(report: dict) -> str:
    lines = ["| task | metric | value | samples | seconds |", "|---|---|---|---|---|"]
    for task, metrics in report["tasks"].items():
        key = HEADLINE[task]
        lines.append(f"| {task} | {key} | {metrics[key]:.3f} | {metrics['samples']} | {metrics['seconds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint", default=str(EMBEDDED_CHECKPOINT), help="our folder, an official one, or a hub id"
    )
    parser.add_argument("--split", default="test", choices=["val", "test", "compositional"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="+", default=list(EVALUATORS), choices=list(EVALUATORS))
    parser.add_argument("--samples", type=int, default=100, help="samples per image task")
    parser.add_argument("--video-samples", type=int, default=20, help="clips per video task")
    parser.add_argument("--clip-length", type=int, nargs=2, default=(8, 16), metavar=("MIN", "MAX"))
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the loader's choice)")
    parser.add_argument(
        "--naming-samples", type=int, default=None, help="lists sampled for describe (default: the pipeline's)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the full report here")
    args = parser.parse_args(argv)
    report = run(
        args.checkpoint,
        args.split,
        args.seed,
        args.tasks,
        args.samples,
        args.video_samples,
        args.clip_length,
        args.precision,
        args.device,
        args.naming_samples,
    )
    print()
    print(table(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
