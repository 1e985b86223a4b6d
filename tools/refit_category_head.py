"""Refit a checkpoint's category mask head so that it names categories without leaning on colour.

    python tools/refit_category_head.py runs/lite2/checkpoint --output runs/lite2_refit

The head is fitted on frozen features of train-split scenes with a colour adversary
(:mod:`hyperseg_lite.training.colour_blind_category`: why, and what it does), or with ``--blend 0.5`` distilled to
the mean of that head and the checkpoint's own; every other tensor and the config are copied unchanged. The
resume state (optimizer, scheduler, trainer state, training arguments) is left behind: the output is for
inference and shipping (``tools/ship_checkpoint.py``), and a new run starts from it with ``train --init``. Before
writing, it reports how often the old and the new head name the category of val objects and of the compositional
split's held-out category-colour pairs, and keeps that report in ``category_head_refit.json`` beside the weights.

With a two-stream pyramid the head can instead read features colour cannot sway: ``--source shape_stream
--colour-adversary 0`` moves it onto the shape stream's channels of every stage (a fresh head, the text head kept,
the config's ``category_attribute_features`` rewritten).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from hyperseg_lite.data.world import World
from hyperseg_lite.modeling.mask_pooling import POOLED_SOURCES
from hyperseg_lite.pipeline import HyperSegPipeline, HyperSegPredictor
from hyperseg_lite.training.colour_blind_category import (
    REFIT_REPORT_FILE,
    CategoryExamples,
    category_accuracy,
    collect_category_examples,
    distil_category_head,
    fit_category_head,
    fresh_head_like,
    move_category_head,
)

RESUME_STATE = ("optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.json")
HEAD_PREFIX = "mask_decoder.category_attributes.mask_head."


def collect_checks(predictor, scenes: int, seed: int, size: int, min_iou: float) -> dict[str, CategoryExamples]:
    """The report's objects as the category head reads them now: val objects, and the compositional split's
    objects of held-out category-colour pairs (none when ``scenes`` is 0)."""
    if not scenes:
        return {}
    val = collect_category_examples(predictor, World("val", seed, image_size=size), scenes, min_iou)
    compositional = collect_category_examples(predictor, World("compositional", seed, image_size=size), scenes, min_iou)
    return {"val": val, "held_out": compositional.held_out_pairs()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--colour-adversary", type=float, default=3.0, help="weight of the reversed colour loss (0: a plain refit)"
    )
    parser.add_argument("--train-scenes", type=int, default=2400, help="train-split scenes the head is fitted on")
    parser.add_argument("--check-scenes", type=int, default=200, help="val and compositional scenes of the report")
    parser.add_argument(
        "--blend",
        type=float,
        default=1.0,
        help="1: the colour-blind head itself; below 1, a head distilled to blend x the colour-blind head's "
        "probabilities + (1 - blend) x the checkpoint head's",
    )
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument(
        "--min-iou", type=float, default=0.5, help="an object counts when some mask token covers it at this IoU"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--source",
        choices=POOLED_SOURCES,
        default=None,
        help="the features the new head averages under each mask (default: the checkpoint's own); shape_stream "
        "needs a two-stream pyramid",
    )
    parser.add_argument(
        "--start", choices=("fresh", "checkpoint"), default="fresh", help="a new head, or the checkpoint's own"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.blend <= 1:
        parser.error(f"--blend must be between 0 and 1, got {args.blend}")
    if args.output.resolve() == args.checkpoint.resolve():
        parser.error("--output must be another folder: the checkpoint is read, never overwritten")
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint, precision="fp32", device_map="cpu")
    predictor = HyperSegPredictor(pipe)
    model = pipe.model
    heads = model.mask_decoder.attribute_scores().get("category")
    if heads is None:
        parser.error(f"{args.checkpoint} has no category attribute scores: there is no head to refit")
    own_source = model.mask_decoder.attribute_sources["category"]
    source = args.source or own_source
    if source != own_source:
        if args.blend < 1 or args.start == "checkpoint":
            parser.error("--blend and --start checkpoint need the checkpoint's own --source: its head reads others")
        try:
            model.pooled_dim(source)  # before any scene is collected
        except ValueError as error:
            parser.error(str(error))
    size = model.config.image_size
    old = heads.mask_head.float()
    checks = collect_checks(predictor, args.check_scenes, args.seed, size, args.min_iou)
    before = {name: category_accuracy(old, examples) for name, examples in checks.items()}
    if source != own_source:  # a fresh head on the other features; the text head stays
        move_category_head(model, source)
        checks = collect_checks(predictor, args.check_scenes, args.seed, size, args.min_iou)  # what the new head reads
    train = collect_category_examples(
        predictor, World("train", args.seed, image_size=size), args.train_scenes, args.min_iou
    )
    if not len(train):
        parser.error(f"no mask of the checkpoint covers a train object at IoU {args.min_iou}: nothing to fit on")
    new = fresh_head_like(heads.mask_head.float(), args.seed)
    if args.start == "checkpoint":
        new.load_state_dict(old.state_dict())
    fit_category_head(new, train, args.colour_adversary, steps=args.steps, seed=args.seed)
    if args.blend < 1:
        teachers = [(new, args.blend), (old, 1 - args.blend)]
        new = distil_category_head(fresh_head_like(old, args.seed), train, teachers, steps=args.steps, seed=args.seed)
    after = {name: category_accuracy(new, examples) for name, examples in checks.items()}
    report = {
        "checkpoint": str(args.checkpoint),
        "colour_adversary": args.colour_adversary,
        "train_scenes": args.train_scenes,
        "train_objects": len(train),
        "steps": args.steps,
        "seed": args.seed,
        "start": args.start,
        "blend": args.blend,
        "source": source,
        "source_before": own_source,
        "objects": {name: len(examples) for name, examples in checks.items()},
        "accuracy_before": before,
        "accuracy_after": after,
    }

    args.output.mkdir(parents=True, exist_ok=True)
    for path in args.checkpoint.iterdir():
        if path.is_file() and path.name not in RESUME_STATE and path.name != "model.safetensors":
            shutil.copy2(path, args.output / path.name)
    if source != own_source:
        config = json.loads((args.checkpoint / "config.json").read_text())
        config["decoder_config"]["category_attribute_features"] = source
        (args.output / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    state = load_file(args.checkpoint / "model.safetensors")
    for index, tensor in new.state_dict().items():
        key = HEAD_PREFIX + index
        state[key] = tensor.to(state[key].dtype).contiguous()  # a new source: new shapes
    save_file(state, args.output / "model.safetensors", metadata={"format": "pt"})
    (args.output / REFIT_REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    print(f"refitted the category mask head on {len(train)} objects of {args.train_scenes} train scenes")
    for name in checks:
        print(f"  {name}: category right {before[name]:.3f} -> {after[name]:.3f} ({len(checks[name])} objects)")
    print(f"wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
