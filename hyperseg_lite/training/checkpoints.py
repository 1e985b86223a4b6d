"""A run's checkpoint: written whole or not at all, found again after an interrupted save, and its log trimmed."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..loading import LoadedModel
from ..subword_tokenizer import WORDS_FILE
from .colour_auxiliary import COLOUR_HEAD_FILE
from .shape_auxiliary import SHAPE_HEAD_FILE, ShapeAuxiliary

TRAINER_STATE_FILE = "trainer_state.json"  # {"step": N}
TRAINING_ARGS_FILE = "training_args.json"  # the run's switches, so --resume needs only the folder


def save_checkpoint(
    folder: Path,
    loaded: LoadedModel,
    optimizer,
    scheduler,
    step: int,
    shape_aux: ShapeAuxiliary | None = None,
    training_args: dict | None = None,
    colour_aux: torch.nn.Module | None = None,
) -> None:
    """Write the checkpoint beside ``folder`` and swap it in only when complete.

    A run killed while saving (a closed laptop, a preempted machine) keeps its previous checkpoint whole, so
    ``--resume`` still works; writing in place would leave half-new weights with an old optimizer state.
    """
    partial, previous = folder.with_name(folder.name + ".partial"), folder.with_name(folder.name + ".previous")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if shape_aux is not None:
        save_file({k: v.detach().contiguous() for k, v in shape_aux.state_dict().items()}, partial / SHAPE_HEAD_FILE)
    if colour_aux is not None:
        save_file({k: v.detach().contiguous() for k, v in colour_aux.state_dict().items()}, partial / COLOUR_HEAD_FILE)
    loaded.model.save_pretrained(partial)
    loaded.tokenizer.save_pretrained(partial)
    words = Path(str(loaded.tokenizer.name_or_path or "")) / WORDS_FILE  # the real-word gate's vocabulary travels along
    if words.is_file():
        shutil.copyfile(words, partial / WORDS_FILE)
    if training_args is not None:
        (partial / TRAINING_ARGS_FILE).write_text(json.dumps(training_args, indent=1) + "\n")
    torch.save(optimizer.state_dict(), partial / "optimizer.pt")  # our own file; loaded with weights_only=True
    torch.save(scheduler.state_dict(), partial / "scheduler.pt")
    (partial / TRAINER_STATE_FILE).write_text(json.dumps({"step": step}))
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


def checkpoint_step(checkpoint: Path) -> int:
    """The number of steps the weights in ``checkpoint`` have trained."""
    return json.loads((checkpoint / TRAINER_STATE_FILE).read_text())["step"]


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
