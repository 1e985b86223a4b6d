"""Pretrain a part of the model on shape classification alone, many objects per step, then go on multi-task.

    python -m hyperseg_lite.pretrain_shapes --init runs/lite/checkpoint --steps 1500 --output runs/shapes
    python -m hyperseg_lite.train --init runs/shapes/checkpoint ...   # then the usual multi-task cycle

``--part backbone`` (default), the way HyperSeg's backbones come pretrained: only the backbone and a linear shape
classifier on its mask-pooled features train
(:mod:`~hyperseg_lite.training.shape_auxiliary`), on the objects of instance and panoptic samples of the training
world; every other weight is kept. The output is a full checkpoint (the shape head beside it, not in it). Why: the
``lite`` pyramid trained from scratch with the segmentation losses learnt colour and texture but no shape
(``research/tools/shape_probe.py``). Measured: on the cycle-7 weights, 500 steps at lr 7e-4 left the loss at chance
(2.47
against ln 12 = 2.48; model card), so the shipped model learns shape through the mask-shape embedding instead
(``train --mask-shape-embedding --shape-loss-weight``); this stays as the experiment to rerun on a GPU, longer.

``--part mask-shape``: only the mask-shape embedding (:mod:`~hyperseg_lite.modeling.mask_shape`) and its shape
head train, on the true outlines of every shape object of ``--batch-size`` instance / panoptic scenes per step
(no image goes through the model, so a step is cheap). Why: inside multi-task training that loss sees the few
objects of the class-prompt samples of a batch of 4, and it was still falling at the end of every cycle. The head
starts from the one saved beside ``--init`` when there is one; ``train --init ... --continue-shape-head`` goes on
with the refined head.

``--head-only``: the part stays as it is (bit for bit) and only a fresh shape head learns on top of it. Why: the
shape head is training-only, so a checkpoint can lose it (the runs folder of a past session); fitting one to the
part's fixed features lets ``train --continue-shape-head`` go on from any checkpoint without the loss's first
steps pushing a random head's gradients into trained weights. ``tools/ship_checkpoint.py`` ships the head
beside the embedded model for the same reason.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from .data.world import World
from .loading import load_model
from .training.batching import sample_items
from .training.shape_auxiliary import (
    SHAPE_HEAD_FILE,
    MaskShapeAuxiliary,
    ShapeAuxiliary,
    decoder_mask_size,
    load_shape_head,
    object_categories,
)

SHAPE_TASKS = ("instance", "panoptic")
PARTS = ("backbone", "mask-shape")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", type=Path, required=True, help="checkpoint whose part to pretrain")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="training-world seed (scenes)")
    parser.add_argument(
        "--part",
        choices=PARTS,
        default="backbone",
        help="what learns: the pyramid backbone, or the decoder's mask-shape embedding",
    )
    parser.add_argument(
        "--head-only", action="store_true", help="keep the part's weights and fit only a shape head on its features"
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be positive")

    torch.manual_seed(args.seed)
    loaded = load_model(args.init, precision="fp32", device_map="cpu")
    model, processor = loaded.model, loaded.processor
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.part == "mask-shape":
        encoder = model.mask_decoder.mask_shape
        if encoder is None:
            parser.error(f"{args.init} has no mask-shape embedding (decoder_config.mask_shape_embedding is off)")
        learner = encoder.to(device).train()
        head = MaskShapeAuxiliary(model.config.decoder_config.hidden_dim).to(device)
        mask_size = decoder_mask_size(model.config)
    else:
        learner = model.pyramid.to(device).train()
        head = ShapeAuxiliary(learner.channels).to(device)
    if args.head_only:
        learner.eval().requires_grad_(False)  # nothing of the model changes; the head learns on fixed features
    else:
        load_shape_head(head, args.init)
    parameters = [p for p in learner.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, weight_decay=0.05)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(args.warmup, args.steps), args.steps)
    world = World("train", args.seed, image_size=model.config.image_size)
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "log.csv", "w", newline="") as handle:
        log = csv.writer(handle)
        log.writerow(["step", "loss", "accuracy", "seconds", "lr"])
        bar = tqdm(range(args.steps))
        for step in bar:
            began = time.perf_counter()
            task = SHAPE_TASKS[step % len(SHAPE_TASKS)]
            first = (step // len(SHAPE_TASKS)) * args.batch_size
            samples = [world.sample(task, first + i) for i in range(args.batch_size)]
            items = [sample_items(sample, processor) for sample in samples]
            targets = [_on(item.target, device) for item in items]
            categories = [object_categories(sample.class_names, item.target) for sample, item in zip(samples, items)]
            if args.part == "mask-shape":
                loss, accuracy = head.loss(learner, mask_size, targets, categories, with_accuracy=True)
            else:
                stages = learner(torch.stack([item.prepared.pixel_values for item in items]).to(device))
                loss, accuracy = head.loss(stages, targets, categories, with_accuracy=True)
            if loss is None:  # no shape in this batch (stuff only): nothing to learn from
                scheduler.step()
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{accuracy:.2f}")
            log.writerow(
                [
                    step + 1,
                    f"{loss.item():.5f}",
                    f"{accuracy:.4f}",
                    f"{time.perf_counter() - began:.3f}",
                    f"{scheduler.get_last_lr()[0]:.3g}",
                ]
            )
    checkpoint = args.output / "checkpoint"
    model.to("cpu").eval()
    model.save_pretrained(checkpoint)
    loaded.tokenizer.save_pretrained(checkpoint)
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, checkpoint / SHAPE_HEAD_FILE)
    (checkpoint / "pretrain_state.json").write_text(
        json.dumps({"steps": args.steps, "init": str(args.init), "part": args.part, "head_only": args.head_only})
    )
    return checkpoint


def _on(target, device):
    from .modeling.losses import SegmentationTarget

    return SegmentationTarget(
        target.masks.to(device),
        target.labels.to(device),
        None if target.instance_ids is None else target.instance_ids.to(device),
    )


if __name__ == "__main__":
    main()
