"""Train HyperSeg-lite on the procedural world, all tasks at once.

    python -m hyperseg_lite.train --preset lite --steps 20000 --batch-size 4 --output runs/lite
    accelerate launch -m hyperseg_lite.train ...          # one or several GPUs, unchanged
    python -m hyperseg_lite.train --resume runs/lite ...   # continue from the last checkpoint
    python -m hyperseg_lite.train --init runs/lite/checkpoint --seed 1 ...   # a new cycle from trained weights
    python -m hyperseg_lite.train --init ... --freeze-vision ...   # train the language side on fixed image features

Each step draws one task (round robin over ``--tasks``, each as often as its ``--task-weights`` says) and a
batch of its samples; video tasks train on two consecutive frames, carrying the temporal state, with the
instance-association loss between them. Progress bar,
a CSV log (``log.csv``), TensorBoard events (``tb/``) and a checkpoint every ``--save-every`` steps
(``checkpoint/``: safetensors weights, config, tokenizer, optimizer state and step).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from .data.world import TASKS, World
from .loading import LoadedModel, build_random_model, load_model
from .training.batching import collate, sample_items, to_device
from .training.shape_auxiliary import (SHAPE_HEAD_FILE, MaskShapeAuxiliary, ShapeAuxiliary, load_shape_head,
                                      object_categories)

VIDEO_TASKS = ("vos", "referring_video", "vis")
# the image encoders --freeze-vision holds fixed: everything that turns pixels into features before any prompt is
# read (the perceiver, which the temporal state feeds, and everything after the LLM keep learning)
VISION_MODULES = ("pyramid", "pixel_decoder", "global_vision")


def freeze_vision(model: torch.nn.Module) -> None:
    """Hold the image encoders fixed (no gradients, eval mode).

    Why: on a CPU most of a step's backward runs through them, while what the text-prompted tasks miss is in
    the language side (the model card's "What it had not learnt"); a frozen encoder lets a run spend its time
    on prompts. LISA likewise trains with its vision backbone frozen."""
    for name in VISION_MODULES:
        getattr(model, name).requires_grad_(False).eval()


def training_step(loaded: LoadedModel, samples: list, device, reasoning_prompts: str = "explain",
                  shape_aux: ShapeAuxiliary | None = None, shape_weight: float = 0.0
                  ) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch of one task (two frames for video tasks).

    ``reasoning_prompts="both"``: every second reasoning sample of the batch asks with the plain reasoning
    instruction (mask only), the others with the explain instruction (mask + explanation), so the mask learnt
    for the instruction ``pipe.reason`` sends is trained too; ``"explain"`` (the embedded model's recipe so far)
    asks every one to explain.

    ``shape_aux`` (with ``shape_weight`` > 0): adds the backbone's shape-classification loss on the objects of
    class-prompt samples (:mod:`~hyperseg_lite.training.shape_auxiliary`), logged as ``loss_shape``.
    """
    model, processor = loaded.model, loaded.processor
    frames = (0, 1) if samples[0].frames is not None else (0,)
    total, parts, previous, previous_targets, state = 0.0, {}, None, None, None
    for frame in frames:
        items = [sample_items(s, processor, frame, explain=reasoning_prompts == "explain" or i % 2 == 1)
                 for i, s in enumerate(samples)]
        batch = to_device(collate(items, processor), device)
        shape_loss = None
        if shape_aux is None or shape_weight <= 0:
            out = model(**batch, temporal_state=state)
        elif isinstance(shape_aux, MaskShapeAuxiliary):
            out = model(**batch, temporal_state=state)
            shape_loss = shape_aux.loss(model.mask_decoder.mask_shape, tuple(out.pred_masks.shape[-2:]),
                                        batch["targets"], _categories(samples, batch["targets"]))
        else:
            with shape_aux.capture(model.pyramid) as seen:
                out = model(**batch, temporal_state=state)
            shape_loss = shape_aux.loss(seen[-1], batch["targets"], _categories(samples, batch["targets"]))
        if shape_loss is not None:
            total = total + shape_weight * shape_loss
            parts["loss_shape"] = parts.get("loss_shape", 0.0) + float(shape_loss.detach())
        total = total + out.loss
        for key, value in out.loss_dict.items():
            parts[key] = parts.get(key, 0.0) + float(value.detach())
        if previous is not None:
            association = model.instance_association_loss(previous, out, previous_targets, batch["targets"])
            total = total + association
            parts["loss_ins"] = float(association.detach())
        previous, previous_targets, state = out, batch["targets"], out.temporal_state
    return total, parts


def _categories(samples: list, targets: list) -> list[torch.Tensor]:
    return [object_categories(sample.class_names, target) for sample, target in zip(samples, targets)]


def task_schedule(tasks: list[str], weights: dict[str, int] | None = None) -> list[str]:
    """One cycle of tasks, each ``weights[task]`` times (default 1), spread out rather than back to back.

    Equal weights give ``tasks`` in their order, so unweighted runs draw exactly what they always drew.
    """
    weights = {task: (weights or {}).get(task, 1) for task in tasks}
    total, credit, schedule = sum(weights.values()), dict.fromkeys(tasks, 0), []
    for _ in range(total):  # smooth weighted round robin: the task owed the most goes next
        for task in tasks:
            credit[task] += weights[task]
        chosen = max(tasks, key=credit.__getitem__)
        credit[chosen] -= total
        schedule.append(chosen)
    return schedule


def parse_task_weights(pairs: list[str], tasks: list[str]) -> dict[str, int]:
    """``["referring=3", "reasoning=2"]`` -> ``{"referring": 3, "reasoning": 2}``, checked against ``tasks``."""
    weights = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in tasks or not value.isdigit() or int(value) < 1:
            raise ValueError(f"--task-weights wants TASK=N with TASK one of {', '.join(tasks)} and N >= 1; got {pair!r}")
        weights[name] = int(value)
    return weights


class StepBatches(torch.utils.data.Dataset):
    """Step number -> (task, samples), so DataLoader workers draw the world while the accelerator trains.

    Sample indices depend on the step alone, so a resumed or multi-worker run sees exactly the same batches, and
    a task drawn several times per cycle gets fresh samples each time.
    """

    def __init__(self, world: World, tasks: list[str], batch_size: int, weights: dict[str, int] | None = None):
        self.world, self.batch_size = world, batch_size
        self.schedule = task_schedule(tasks, weights)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, step: int) -> tuple[str, list]:
        cycle, position = divmod(step, len(self.schedule))
        task = self.schedule[position]
        draw = cycle * self.schedule.count(task) + self.schedule[:position].count(task)
        first = draw * self.batch_size
        return task, [self.world.sample(task, first + i) for i in range(self.batch_size)]


