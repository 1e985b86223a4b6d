"""Train HyperSeg-lite on the procedural world, all tasks at once.

    python -m hyperseg_lite.train --preset lite --steps 20000 --batch-size 4 --output runs/lite
    accelerate launch -m hyperseg_lite.train ...          # one or several GPUs, unchanged
    python -m hyperseg_lite.train --resume runs/lite       # continue with the run's own switches
    python -m hyperseg_lite.train --resume runs/lite --steps 30000   # ... and go on for longer
    python -m hyperseg_lite.train ... --steps 20000 --stop-at 6750 --output runs/a   # stop early, schedule kept
    python -m hyperseg_lite.train --resume runs/a --task-weights vos=3   # ... and fork it with other task weights
    python -m hyperseg_lite.train --init runs/lite/checkpoint --seed 1 ...   # a new cycle from trained weights
    python -m hyperseg_lite.train --init ... --freeze-vision ...   # train the language side on fixed image features

Each step draws one task (round robin over ``--tasks``, each as often as its ``--task-weights`` says) and a
batch of its samples; video tasks train on two consecutive frames, carrying the temporal state, with the
instance-association loss between them. Progress bar, a CSV log (``log.csv``), TensorBoard events (``tb/``,
with the ``train`` extra) and a checkpoint every ``--save-every`` steps (``checkpoint/``: safetensors weights,
config, tokenizer, optimizer state, step and the run's switches in ``training_args.json``).

The pieces: flags and their checks (``training/arguments.py``), the model and its optimiser
(``training/model_setup.py``), the task schedule (``training/schedule.py``), one step's loss
(``training/step.py``), checkpoints (``training/checkpoints.py``); this file is the loop.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from .data.world import World
from .training.arguments import parse_arguments, stored_switches
from .training.checkpoints import last_checkpoint, save_checkpoint, trim_log
from .training.model_setup import VISION_MODULES, build_optimizer, freeze_vision, prepare_model
from .training.schedule import StepBatches, parse_task_weights, task_schedule
from .training.shape_auxiliary import SHAPE_HEAD_FILE
from .training.step import training_step

__all__ = [  # the names this module has always offered (tests, benchmarks and tools import them from here)
    "SHAPE_HEAD_FILE",
    "VISION_MODULES",
    "StepBatches",
    "freeze_vision",
    "last_checkpoint",
    "main",
    "parse_task_weights",
    "save_checkpoint",
    "task_schedule",
    "training_step",
    "trim_log",
]

LOG_COLUMNS = ["step", "task", "loss", "seconds", "lr", "parts"]


def _as_is(item):
    return item


def _tensorboard(folder: Path, enabled: bool):
    """A TensorBoard writer when the ``train`` extra is installed (the CSV log holds the same losses)."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder))


def main(argv: list[str] | None = None) -> Path:
    args = parse_arguments(argv, __doc__)
    accelerator = Accelerator()
    torch.manual_seed(args.seed)
    try:
        setup = prepare_model(args, accelerator.device)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    end = args.steps if args.stop_at is None else args.stop_at
    if args.stop_at is not None and args.stop_at <= setup.start_step:
        raise SystemExit(f"error: --stop-at {end}: the run's checkpoint is already at step {setup.start_step}")
    if setup.checkpoint is not None and accelerator.is_main_process:
        trim_log(args.output / "log.csv", setup.start_step)
    optimizer, scheduler, parameters = build_optimizer(args, setup)
    loaded, shape_aux, switches = setup.loaded, setup.shape_aux, stored_switches(args)
    model, optimizer, scheduler = accelerator.prepare(loaded.model, optimizer, scheduler)
    loaded.model = accelerator.unwrap_model(model)

    world = World(
        "train",
        args.seed,
        image_size=loaded.model.config.image_size,
        clip_length=(args.clip_frames, args.clip_frames),
        out_of_world_rate=getattr(args, "out_of_world_rate", 0.0),  # runs from before the switch: 0
        colour_contrast_rate=getattr(args, "colour_contrast_rate", 0.0),
    )
    batches = torch.utils.data.DataLoader(
        StepBatches(world, args.tasks, args.batch_size, args.task_weight_map),
        batch_size=None,
        sampler=range(setup.start_step, end),
        num_workers=args.workers,
        collate_fn=_as_is,
        prefetch_factor=4 if args.workers else None,
    )
    args.output.mkdir(parents=True, exist_ok=True)
    log_path = args.output / "log.csv"
    new_log = not log_path.exists()
    writer = _tensorboard(args.output / "tb", accelerator.is_main_process)
    with open(log_path, "a", newline="") as handle:
        log = csv.writer(handle)
        if new_log:
            log.writerow(LOG_COLUMNS)
        bar = tqdm(batches, initial=setup.start_step, total=args.steps, disable=not accelerator.is_main_process)
        for step, (task, samples) in enumerate(bar, start=setup.start_step + 1):  # steps count from 1
            began = time.perf_counter()
            loss, parts = training_step(
                loaded,
                samples,
                accelerator.device,
                args.reasoning_prompts,
                shape_aux,
                args.shape_loss_weight,
                setup.colour_aux,
                getattr(args, "class_colour_adversary", 0.0) or args.colour_loss_weight,
                {
                    "colour": getattr(args, "colour_attribute_weight", 0.0),
                    "category": getattr(args, "category_attribute_weight", 0.0),
                    "colour_relation": 1.0,  # its text head's only loss (modeling/relation_scores.py)
                    "category_ranking": 1.0,  # the same (modeling/ranking_scores.py)
                    "plurality": 1.0,  # the same (modeling/plurality_scores.py)
                },
            )
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            if not accelerator.is_main_process:
                continue
            seconds, value = time.perf_counter() - began, loss.item()
            bar.set_postfix(task=task, loss=f"{value:.3f}")
            log.writerow(
                [step, task, f"{value:.5f}", f"{seconds:.3f}", f"{scheduler.get_last_lr()[0]:.3g}", json.dumps(parts)]
            )
            if writer is not None and step % args.log_every == 0:
                writer.add_scalar(f"loss/{task}", value, step)
            if step % args.save_every == 0 or step == end:
                handle.flush()
                save_checkpoint(
                    args.output / "checkpoint",
                    loaded,
                    optimizer,
                    scheduler,
                    step,
                    shape_aux,
                    switches,
                    setup.colour_aux,
                )
    if writer is not None:
        writer.close()
    return args.output / "checkpoint"


if __name__ == "__main__":
    main()
