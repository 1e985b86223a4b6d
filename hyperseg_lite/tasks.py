"""The task registry: every HyperSeg task named once, with the name of each part that serves it.

A task's ``name`` is what the world samples (``World.sample(name, i)``), the training batcher batches, the
evaluator scores and ``--tasks`` accepts; ``pipeline_method`` is the :class:`HyperSegPipeline` method users call
for it, and ``result_kind`` the ``SegmentationResult.task`` its results carry. ``prompt`` is the instruction of
:mod:`hyperseg_lite.prompts` it asks with (``prompts.instruction``), ``family`` how its prompt is filled
(class names, an expression, a question or visual regions). Adding a task is one entry here plus its parts:
a ``World._<name>`` sampler, an evaluator in ``evaluation/tasks.py`` (``EVALUATORS``) and, if it is a new
family, a rule in ``training/batching.py``; ``tests/test_tasks.py`` fails until every part exists.

The order is part of the world's seeding (``World.rng`` hashes a task's position): append, never reorder.
This module imports nothing of the package, so every part can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["class", "referring", "reasoning", "region", "describe"]


@dataclass(frozen=True)
class Task:
    name: str
    family: Family
    prompt: str  # the instruction in prompts.py ("panoptic", "referring", "region"...)
    video: bool
    pipeline_method: str
    result_kind: str
    metric: str  # the headline metric, as the paper's tables report it
    in_paper: bool = True  # one of HyperSeg's tasks: trained by default (others are asked for with --tasks)

    @property
    def class_mode(self) -> str | None:
        """Semantic / instance / panoptic for class-list tasks (the post-processing mode), else None."""
        return self.prompt if self.family == "class" else None


REGISTRY: tuple[Task, ...] = (
    Task("semantic", "class", "semantic", False, "segment_classes", "semantic", "mIoU"),
    Task("instance", "class", "instance", False, "segment_classes", "instance", "AP"),
    Task("panoptic", "class", "panoptic", False, "segment_classes", "panoptic", "PQ"),
    Task("referring", "referring", "referring", False, "refer", "referring", "cIoU"),
    Task("reasoning", "reasoning", "reasoning", False, "reason", "reasoning", "gIoU"),
    Task("interactive", "region", "region", False, "interactive", "interactive", "mIoU_click"),
    Task("vos", "region", "region", True, "track", "video_object", "J&F"),
    Task("referring_video", "referring", "referring", True, "refer_video", "referring_video", "J&F"),
    Task("vis", "class", "instance", True, "video_instances", "video_instance", "AP"),
    # class-free naming (LLMFormer-style): the LLM lists the classes it sees; segment_classes(image, None) then
    # segments them. Not a HyperSeg task; scored by the precision / recall of the names.
    Task("describe", "describe", "describe", False, "describe", "describe", "name_F1", in_paper=False),
)

TASKS: dict[str, Task] = {task.name: task for task in REGISTRY}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)
IMAGE_TASKS: tuple[str, ...] = tuple(t.name for t in REGISTRY if not t.video)
VIDEO_TASKS: tuple[str, ...] = tuple(t.name for t in REGISTRY if t.video)
# what `train` draws when --tasks is not given: HyperSeg's own tasks, so recipes written before a task was added
# keep drawing the same steps
PAPER_TASKS: tuple[str, ...] = tuple(t.name for t in REGISTRY if t.in_paper)


def get_task(name: str) -> Task:
    """The registry entry of ``name``; a ValueError listing the known names otherwise."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {TASK_NAMES}, got {name!r}")
    return TASKS[name]