def _as_is(item):
    return item


def save_checkpoint(folder: Path, loaded: LoadedModel, optimizer, scheduler, step: int,
                    shape_aux: ShapeAuxiliary | None = None) -> None:
    """Write the checkpoint beside ``folder`` and swap it in only when complete.

    A run killed while saving (a closed laptop, a preempted machine) keeps its previous checkpoint whole, so
    ``--resume`` still works; writing in place would leave half-new weights with an old optimizer state.
    """
    partial, previous = folder.with_name(folder.name + ".partial"), folder.with_name(folder.name + ".previous")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if shape_aux is not None:
        save_file({k: v.detach().contiguous() for k, v in shape_aux.state_dict().items()}, partial / SHAPE_HEAD_FILE)
    loaded.model.save_pretrained(partial)
    loaded.tokenizer.save_pretrained(partial)
    torch.save(optimizer.state_dict(), partial / "optimizer.pt")  # our own file; loaded with weights_only=True
    torch.save(scheduler.state_dict(), partial / "scheduler.pt")
    (partial / "trainer_state.json").write_text(json.dumps({"step": step}))
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)
    partial.rename(folder)
    shutil.rmtree(previous, ignore_errors=True)


def last_checkpoint(run: Path) -> Path:
    """``run/checkpoint``, or the previous one when a save was cut between its two renames."""
    folder, previous = run / "checkpoint", run / "checkpoint.previous"
    if not folder.exists() and previous.exists():
        previous.rename(folder)
    return folder


