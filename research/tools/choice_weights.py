"""Pick the pipeline's overlap weights for visual prompts and tracking, and its track rule for video instances,
on the val split.

    python research/tools/choice_weights.py --checkpoint assets/hyperseg-lite --seeds 0 1

Visual prompts and video tasks choose among the mask tokens by score x mask quality (the release) plus a weight x
each candidate's IoU with what is already known of the object (``HyperSegPipeline``): the box or mask drawn as
the prompt (``prompt_overlap_weight``) and, when tracking, the mask chosen on the frame before
(``tracking_overlap_weight``). This runs the evaluation's own task code for every candidate weight, the other
weight at its default: box mIoU (``evaluate_interactive``; one-click mIoU is printed too and does not depend on
either weight) for the prompt weight, VOS and referring-video J&F for the tracking weight. 0 is the release.
Then video instance AP (``evaluate_vis``) with each track rule: ``track_match_classes`` True (a detection joins
only a track of its own top class, labelled alone) and False (any class; a track labelled by its summed class
probabilities, the default).
"""

from __future__ import annotations

import argparse
import json
import time

from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.tasks import evaluate_interactive, evaluate_referring_video, evaluate_vis, evaluate_vos
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--split", default="val")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--prompt-weights", type=float, nargs="*", default=[0.0, 2.0, 10.0, 100.0])
    parser.add_argument("--tracking-weights", type=float, nargs="*", default=[0.0, 1.0, 2.0, 3.0])
    parser.add_argument(
        "--track-rules",
        choices=["match-classes", "any-class"],
        nargs="*",
        default=["match-classes", "any-class"],
        help="video instance track rules to compare",
    )
    parser.add_argument("--samples", type=int, default=60, help="interactive images per seed")
    parser.add_argument("--clips", type=int, default=20, help="clips per seed and video task")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint)
    defaults = pipe.prompt_overlap_weight, pipe.tracking_overlap_weight
    rows = []
    for seed in args.seeds:
        world = World(args.split, seed, image_size=pipe.model.config.image_size)
        for weight in args.prompt_weights:
            pipe.prompt_overlap_weight, pipe.tracking_overlap_weight = weight, defaults[1]
            start = time.time()
            metrics = evaluate_interactive(pipe, world, args.samples)
            rows.append(
                {
                    "seed": seed,
                    "weight": "prompt",
                    "value": weight,
                    "mIoU_box": metrics["mIoU_box"],
                    "mIoU_click": metrics["mIoU_click"],
                    "seconds": round(time.time() - start, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        for weight in args.tracking_weights:
            pipe.prompt_overlap_weight, pipe.tracking_overlap_weight = defaults[0], weight
            start = time.time()
            vos = evaluate_vos(pipe, world, args.clips)["J&F"]
            referring = evaluate_referring_video(pipe, world, args.clips)["J&F"]
            rows.append(
                {
                    "seed": seed,
                    "weight": "tracking",
                    "value": weight,
                    "vos_J&F": vos,
                    "referring_video_J&F": referring,
                    "seconds": round(time.time() - start, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        pipe.prompt_overlap_weight, pipe.tracking_overlap_weight = defaults
        for rule in args.track_rules:
            pipe.track_match_classes = rule == "match-classes"
            start = time.time()
            metrics = evaluate_vis(pipe, world, args.clips)
            rows.append(
                {
                    "seed": seed,
                    "weight": "track_rule",
                    "value": rule,
                    "vis_AP": metrics["AP"],
                    "seconds": round(time.time() - start, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
        pipe.track_match_classes = False
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"checkpoint": args.checkpoint, "split": args.split, "rows": rows}, handle, indent=1)
    return rows


if __name__ == "__main__":
    main()
