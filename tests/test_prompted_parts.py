"""A visual prompt's mask keeps the parts the prompt points at (``pipeline/prompted_parts.py``).

Users click one object and expect that object, not a look-alike across the image; a box says where the object is;
a tracked object continues its mask of the frame before. Logits here are at the working size, and the stand-in
image maps the region's pixels to it one to one.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hyperseg_lite import build_random_model
from hyperseg_lite.pipeline import HyperSegPipeline, Region
from hyperseg_lite.pipeline.prompted_parts import REMOVED_LOGIT, keep_prompted_parts

SAME_SIZE = SimpleNamespace(working_points=lambda points: np.asarray(points, dtype=np.float64))


def two_blobs() -> torch.Tensor:
    """A 40 x 40 mask of two separate parts: left (rows 5-14, columns 2-11) and right (rows 20-29, columns 25-34)."""
    logits = torch.full((40, 40), -4.0)
    logits[5:15, 2:12] = 3.0
    logits[20:30, 25:35] = 2.0
    return logits


def kept(logits: torch.Tensor) -> tuple[bool, bool]:
    """Whether the left and the right part are still in the mask."""
    return bool((logits[5:15, 2:12] > 0).all()), bool((logits[20:30, 25:35] > 0).all())


def test_a_click_keeps_the_part_it_touches_and_drops_the_look_alike():
    logits = two_blobs()
    out = keep_prompted_parts(logits, Region(points=[[30, 25]]), SAME_SIZE)
    assert kept(out) == (False, True)
    assert torch.equal(out[20:30, 25:35], logits[20:30, 25:35])  # what is kept keeps its logits
    assert (out[5:15, 2:12] <= REMOVED_LOGIT).all()


def test_clicking_both_parts_keeps_both_and_a_negative_click_points_at_nothing():
    both = keep_prompted_parts(two_blobs(), Region(points=[[5, 10], [30, 25]]), SAME_SIZE)
    assert kept(both) == (True, True)
    one = keep_prompted_parts(two_blobs(), Region(points=[[5, 10], [30, 25]], point_labels=[1, 0]), SAME_SIZE)
    assert kept(one) == (True, False)


def test_a_click_off_the_mask_leaves_the_choice_as_it_was():
    logits = two_blobs()
    assert torch.equal(keep_prompted_parts(logits, Region(points=[[38, 2]]), SAME_SIZE), logits)


def test_a_box_keeps_what_lies_inside_it_in_either_corner_order():
    for box in ([0, 0, 20, 20], [20, 20, 0, 0]):
        out = keep_prompted_parts(two_blobs(), Region(box=box), SAME_SIZE)
        assert kept(out) == (True, False)
    cut = keep_prompted_parts(two_blobs(), Region(box=[0, 0, 8, 20]), SAME_SIZE)
    assert (cut[5:15, 2:8] > 0).all() and (cut[5:15, 8:12] <= REMOVED_LOGIT).all()
    empty_box = keep_prompted_parts(two_blobs(), Region(box=[14, 32, 20, 38]), SAME_SIZE)
    assert kept(empty_box) == (True, True)  # the box covers none of the mask: the choice stands


def test_a_scribble_keeps_the_parts_its_stroke_crosses_between_its_points():
    # the stroke's two points lie outside both parts; the line between them crosses the right one
    out = keep_prompted_parts(two_blobs(), Region(scribble=[[20, 25], [38, 25]]), SAME_SIZE)
    assert kept(out) == (False, True)


def test_a_drawn_mask_prompt_keeps_everything():
    prompt = np.zeros((40, 40), dtype=bool)
    prompt[5:15, 2:12] = True
    logits = two_blobs()
    assert torch.equal(keep_prompted_parts(logits, Region(mask=prompt), SAME_SIZE), logits)


def test_tracking_keeps_the_parts_touching_the_mask_of_the_frame_before():
    previous = torch.zeros((40, 40), dtype=torch.bool)
    previous[3:8, 0:5] = True  # overlaps the left part's corner
    out = keep_prompted_parts(two_blobs(), None, SAME_SIZE, previous=previous)
    assert kept(out) == (True, False)
    away = torch.zeros((40, 40), dtype=torch.bool)
    away[36:, 36:] = True  # the object moved off its last mask: nothing is dropped
    assert kept(keep_prompted_parts(two_blobs(), None, SAME_SIZE, previous=away)) == (True, True)


@pytest.fixture(scope="module")
def pipes():
    loaded = build_random_model("tiny", seed=0)
    return HyperSegPipeline(loaded), HyperSegPipeline(loaded, keep_prompted_parts=False)


def test_the_pipeline_answers_a_subset_of_the_releases_mask_and_can_switch_it_off(pipes):
    keeping, release = pipes
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    regions = [Region(points=[[20, 20]]), Region(box=[4, 4, 30, 40])]
    ours, theirs = keeping.interactive(image, regions), release.interactive(image, regions)
    assert release.keep_prompted_parts is False and keeping.keep_prompted_parts is True
    assert not (ours.masks & ~theirs.masks).any()
    assert (ours.scores == theirs.scores).all()  # the choice and its score are the release's