def trim_log(path: Path, step: int) -> None:
    """Drop the log rows after ``step``: a resumed run repeats the steps its last checkpoint did not hold."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    kept = rows[:1] + [r for r in rows[1:] if int(r[0]) <= step]
    if len(kept) < len(rows):
        with open(path, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--resume", type=Path, default=None, help="a previous --output folder")
    parser.add_argument("--init", type=Path, default=None,
                        help="start from these weights (a checkpoint folder) with a fresh optimizer and schedule")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=100, help="linear warm-up steps before the cosine decay")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--task-weights", nargs="*", default=[], metavar="TASK=N",
                        help="draw TASK N times per round (default 1), e.g. referring=3 reasoning=3")
    parser.add_argument("--reasoning-prompts", choices=("explain", "both"), default="explain",
                        help="reasoning samples ask to explain (explain), or half of them ask for the mask only (both)")
    parser.add_argument("--class-weight", type=float, default=None,
                        help="weight of the prompt-score loss (loss_cls) and its matching cost; default: the "
                             "checkpoint's config (2.0, Mask2Former's); saved with the run's config")
    parser.add_argument("--mask-shape-embedding", action="store_true",
                        help="turn on decoder_config.mask_shape_embedding (prompt scores also read each mask token's "
                             "own mask outline; not in the release) and train it as a new part (give it again with "
                             "--resume; later cycles from its checkpoints have it on already)")
    parser.add_argument("--new-parts-lr-scale", type=float, default=10.0,
                        help="learning-rate multiplier for the mask-shape embedding and the shape head (they start "
                             "untrained while the rest is trained)")
    parser.add_argument("--continue-shape-head", action="store_true",
                        help="with --init and --shape-loss-weight: go on with the shape head saved beside the --init "
                             "weights (as pretrain_shapes writes it) instead of a fresh one")
    parser.add_argument("--shape-loss-weight", type=float, default=0.0,
                        help="weight of a training-only loss that teaches each object's shape category to the "
                             "mask-shape embedding when the model has one, else to the backbone "
                             "(hyperseg_lite/training/shape_auxiliary.py; for from-scratch models); 0: off")
    parser.add_argument("--freeze-vision", action="store_true",
                        help="hold the image encoders (pyramid, pixel decoder, global tower) fixed and train the rest "
                             "(give it again with --resume)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip-frames", type=int, default=2, help="frames per training clip (video tasks)")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--workers", type=int, default=max(0, min(8, (os.cpu_count() or 1) - 2)),
                        help="DataLoader processes drawing the world (0: draw in the training process)")
    args = parser.parse_args(argv)
    if args.resume is not None and args.init is not None:
        parser.error("--resume continues a run; --init starts a new one from given weights: use one")
    if args.resume is None and ((args.output / "log.csv").exists() or (args.output / "checkpoint").exists()):
        # a new run would append its steps to the old log and overwrite the old checkpoint: refuse, keep both
        parser.error(f"--output {args.output} already holds a run: continue it with --resume {args.output}, "
                     "or give the new run another folder")
    try:
        weights = parse_task_weights(args.task_weights, args.tasks)
    except ValueError as error:
        parser.error(str(error))

    accelerator = Accelerator()
    torch.manual_seed(args.seed)
    start = 0
    if args.resume is not None:
        checkpoint = last_checkpoint(args.resume)
        loaded = load_model(checkpoint, precision="fp32", device_map="cpu")
        start = json.loads((checkpoint / "trainer_state.json").read_text())["step"]
        if accelerator.is_main_process:
            trim_log(args.output / "log.csv", start)
    elif args.init is not None:
        loaded = load_model(args.init, precision="fp32", device_map="cpu")
    else:
        loaded = build_random_model(args.preset, seed=args.seed)
    if args.class_weight is not None:
        if args.class_weight <= 0:
            parser.error("--class-weight must be positive")
        loaded.model.config.loss_class_weight = args.class_weight
        loaded.model.criterion = loaded.model.build_criterion()
    if args.mask_shape_embedding:
        loaded.model.config.decoder_config.mask_shape_embedding = True
        loaded.model.mask_decoder.enable_mask_shape()
    if args.shape_loss_weight < 0:
        parser.error("--shape-loss-weight must be 0 (off) or positive")
    if args.continue_shape_head and (args.init is None or args.shape_loss_weight <= 0):
        parser.error("--continue-shape-head needs --init and --shape-loss-weight")
    if args.freeze_vision and args.shape_loss_weight > 0 and loaded.model.mask_decoder.mask_shape is None:
        parser.error("--freeze-vision: the shape loss would train the frozen backbone (it has no mask-shape embedding)")
    shape_aux = None
    if args.shape_loss_weight > 0:  # on the mask-shape embedding when the model has one, else on the backbone
        shape_aux = (MaskShapeAuxiliary(loaded.model.config.decoder_config.hidden_dim)
                     if loaded.model.mask_decoder.mask_shape is not None
                     else ShapeAuxiliary(loaded.model.pyramid.channels)).to(accelerator.device)
    if shape_aux is not None and args.resume is not None:
        load_shape_head(shape_aux, checkpoint)
    elif shape_aux is not None and args.continue_shape_head:
        if not load_shape_head(shape_aux, args.init):
            parser.error(f"--continue-shape-head: no {SHAPE_HEAD_FILE} for this shape loss beside {args.init}")
    model = loaded.model.train()
    if args.freeze_vision:
        freeze_vision(model)
    # parts that start untrained (the mask-shape embedding, the shape head) learn at a higher rate
    fresh = (list(loaded.model.mask_decoder.mask_shape.parameters()) if args.mask_shape_embedding else []) + \
        (list(shape_aux.parameters()) if shape_aux is not None else [])
    fresh_ids = {id(p) for p in fresh}
    trained = [p for p in model.parameters() if id(p) not in fresh_ids and p.requires_grad]
    parameters = trained + fresh
    groups = [{"params": trained}] + ([{"params": fresh, "lr": args.lr * args.new_parts_lr_scale}] if fresh else [])
    optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(args.warmup, args.steps), args.steps)
    if args.resume is not None:
        optimizer.load_state_dict(torch.load(args.resume / "checkpoint" / "optimizer.pt", weights_only=True))
        scheduler_file = args.resume / "checkpoint" / "scheduler.pt"
        if scheduler_file.exists():
            scheduler.load_state_dict(torch.load(scheduler_file, weights_only=True))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    loaded.model = accelerator.unwrap_model(model)
    world = World("train", args.seed, image_size=loaded.model.config.image_size,
                  clip_length=(args.clip_frames, args.clip_frames))
    args.output.mkdir(parents=True, exist_ok=True)
    log_path = args.output / "log.csv"
    new_log = not log_path.exists()
    writer = None
    try:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(args.output / "tb")) if accelerator.is_main_process else None
    except ImportError:  # pragma: no cover - tensorboard is in requirements.txt
        pass
    with open(log_path, "a", newline="") as handle:
        log = csv.writer(handle)
        if new_log:
            log.writerow(["step", "task", "loss", "seconds", "lr", "parts"])
        batches = torch.utils.data.DataLoader(
            StepBatches(world, args.tasks, args.batch_size, weights), batch_size=None, sampler=range(start, args.steps),
            num_workers=args.workers, collate_fn=_as_is, prefetch_factor=4 if args.workers else None)
        bar = tqdm(batches, initial=start, total=args.steps, disable=not accelerator.is_main_process)
        for step, (task, samples) in enumerate(bar, start=start):
            began = time.perf_counter()
            loss, parts = training_step(loaded, samples, accelerator.device, args.reasoning_prompts,
                                        shape_aux, args.shape_loss_weight)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            seconds = time.perf_counter() - began
            if accelerator.is_main_process:
                bar.set_postfix(task=task, loss=f"{loss.item():.3f}")
                log.writerow([step + 1, task, f"{loss.item():.5f}", f"{seconds:.3f}",
                             f"{scheduler.get_last_lr()[0]:.3g}", json.dumps(parts)])
                if writer is not None and (step + 1) % args.log_every == 0:
                    writer.add_scalar(f"loss/{task}", loss.item(), step + 1)
                if (step + 1) % args.save_every == 0 or step + 1 == args.steps:
                    handle.flush()
                    save_checkpoint(args.output / "checkpoint", loaded, optimizer, scheduler, step + 1, shape_aux)
    if writer is not None:
        writer.close()
    return args.output / "checkpoint"


if __name__ == "__main__":
    main()
