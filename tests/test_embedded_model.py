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

# Measured on exactly these samples (test split, seed 0, 8-frame clips) with the shipped weights and the
# pipeline's default overlap weights: referring cIoU 0.414, semantic mIoU 0.511, interactive one-click mIoU 0.823,
# box mIoU 0.868, vos J&F 0.919. With HyperSeg's own choice of mask (both overlap weights 0) box mIoU is 0.730 and
# vos J&F 0.905, so the box bar also guards the pipeline's use of the box (vos on 4 clips swings: earlier weights
# scored 0.798-0.912 there with that choice). Issue #4 suggests referring cIoU >= 0.7; the shipped model is far from
# it (model card), so the bar guards against regressions of what it does reach; the vos bar is issue #4's target.
# Video instance AP on those 4 clips: 0.772 (0.762 with the earlier same-class track rule, track_match_classes=True;
# 8-frame clips give a flickering label little room, the full clips of the model card 0.517 against 0.398).
# A barely trained model (200 steps) scored about 0.1 referring, 0.01 semantic, 0.2 interactive and vos.
BOX_BAR = 0.80
VOS_BAR = 0.80
BARS = [  # (task, metric, samples, bar)
    ("referring", "cIoU", 50, 0.28),
    ("semantic", "mIoU", 20, 0.47),
    ("interactive", "mIoU_click", 30, 0.76),
    ("interactive", "mIoU_box", 30, BOX_BAR),
    ("vos", "J&F", 4, VOS_BAR),
    ("vis", "AP", 4, 0.65),
]


def test_checkpoint_is_shipped_small_and_complete():
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "README.md"):
        assert (EMBEDDED_CHECKPOINT / name).is_file(), name
    assert (EMBEDDED_CHECKPOINT / "model.safetensors").stat().st_size <= 60 * 2**20
    assert json.loads((EMBEDDED_CHECKPOINT / "config.json").read_text())["preset"] == "lite"


def test_load_model_defaults_to_the_embedded_checkpoint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_model()
    assert loaded.source == str(EMBEDDED_CHECKPOINT)
    assert not loaded.model.training
    assert "lite" in loaded.describe()


def test_the_shipped_shape_head_fits_the_shipped_embedding_so_training_can_continue_from_it():
    """``train --init assets/hyperseg-lite --continue-shape-head`` refuses without a head of the right shape."""
    from hyperseg_lite.training.shape_auxiliary import MaskShapeAuxiliary, load_shape_head

    config = json.loads((EMBEDDED_CHECKPOINT / "config.json").read_text())
    assert config["decoder_config"]["mask_shape_embedding"]
    assert load_shape_head(MaskShapeAuxiliary(config["decoder_config"]["hidden_dim"]), EMBEDDED_CHECKPOINT)


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
    # the shipped weights answer about a third of them with no match (0.34 on test seed 0, 8 scenes)
    assert 0.0 <= metrics["out_of_world_no_match"] <= 1.0


def test_an_empty_class_list_says_the_model_named_nothing_instead_of_inventing_classes(pipe):
    """The embedded model was never taught to name what it sees: it answers the describe prompt with the
    segmentation template, which must not come back as class names (the app used to list "Sure" as absent)."""
    from hyperseg_lite.data.world import World

    sample = World("test", 0, image_size=pipe.model.config.image_size).sample("panoptic", 0)
    result = pipe.segment_classes(sample.image, None, mode="panoptic")
    assert result.answer is not None and len(result) == 0 and result.absent == []
    assert any("named no class" in notice for notice in result.notices)
