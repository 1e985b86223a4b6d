"""Does the category mask head fail on unseen colour-category pairs because it reads colour? Heads refit offline.

    python research/tools/category_head_probe.py --checkpoint assets/hyperseg-lite --train-scenes 2400 --scenes 300 \\
        --adversary-weights 1 3 --cache features.npz
    python research/tools/category_head_probe.py --checkpoint runs/warm --source shape_stream   # a two-stream pyramid

The category attribute scores' mask head (``modeling/attribute_scores.py``) names each mask token's category from
the features pooled under its mask. On the compositional split it names the category of held-out pairs far less
often than on val (``research/tools/attribute_recognition.py --split compositional``). In training no object of a
held-out pair exists, so the colour alone rules those categories out (p(circle | red) = 0): any head that can see
the colour learns to, and a red circle is then no circle.

This collects the head's own input (the pooled features) for the mask token that covers each scene object best
(``training/colour_blind_category.collect_category_examples``) on train, val and compositional scenes, and refits
heads of the same architecture on the train objects only, frozen features:

* ``plain``: the same loss as in training (a check that the refit reproduces the shipped head);
* ``colour adversary x w``: the head's hidden layer also feeds a colour classifier through a gradient reversal of
  weight w, so the hidden layer is pushed to hold no colour (Ganin & Lempitsky, 2015), from a fresh head and from
  the checkpoint's own (what ``tools/refit_category_head.py`` does);
* ``colour nullspace``: the features projected onto the nullspace of linear colour classifiers, refit a few
  times (INLP, Ravfogel et al., 2020), then the plain head.

It reports each head's category accuracy on val objects and on the compositional split's held-out-pair objects,
and how well a linear probe still reads colour from each head's hidden layer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hyperseg_lite.data.world import World
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.modeling.mask_pooling import POOLED_SOURCES
from hyperseg_lite.pipeline import HyperSegPipeline, HyperSegPredictor
from hyperseg_lite.training.colour_blind_category import (
    CategoryExamples,
    category_accuracy,
    collect_category_examples,
    fit_category_head,
    fresh_head_like,
    move_category_head,
)


def nullspace(x, colour, rounds: int) -> np.ndarray:
    """INLP: a projection that removes, round after round, the directions a linear colour probe uses."""
    from sklearn.linear_model import LogisticRegression

    projection = np.eye(x.shape[1], dtype=np.float32)
    for _ in range(rounds):
        probe = LogisticRegression(C=1.0, max_iter=300).fit(x @ projection, colour)
        basis, _ = np.linalg.qr(probe.coef_.T)  # (D, colours) orthonormal
        projection = projection @ (np.eye(x.shape[1], dtype=np.float32) - basis @ basis.T).astype(np.float32)
    return projection


def colour_readout(head: nn.Sequential, train: CategoryExamples, test: CategoryExamples) -> float:
    """A linear colour probe on the head's hidden layer, fitted on train objects, right on ``test``."""
    from sklearn.linear_model import LogisticRegression

    if not len(test):
        return float("nan")
    with torch.no_grad():
        h_train = head[:3](torch.as_tensor(train.features)).numpy()
        h_test = head[:3](torch.as_tensor(test.features)).numpy()
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(h_train, train.colour)
    return float((probe.predict(h_test) == test.colour).mean())


def projected(examples: CategoryExamples, projection: np.ndarray | None) -> CategoryExamples:
    if projection is None:
        return examples
    return CategoryExamples(examples.features @ projection, examples.category, examples.colour)


def load_or_collect(predictor, args, size) -> dict[str, CategoryExamples]:
    splits = (("train", args.train_scenes), ("val", args.scenes), ("compositional", args.scenes))
    if args.cache and Path(args.cache).exists():
        cached = np.load(args.cache)
        return {
            split: CategoryExamples(*(cached[f"{split}/{key}"] for key in ("features", "category", "colour")))
            for split, _ in splits
        }
    data = {
        split: collect_category_examples(predictor, World(split, args.seed, image_size=size), scenes)
        for split, scenes in splits
    }
    if args.cache:
        np.savez(
            args.cache,
            **{
                f"{split}/{key}": getattr(d, key)
                for split, d in data.items()
                for key in ("features", "category", "colour")
            },
        )
    return data


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-scenes", type=int, default=600)
    parser.add_argument("--scenes", type=int, default=150, help="val and compositional scenes")
    parser.add_argument("--steps", type=int, default=3000, help="optimiser steps of each refit head")
    parser.add_argument("--adversary-weights", type=float, nargs="+", default=[1.0])
    parser.add_argument("--cache", default=None, help="an .npz to keep the collected features in (reused if there)")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--source",
        choices=POOLED_SOURCES,
        default=None,
        help="refit heads on these features instead of the checkpoint's own (shape_stream: a two-stream "
        "pyramid's shape channels); the checkpoint's head is then not reported",
    )
    args = parser.parse_args(argv)
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint)
    predictor = HyperSegPredictor(pipe)
    shipped = pipe.model.mask_decoder.attribute_scores()["category"].mask_head.float()
    moved = args.source not in (None, pipe.model.mask_decoder.attribute_sources["category"])
    if moved:
        move_category_head(pipe.model, args.source)
    size = pipe.model.config.image_size
    data = load_or_collect(predictor, args, size)
    train = data["train"]
    held = data["compositional"].held_out_pairs()
    template = pipe.model.mask_decoder.attribute_scores()["category"].mask_head.float()  # the source's width
    report = {
        "source": pipe.model.mask_decoder.attribute_sources["category"],
        "objects": {"train": len(train), "val": len(data["val"]), "held_out": len(held)},
    }
    if not moved:
        report["shipped"] = {
            "val": category_accuracy(shipped, data["val"]),
            "held_out": category_accuracy(shipped, held),
        }
    variants = {"plain": (0.0, "fresh", None)}
    for weight in args.adversary_weights:
        variants[f"colour adversary x {weight:g}"] = (weight, "fresh", None)
        variants[f"colour adversary x {weight:g}, from the shipped head"] = (weight, "checkpoint", None)
    variants["colour nullspace"] = (0.0, "fresh", nullspace(train.features, train.colour, rounds=4))
    for name, (adversary, start, projection) in variants.items():
        if start == "checkpoint" and moved:
            continue  # the checkpoint's head reads other features
        head = fresh_head_like(template, args.seed)
        if start == "checkpoint":
            head.load_state_dict(shipped.state_dict())
        fit_category_head(head, projected(train, projection), adversary, steps=args.steps, seed=args.seed)
        report[name] = {
            "train": category_accuracy(head, projected(train, projection)),
            "val": category_accuracy(head, projected(data["val"], projection)),
            "held_out": category_accuracy(head, projected(held, projection)),
            "colour_readout_val": colour_readout(
                head, projected(train, projection), projected(data["val"], projection)
            ),
        }
    print(f"{args.checkpoint}, features {report['source']}; objects {report['objects']}")
    print("| category mask head | train | val | held-out pairs (compositional) | colour read from its hidden layer |")
    print("|---|---|---|---|---|")
    if "shipped" in report:
        print(f"| shipped | - | {report['shipped']['val']:.3f} | {report['shipped']['held_out']:.3f} | - |")
    for name in (name for name in variants if name in report):
        r = report[name]
        print(
            f"| refit, {name} | {r['train']:.3f} | {r['val']:.3f} | {r['held_out']:.3f} | "
            f"{r['colour_readout_val']:.3f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
