"""Stage 1's colour-blind shape term and the held-out-pair accuracy it is judged by
(``training/colour_blind_shapes.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hyperseg_lite.data.vocabulary import CATEGORIES, COLOURS
from hyperseg_lite.data.world import HELD_OUT_PAIRS, TRAIN_PAIRS
from hyperseg_lite.pretrain_vision import main as pretrain_vision
from hyperseg_lite.training.colour_blind_shapes import (
    FrozenBatchStatistics,
    PairAccuracy,
    colour_blind_loss,
    follow_weight,
    grey,
)
from hyperseg_lite.training.vision_heads import OUTPUTS
from hyperseg_lite.training.vision_targets import NUM_CLASSES, DenseTargets


def test_grey_drops_colour_and_the_brightness_that_would_name_it():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:] = COLOURS["blue"]
    image[2:6, 2:6] = COLOURS["red"]
    image[3, 3] = 0  # some texture inside the object
    segments = np.zeros((8, 8), np.int16)
    segments[2:6, 2:6] = 1
    outs = [grey(image, segments, np.random.default_rng(seed)) for seed in range(20)]
    for out in outs:
        assert out.shape == image.shape and out.dtype == np.uint8
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()  # no colour left
        assert out[3, 3, 0] < out[2, 2, 0]  # the texture's darker pixel stays darker
        assert len(np.unique(out[segments == 0])) == 1  # a flat segment stays flat
    red_levels = [int(out[2, 2, 0]) for out in outs]
    assert max(red_levels) - min(red_levels) > 80  # a red object's brightness says nothing of red


def test_the_colour_side_follows_the_grey_side_only_as_far_as_the_ramp_says():
    classes = torch.randint(0, NUM_CLASSES, (2, 8, 8))
    grey_logits = torch.randn(2, OUTPUTS, 4, 4)
    same = colour_blind_loss(grey_logits.clone(), grey_logits, classes)
    different = colour_blind_loss(torch.randn(2, OUTPUTS, 4, 4), grey_logits, classes)
    unfollowed = colour_blind_loss(torch.randn(2, OUTPUTS, 4, 4), grey_logits, classes, follow_weight=0.0)
    assert different > same  # the KL is zero where the colour side already agrees
    assert torch.isclose(unfollowed, same)  # with the ramp at 0 only the grey cross entropy is left
    colour = torch.randn(2, OUTPUTS, 4, 4, requires_grad=True)
    grey_side = grey_logits.clone().requires_grad_(True)
    colour_blind_loss(colour, grey_side, classes).backward()
    assert colour.grad.abs().sum() > 0 and grey_side.grad.abs().sum() > 0  # the grey side learns its classes too
    assert follow_weight(0) == 0.0 and 0 < follow_weight(100) < 1 and follow_weight(10_000) == 1.0


def test_a_grey_batch_leaves_the_running_statistics_as_they_were():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    net(torch.randn(4, 3, 5, 5))
    before = net[1].running_mean.clone(), net[1].running_var.clone()
    with FrozenBatchStatistics(net):
        out = net(torch.randn(4, 3, 5, 5) * 10 + 3)
    assert torch.equal(net[1].running_mean, before[0]) and torch.equal(net[1].running_var, before[1])
    assert torch.allclose(out.mean((0, 2, 3)), torch.zeros(4), atol=1e-5)  # still normalised by its own batch
    net(torch.randn(4, 3, 5, 5) + 5)
    assert not torch.equal(net[1].running_mean, before[0])  # and the momentum is back afterwards


def test_pair_accuracy_tells_held_out_pairs_from_train_pairs():
    from hyperseg_lite.data.vocabulary import COLOUR_NAMES

    held = HELD_OUT_PAIRS[0]
    seen = next(pair for pair in TRAIN_PAIRS if pair[0] != held[0])
    segments = np.full((16, 16), 2, np.int16)  # segment 2: stuff
    segments[:8], segments[8:, :8] = 0, 1  # object 0 a held-out pair, object 1 a train pair
    classes = np.zeros((16, 16), np.uint8)
    item = DenseTargets(
        image=np.zeros((16, 16, 3), np.uint8),
        classes=classes,
        colours=np.zeros((16, 16), np.uint8),
        outline=np.zeros((16, 16), bool),
        segments=segments,
        object_categories=np.array([CATEGORIES.index(held[0]), CATEGORIES.index(seen[0])]),
        object_colours=np.array([COLOUR_NAMES.index(held[1]), COLOUR_NAMES.index(seen[1])]),
    )
    logits = torch.zeros(1, OUTPUTS, 16, 16)
    logits[0, CATEGORIES.index(seen[0])] = 5.0  # every pixel named as the train pair's category
    logits[0, CATEGORIES.index(seen[0]), :8, :4] = -5.0
    logits[0, CATEGORIES.index(held[0]), :8, :4] = 5.0  # a quarter of the held-out object named right
    score = PairAccuracy()
    score.add(logits, [item])
    result = score.result("x_")
    assert result["x_train_pair_acc"] == 1.0
    assert result["x_held_out_pair_acc"] == pytest.approx(0.25)
    assert np.isnan(result["x_first_placed_acc"])  # the held-out object was placed first: no control here
    swapped = DenseTargets(
        item.image,
        item.classes,
        item.colours,
        item.outline,
        1 - item.segments,
        item.object_categories[::-1].copy(),
        item.object_colours[::-1].copy(),
    )
    score.add(logits, [swapped])  # the train pair placed first now
    assert score.result()["first_placed_acc"] == 1.0


def test_stage_one_runs_the_colour_blind_term_and_reports_held_out_pairs(tmp_path):
    run = tmp_path / "vision"
    small = ["--steps", "2", "--batch-size", "2", "--pool-size", "4", "--eval-scenes", "2", "--probe-scenes", "4"]
    small += ["--eval-every", "2", "--threads", "1"]
    metrics = pretrain_vision(["--preset", "tiny2", "--output", str(run), "--colour-blind-weight", "1", *small])
    assert "colour_blind" in (run / "log.csv").read_text().splitlines()[0].split(",")
    assert {"held_out_pair_acc", "train_pair_acc"} <= set(metrics)
    with pytest.raises(SystemExit):  # a frozen pyramid cannot learn it
        pretrain_vision(
            ["--preset", "tiny2", "--output", str(tmp_path / "pd"), "--init-encoders", str(run / "checkpoint")]
            + ["--freeze-encoders", "--pixel-decoder-weight", "1", "--colour-blind-weight", "1", *small]
        )
