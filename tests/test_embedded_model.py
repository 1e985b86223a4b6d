"""The shipped checkpoint: present, loaded by default with no network, and still as good as its model card says.

The bars are the reduced ones of issue #4, set below the figures measured on the full test split (see
``assets/hyperseg-lite/README.md``) so that a regression in the model, the pipeline or the metrics fails here
within CI's time, while sampling noise on a few dozen samples does not.
"""

from __future__ import annotations

import json

import pytest

from hyperseg_lite import load_model
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT

# Measured on exactly these samples (test split, seed 0, 8-frame clips) with the shipped weights (`lite2`, the
# 2,500-step warm start) and the pipeline's defaults: referring cIoU 0.688, reasoning gIoU 0.739, semantic mIoU
# 0.900, interactive one-click mIoU 0.941, box mIoU 0.973, vos J&F 0.992, video instance AP 0.777 (4 clips swing:
# the full 20 clips of the model card give 0.63-0.77), and 0.944 of the 124 out-of-world expressions answered with
# no match. With the decoder's own edges (the pipeline's refine_edges=False) referring 0.661, semantic 0.839, click
# 0.869 and box 0.898: the semantic, click and box bars sit between the two, so they guard edge refinement. Reasoning
# gIoU is 0.600 without the colour relation scores (decoder_config.colour_relation): its bar guards them. Referring
# cIoU is 0.603 answering the best mask token alone (referring_union_threshold 0): its bar guards the union of every
# confident token. The vos bar is issue #4's target; a barely trained model (200 steps) scores about 0.1 referring,
# 0.01 semantic, 0.2 interactive and vos.
BOX_BAR = 0.93
VOS_BAR = 0.80
BARS = [  # (task, metric, samples, bar)
    ("referring", "cIoU", 50, 0.645),
    ("reasoning", "gIoU", 30, 0.67),
    ("semantic", "mIoU", 20, 0.86),
    ("interactive", "mIoU_click", 30, 0.90),
    ("interactive", "mIoU_box", 30, BOX_BAR),
    ("vos", "J&F", 4, VOS_BAR),
    ("vis", "AP", 4, 0.65),
]


def test_checkpoint_is_shipped_small_and_complete():
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "README.md"):
        assert (EMBEDDED_CHECKPOINT / name).is_file(), name
    assert (EMBEDDED_CHECKPOINT / "model.safetensors").stat().st_size <= 60 * 2**20
    assert json.loads((EMBEDDED_CHECKPOINT / "config.json").read_text())["preset"] == "lite2"
    assert (EMBEDDED_CHECKPOINT / "words.txt").is_file()  # the subword tokenizer's vocabulary: the real-word gate


def test_load_model_defaults_to_the_embedded_checkpoint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_model()
    assert loaded.source == str(EMBEDDED_CHECKPOINT)
    assert not loaded.model.training
    assert "lite" in loaded.describe()


@pytest.fixture(scope="module")
def pipe():
    from hyperseg_lite.pipeline import HyperSegPipeline

    return HyperSegPipeline.from_pretrained()


@pytest.fixture(scope="module")
def measure(pipe):
    """evaluate_task on the test split, once per (task, samples): click and box come from the same run."""
    from hyperseg_lite.data.world import World
    from hyperseg_lite.evaluation.tasks import evaluate_task

    world = World("test", 0, image_size=pipe.model.config.image_size, clip_length=(8, 8))
    done = {}

    def run(task: str, samples: int) -> dict:
        if (task, samples) not in done:
            done[task, samples] = evaluate_task(pipe, world, task, samples)
        return done[task, samples]

    return run


@pytest.mark.parametrize("task, metric, samples, bar", BARS, ids=[f"{task}-{metric}" for task, metric, _, _ in BARS])
def test_embedded_model_meets_the_reduced_bar(measure, task, metric, samples, bar):
    value = measure(task, samples)[metric]
    assert value >= bar, f"{task} {metric} = {value:.3f} < {bar} on {samples} test samples"


def test_a_full_referring_evaluation_also_asks_the_held_out_out_of_world_expressions(measure):
    metrics = measure("referring", 50)  # the bar's own run: no extra queries
    assert metrics["out_of_world_expressions"] >= 100
    assert metrics["out_of_world_no_match"] >= 0.85  # 0.944 here; "the purple elephant on the moon" finds nothing


def test_an_empty_class_list_gets_the_classes_the_model_names_and_finds(pipe):
    """Class-free naming (LLMFormer-style): with no class list the app's class tab segments what the model names;
    the names are the world's and mostly right (name precision 0.90 on the model card's test seeds)."""
    from hyperseg_lite.data.world import World

    world = World("test", 0, image_size=pipe.model.config.image_size)
    named, right = 0, 0
    for index in range(4):
        sample = world.sample("describe", index)  # its class_names: every class in the scene
        result = pipe.segment_classes(sample.image, None, mode="panoptic")
        assert result.answer and len(result) > 0, result.notices
        named += len(set(result.labels))
        right += len(set(result.labels) & set(sample.class_names))
    assert right / named >= 0.7


def test_class_free_naming_names_most_present_classes_and_few_absent_ones(pipe):
    """`pipe.describe` at the card's targets (0.85 / 0.85): on these 8 images 0.966 / 0.949 with the greedy and
    sampled lists (0.917 / 0.932 for the weights before the warm start, whose greedy list alone gave 0.923 / 0.814,
    which this bar refuses)."""
    from hyperseg_lite.data.world import World

    world = World("test", 0, image_size=pipe.model.config.image_size)
    named, right, present = 0, 0, 0
    for index in range(8):
        sample = world.sample("describe", index)
        names, truth = set(pipe.describe(sample.image)), set(sample.class_names)
        named, right, present = named + len(names), right + len(names & truth), present + len(truth)
    assert right / named >= 0.80 and right / present >= 0.85, (right / named, right / present)


def test_explanations_are_english_words_that_name_the_masked_object(pipe):
    """The reasoning answer, asked to explain, is made of real words (the byte-level `lite` wrote "the bikest of
    the roungape shaperpe"): the real-word gate of the model card on a few questions. And it names the object its
    mask shows: on these 10 questions 0.7 name the right one, 0.3 when the LLM names it freely (the pipeline's
    name_answer_from_mask=False), so the bar guards naming from the mask. 0.6 give the true reason (a floor, not a
    guard: free after the opening, 0.7 here, though 0.57 against 0.81 on the card's 100; the unit tests of
    test_pipeline.py guard what the opening bans)."""
    from hyperseg_lite.data.world import World
    from hyperseg_lite.evaluation.tasks import evaluate_explanations

    metrics = evaluate_explanations(pipe, World("test", 0, image_size=pipe.model.config.image_size), 10)
    assert metrics["explanation_real_words"] >= 0.95
    assert metrics["explanation_names_answer"] >= 0.5
    assert metrics["explanation_gives_reason"] >= 0.5
