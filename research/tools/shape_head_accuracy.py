"""How well does the mask-shape embedding tell the shapes apart from their true outlines? A training checkpoint's check.

    python research/tools/shape_head_accuracy.py --checkpoint runs/lite10/checkpoint --split val --samples 200

Needs a checkpoint written by ``python -m hyperseg_lite.train --shape-loss-weight ...`` or
``python -m hyperseg_lite.pretrain_shapes --part mask-shape`` (the model with ``decoder_config.mask_shape_embedding``
and, beside it, the shape head those runs train; the embedded model carries one, fitted with ``--head-only``).
For every shape object of ``--samples`` instance and panoptic samples of the split (half each), the head
classifies the embedding of the object's ground-truth outline at the decoder's mask resolution: the same loss as
in training, on scenes training never drew. Prints the accuracy and the mean cross-entropy (chance: 1/12 and
ln 12 = 2.48).

Why a separate check: the training log's ``loss_shape`` mixes tasks whose targets are not single outlines
(semantic masks join every object of a class), so it cannot say whether the embedding itself improved.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from hyperseg_lite.data.world import World
from hyperseg_lite.loading import load_model
from hyperseg_lite.training.batching import sample_items
from hyperseg_lite.training.shape_auxiliary import (
    SHAPE_HEAD_FILE,
    MaskShapeAuxiliary,
    decoder_mask_size,
    load_shape_head,
    object_categories,
)


@torch.inference_mode()
def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--split", choices=("train", "val", "test", "compositional"), default="val")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=200, help="instance + panoptic samples, half each")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.samples < 2:
        parser.error("--samples must be at least 2")
    loaded = load_model(args.checkpoint, precision="fp32", device_map="cpu")
    model = loaded.model.eval()
    encoder = model.mask_decoder.mask_shape
    if encoder is None:
        parser.error(f"{args.checkpoint} has no mask-shape embedding (decoder_config.mask_shape_embedding is off)")
    head = MaskShapeAuxiliary(model.config.decoder_config.hidden_dim)
    if not load_shape_head(head, args.checkpoint):
        parser.error(f"{args.checkpoint} has no {SHAPE_HEAD_FILE} for a mask-shape embedding beside its weights")
    mask_size = decoder_mask_size(model.config)
    world = World(args.split, args.seed, image_size=model.config.image_size)
    objects, correct, loss_sum = 0, 0.0, 0.0
    for task in ("instance", "panoptic"):
        for index in range(args.samples // 2):
            sample = world.sample(task, index)
            item = sample_items(sample, loaded.processor)
            categories = object_categories(sample.class_names, item.target)
            loss, accuracy = head.loss(encoder, mask_size, [item.target], [categories], with_accuracy=True)
            if loss is None:
                continue
            count = int((categories >= 0).sum())
            objects += count
            correct += accuracy * count
            loss_sum += float(loss) * count
    if objects == 0:
        raise SystemExit("no shape objects in these samples")
    report = {"objects": objects, "accuracy": correct / objects, "cross_entropy": loss_sum / objects}
    print(
        f"{args.checkpoint} ({args.split}, seed {args.seed}, {args.samples} samples): {objects} shape objects, "
        f"accuracy {report['accuracy']:.3f}, cross-entropy {report['cross_entropy']:.3f}"
    )
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    **report,
                    "checkpoint": str(args.checkpoint),
                    "split": args.split,
                    "seed": args.seed,
                    "samples": args.samples,
                },
                indent=2,
            )
        )
    return report


if __name__ == "__main__":
    main()
