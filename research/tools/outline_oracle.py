"""How much would recognition gain if the masks had the true outlines? An upper bound for the mask-shape embedding.

    python research/tools/outline_oracle.py --checkpoint assets/hyperseg-lite --split val --samples 100

The mask-shape embedding (:mod:`hyperseg_lite.modeling.mask_shape`) gives each mask token's scores the outline
of its own predicted mask. On true outlines its shape head is right far more often than on the predicted ones
(``research/tools/shape_head_accuracy.py``), so this asks what the text and class prompts would score if the
embedding saw
the truth: every task in ``--tasks`` is evaluated twice with the evaluation's own task code, as the model is and
with the embedding fed, for each mask token whose mask covers a scene object (IoU > 0.5 at the decoder's
resolution), that object's true outline; tokens that cover no object keep their own. Nothing else changes: the
masks, and so the mIoU of a chosen mask, are the model's own. Referring is also broken down by expression kind
(category, colour, size, position, relation, plural, no-target), which says what kind of words the misses hinge on.

An oracle, not a method: it reads the ground truth. It bounds what better outlines (a sharper mask head, a
refinement from the image) could bring through this embedding, and shows where the remaining misses lie.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from hyperseg_lite.data.vocabulary import CATEGORIES, COLOUR_NAMES, SIZE_NAMES
from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.mask_metrics import IoUAccumulator
from hyperseg_lite.evaluation.tasks import evaluate_task
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline

TASKS = ("semantic", "panoptic", "referring", "reasoning")
RELATION_WORDS = ("left of", "right of", "above", "below")
POSITION_WORDS = ("on the left", "on the right", "at the top", "at the bottom")


def expression_kind(expression: str, no_target: bool) -> str:
    """The form of a generated referring expression (``data/expressions.py`` renders them), e.g. ``category +
    colour``; relations and positions are named as such whatever attributes they also carry."""
    if no_target:
        return "no target"
    words = expression.split()
    if words[0] == "all":
        return "plural"
    if any(w in expression for w in RELATION_WORDS):
        return "relation"
    if any(w in expression for w in POSITION_WORDS):
        return "position"
    named = [
        kind
        for kind, vocabulary in (("category", CATEGORIES), ("colour", COLOUR_NAMES), ("size", SIZE_NAMES))
        if any(w in vocabulary for w in words)
    ]
    return " + ".join(named) or "other"


def true_outline_logits(mask_logits: torch.Tensor, objects: np.ndarray) -> torch.Tensor:
    """(B, Q, h, w) mask logits, (n, H, W) bool scene objects -> the logits with every mask that covers an object
    (IoU > 0.5 at h x w) replaced by that object's outline (area-resampled coverage as confident logits)."""
    if len(objects) == 0:
        return mask_logits
    height, width = mask_logits.shape[-2:]
    coverage = F.interpolate(torch.from_numpy(objects).float()[:, None], size=(height, width), mode="area")[:, 0]
    truth = (coverage > 0.5).float().to(mask_logits.device)  # (n, h, w)
    predicted = (mask_logits.detach().float() > 0).float()  # sigmoid > 0.5
    inter = torch.einsum("bqhw,nhw->bqn", predicted, truth)
    union = predicted.sum((2, 3))[..., None] + truth.sum((1, 2)) - inter
    best, index = (inter / union.clamp(min=1)).max(-1)  # (B, Q)
    outline = ((coverage.to(mask_logits.device)[index] * 2 - 1) * 10).to(mask_logits.dtype)
    return torch.where((best > 0.5)[..., None, None], outline, mask_logits)


class SceneRecordingWorld(World):
    """A world that remembers the last scene it drew (the scene of the sample the evaluation asks about)."""

    last_scene = None

    def scene(self, rng):
        self.last_scene = super().scene(rng)
        return self.last_scene


@contextmanager
def true_outlines(pipe: HyperSegPipeline, world: SceneRecordingWorld):
    """Within: the mask-shape embedding reads the true outlines of the scene ``world`` drew last (a forward
    pre-hook swaps its input; the model's code and weights stay as they are)."""
    encoder = pipe.model.mask_decoder.mask_shape
    if encoder is None:
        raise SystemExit("this checkpoint has no mask-shape embedding (decoder_config.mask_shape_embedding is off)")

    def reading_truth(_module, inputs):
        scene = world.last_scene
        objects = np.stack([o.mask for o in scene.objects]) if scene is not None and scene.objects else np.zeros(0)
        return (true_outline_logits(inputs[0], objects), *inputs[1:])

    handle = encoder.register_forward_pre_hook(reading_truth)
    try:
        yield
    finally:
        handle.remove()


def referring_by_kind(pipe: HyperSegPipeline, world: World, samples: int) -> dict[str, dict]:
    """cIoU / gIoU (and no-target accuracy) of the pipeline's answers per expression kind, and over all."""
    groups = defaultdict(IoUAccumulator)
    for index in range(samples):
        sample = world.sample("referring", index)
        size = sample.image.shape[:2]
        result = pipe.refer(sample.image, sample.expression)
        pred = result.union() if len(result) else np.zeros(size, dtype=bool)
        truth = sample.masks.any(0) if len(sample.masks) else np.zeros(size, dtype=bool)
        for key in (expression_kind(sample.expression, sample.no_target), "all"):
            groups[key].add(pred, truth)
    return {
        key: {
            "samples": len(acc.per_sample),
            "cIoU": acc.ciou,
            "gIoU": acc.giou,
            **({"no_target_accuracy": acc.no_target_accuracy} if acc.no_target_hits else {}),
        }
        for key, acc in sorted(groups.items())
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--split", default="val", choices=("train", "val", "test", "compositional"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=100, help="samples per task")
    parser.add_argument("--referring-samples", type=int, default=400, help="expressions for the breakdown by kind")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint)
    report = {"checkpoint": args.checkpoint, "split": args.split, "seed": args.seed, "tasks": {}, "referring_kinds": {}}
    for way in ("predicted", "true"):
        world = SceneRecordingWorld(args.split, args.seed, image_size=pipe.model.config.image_size)
        with true_outlines(pipe, world) if way == "true" else nullcontext():
            for task in args.tasks:
                report["tasks"].setdefault(task, {})[way] = evaluate_task(pipe, world, task, args.samples)
            if "referring" in args.tasks and args.referring_samples:
                report["referring_kinds"][way] = referring_by_kind(pipe, world, args.referring_samples)
    print(f"{args.checkpoint}, {args.split} seed {args.seed}: outlines the mask-shape embedding reads")
    print("| task | metric | predicted outlines (the model) | true outlines (oracle) |\n|---|---|---|---|")
    for task, ways in report["tasks"].items():
        for metric, value in ways["predicted"].items():
            if metric != "samples" and isinstance(value, float):
                print(f"| {task} | {metric} | {value:.3f} | {ways['true'][metric]:.3f} |")
    if report["referring_kinds"]:
        print("| referring expressions | samples | cIoU, predicted | cIoU, true | gIoU, predicted | gIoU, true |")
        print("|---|---|---|---|---|---|")
        kinds = report["referring_kinds"]
        for kind, row in kinds["predicted"].items():
            oracle = kinds["true"][kind]
            print(
                f"| {kind} | {row['samples']} | {row['cIoU']:.3f} | {oracle['cIoU']:.3f} | {row['gIoU']:.3f} | "
                f"{oracle['gIoU']:.3f} |"
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
    return report


if __name__ == "__main__":
    main()
