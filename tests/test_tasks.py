"""The task registry names every task once, and every part a task needs exists for each entry."""

from __future__ import annotations

import pytest

from hyperseg_lite import build_random_model, prompts
from hyperseg_lite.data.world import TASKS as WORLD_TASKS
from hyperseg_lite.data.world import World
from hyperseg_lite.evaluate import HEADLINE
from hyperseg_lite.evaluation.tasks import EVALUATORS
from hyperseg_lite.pipeline import HyperSegPipeline, Region
from hyperseg_lite.tasks import REGISTRY, TASK_NAMES, TASKS, VIDEO_TASKS, get_task
from hyperseg_lite.training.batching import sample_items


@pytest.fixture(scope="module")
def tiny():
    return build_random_model("tiny", seed=0)


def test_names_are_unique_and_every_part_reads_them():
    assert len(set(TASK_NAMES)) == len(REGISTRY)
    assert WORLD_TASKS == TASK_NAMES  # the world's seeding hashes each task's position: order matters
    assert set(EVALUATORS) == set(TASK_NAMES)
    assert HEADLINE == {t.name: t.metric for t in REGISTRY}
    assert VIDEO_TASKS == ("vos", "referring_video", "vis")
    with pytest.raises(ValueError, match="task must be one of"):
        get_task("segment everything")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_has_its_parts(name, tiny):
    task = TASKS[name]
    assert prompts.instruction(task.prompt)  # an instruction of prompts.py
    assert callable(getattr(HyperSegPipeline, task.pipeline_method))
    world = World("val", 0, image_size=tiny.model.config.image_size, clip_length=(2, 2))
    sample = world.sample(name, 0)
    assert sample.task == name and (sample.frames is not None) == task.video
    item = sample_items(sample, tiny.processor)  # the batcher has a rule for it
    assert (item.region_masks is not None) == (task.family == "region")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_the_pipeline_method_answers_with_the_result_kind(name, tiny):
    task = TASKS[name]
    pipe = HyperSegPipeline(tiny)
    sample = World("val", 0, image_size=tiny.model.config.image_size, clip_length=(2, 2)).sample(name, 0)
    method = getattr(pipe, task.pipeline_method)
    if task.family == "class":
        kwargs = {} if task.video else {"mode": task.class_mode}
        result = method(sample.frames if task.video else sample.image, sample.class_names, threshold=0.0, **kwargs)
    elif task.family == "describe":  # names, not masks: segment_classes(image, None) segments them
        result = method(sample.image)
    elif task.family == "region":
        regions = [Region(box=[2, 2, 20, 20])]
        result = method(sample.frames if task.video else sample.image, regions)
    else:
        result = method(sample.frames if task.video else sample.image, sample.expression, threshold=0.0)
    if task.family == "describe":
        assert isinstance(result, list) and all(isinstance(name, str) for name in result)
    else:
        first = result[0] if task.video else result
        assert first.task == task.result_kind
    world = World("val", 0, image_size=tiny.model.config.image_size, clip_length=(2, 2))
    assert task.metric in EVALUATORS[name](pipe, world, 1)  # the evaluator reports the task's headline metric
