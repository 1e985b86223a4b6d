"""Pick a checkpoint's edge refinement on the val split: the guided filter's window and eps (or none).

    python tools/edge_refinement.py --checkpoint C --seeds 0 1 --samples 49 --write

Every mask the pipeline returns can have its edges moved onto the image's own (``pipeline/edge_refinement.py``):
a colour guided filter on the mask probabilities, whose window side (pixels of the model's input frame) and eps
belong to the checkpoint (``config.edge_refinement_size`` / ``edge_refinement_eps``; size 0 = the release's
masks). This scores each candidate setting with the evaluation's own task code on val: one-click and box mIoU,
referring cIoU, semantic mIoU, PQ and instance AP, and picks the setting with the best mean of those six over the
seeds (the setting "0" is the unrefined masks, so a checkpoint it does not help keeps them). Val only: the test
split stays unseen until ``--write`` stores the pick in the checkpoint's ``config.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hyperseg_lite.checkpoints import update_config
from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.tasks import (
    evaluate_instance,
    evaluate_interactive,
    evaluate_panoptic,
    evaluate_referring,
    evaluate_semantic,
)
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline

# window sides (0 = off) and eps tried by default: 2026-12-07's sweep on lite2 (docs/research/choices.md)
SIZES = (0, 13, 25, 33, 49)
EPS = (1e-4, 1e-3)
# the figure each task contributes to the pick
METRICS = (
    ("interactive", "mIoU_click"),
    ("interactive", "mIoU_box"),
    ("referring", "cIoU"),
    ("semantic", "mIoU"),
    ("panoptic", "PQ"),
    ("instance", "AP"),
)
EVALUATORS = {
    "interactive": evaluate_interactive,
    "referring": evaluate_referring,
    "semantic": evaluate_semantic,
    "panoptic": evaluate_panoptic,
    "instance": evaluate_instance,
}


def settings(sizes, eps_values) -> list[tuple[int, float]]:
    """Every (size, eps) pair, with the unrefined masks once (size 0)."""
    rows = [(0, 0.0)] if 0 in sizes else []
    return rows + [(size, eps) for size in sizes if size for eps in eps_values]


def sweep(pipe: HyperSegPipeline, worlds: list[World], samples: int, candidates) -> list[dict]:
    """Each setting's figures on each val world, and their mean (``score``). The checkpoint's own setting is
    restored after."""
    config = pipe.model.config
    before = config.edge_refinement_size, config.edge_refinement_eps
    rows = []
    try:
        for size, eps in candidates:
            config.edge_refinement_size, config.edge_refinement_eps = size, eps if size else before[1]
            figures = {f"{task} {metric}": [] for task, metric in METRICS}
            for world in worlds:
                results = {task: evaluate(pipe, world, samples) for task, evaluate in EVALUATORS.items()}
                for task, metric in METRICS:
                    figures[f"{task} {metric}"].append(results[task][metric])
            means = {name: float(np.mean(values)) for name, values in figures.items()}
            rows.append({"size": size, "eps": eps, **means, "score": float(np.mean(list(means.values())))})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        config.edge_refinement_size, config.edge_refinement_eps = before
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--samples", type=int, default=49, help="samples per task and seed (under 50: no extras)")
    parser.add_argument("--seeds", type=int, nargs="+", default=(0, 1))
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="window sides; 0 = unrefined")
    parser.add_argument("--eps", type=float, nargs="+", default=EPS)
    parser.add_argument("--json", default=None)
    parser.add_argument("--write", action="store_true", help="store the best setting in the checkpoint's config.json")
    args = parser.parse_args(argv)
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint)
    worlds = [World("val", seed, image_size=pipe.model.config.image_size) for seed in args.seeds]
    rows = sweep(pipe, worlds, args.samples, settings(args.sizes, args.eps))
    names = [f"{task} {metric}" for task, metric in METRICS]
    print(f"\nval seeds {list(args.seeds)}, {args.samples} samples per task and seed, means over the seeds")
    print("| size | eps | " + " | ".join(names) + " | mean |")
    print("|---" * (len(names) + 3) + "|")
    for row in rows:
        cells = " | ".join(f"{row[name]:.3f}" for name in names)
        print(f"| {row['size']} | {row['eps']:g} | {cells} | {row['score']:.3f} |")
    best = max(rows, key=lambda row: row["score"])
    report = {"rows": rows, "best": {"edge_refinement_size": best["size"]}}
    if best["size"]:
        report["best"]["edge_refinement_eps"] = best["eps"]
    print(f"best on val: {report['best']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.write:
        update_config(args.checkpoint, report["best"])
        print(f"wrote {report['best']} to {Path(args.checkpoint) / 'config.json'}")
    return report


if __name__ == "__main__":
    main()
