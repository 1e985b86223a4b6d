"""Video tasks: one result per frame, stable track ids, and memory that does not grow with the clip."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

from hyperseg_lite import build_random_model
from hyperseg_lite.pipeline import HyperSegPipeline, Region


@pytest.fixture(scope="module")
def pipe():
    return HyperSegPipeline(build_random_model("tiny", seed=0))


def clip(frames=6, size=(36, 52)):
    rng = np.random.default_rng(0)
    base = (rng.random((*size, 3)) * 255).astype(np.uint8)
    return [np.roll(base, 2 * i, axis=1) for i in range(frames)]


def test_object_tracking_from_first_frame_prompts(pipe):
    frames = clip()
    results = pipe.track(frames, [Region(box=[2, 2, 20, 30]), Region(points=[[40, 10]])])
    assert len(results) == len(frames)
    assert [r.frame_index for r in results] == list(range(len(frames)))
    assert all(r.masks.shape == (2, 36, 52) and list(r.ids) == [1, 2] for r in results)


@pytest.mark.parametrize("keep_parts", [False, True], ids=["whole-masks", "prompted-parts"])
def test_tracking_starts_from_a_box_prompt_and_then_follows_its_own_masks(pipe, monkeypatch, keep_parts):
    """Each later frame's prior is the mask the frame before answered: the chosen one (the release), or its parts
    that the prompt or the track points at (``keep_prompted_parts``), never more."""
    from hyperseg_lite.pipeline import postprocess as post

    seen = []
    original = post.region_choice

    def spy(mask_logits, probs, region, negatives, positives, previous=None, previous_weight=0.0):
        best, score = original(mask_logits, probs, region, negatives, positives, previous, previous_weight)
        seen.append((region, None if previous is None else previous.clone(), (mask_logits[best] > 0).clone()))
        return best, score

    monkeypatch.setattr(post, "region_choice", spy)
    monkeypatch.setattr(pipe, "keep_prompted_parts", keep_parts)
    pipe.track(clip(3), [Region(box=[2, 2, 20, 30]), Region(points=[[40, 10]])])
    box_first, click_first = seen[0], seen[1]
    prior = box_first[1]  # the box, at the working resolution: 18 x 28 of the 52 x 36 frame, top left
    assert prior is not None and float(prior.float().mean()) == pytest.approx(18 * 28 / (52 * 36), abs=0.04)
    assert bool(prior[prior.shape[0] // 4, prior.shape[1] // 5]) and not bool(prior[-1, -1])
    assert click_first[1] is None  # a click says where the object is, not its extent: no first-frame prior
    for frame in (1, 2):  # every later frame starts from what the frame before chose, region by region
        for region in (0, 1):
            prior, chosen_before = seen[2 * frame + region][1], seen[2 * (frame - 1) + region][2]
            if keep_parts:
                assert not (prior & ~chosen_before).any()
            else:
                assert torch.equal(prior, chosen_before)


def test_referring_and_reasoning_video(pipe):
    for reasoning in (False, True):
        results = pipe.refer_video(clip(4), "the moving square", reasoning=reasoning, threshold=0.0)
        assert len(results) == 4 and all(r.masks.shape[1:] == (36, 52) for r in results)


def test_video_instances_keep_track_ids(pipe):
    results = pipe.video_instances(clip(4), ["circle", "square"], threshold=0.0)
    assert len(results) == 4
    first_ids = set(results[0].ids.tolist())
    assert first_ids and all(set(r.ids.tolist()) <= set(range(1, 200)) for r in results)
    assert all(len(set(r.ids.tolist())) == len(r) for r in results)  # ids unique within a frame
    assert all(label in ("circle", "square") for r in results for label in r.labels)  # tracks' labels: listed names


def test_track_bank_follows_embeddings():
    import torch

    from hyperseg_lite.pipeline import TrackBank

    bank = TrackBank(min_similarity=0.5, max_missed=1)
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    first, second = torch.tensor([0.9, 0.1]), torch.tensor([0.2, 0.7])
    assert bank.assign([a, b], [first, first]) == ([1, 2], [0, 0])
    assert bank.assign([b, a], [first, first])[0] == [2, 1]  # order of detections does not matter
    assert bank.assign([torch.tensor([0.0, 0.0, 1.0])], [first])[0] == [3]  # dissimilar: a new track
    bank.assign([], [])
    bank.assign([], [])
    assert bank.assign([a], [second])[0] == [4]  # track 1 was dropped after missing too many frames


def test_a_track_keeps_its_id_and_label_while_the_top_class_flickers():
    """Per-frame top classes of one object flicker on a weak model; the track must not split, and it is
    labelled with the class its detections scored highest in sum."""
    import torch

    from hyperseg_lite.pipeline import TrackBank

    a = torch.tensor([1.0, 0.0])
    frames = [torch.tensor([0.8, 0.3]), torch.tensor([0.4, 0.5]), torch.tensor([0.7, 0.2])]
    bank = TrackBank(min_similarity=0.5, max_missed=5)
    assert [bank.assign([a], [p]) for p in frames] == [([1], [0])] * 3
    # the switch to the earlier rule: a detection joins only a track of its own top class, labelled alone
    strict = TrackBank(min_similarity=0.5, max_missed=5, match_classes=True)
    assert [strict.assign([a], [p]) for p in frames] == [([1], [0]), ([2], [1]), ([1], [0])]


def test_streaming_300_frames_in_bounded_memory(pipe):
    """Memory after 300 frames is no larger than after 100: nothing accumulates per frame."""
    base = clip(1, size=(32, 32))[0]
    frames = (np.roll(base, i % 7, axis=0) for i in range(300))
    stream = pipe.track_stream(frames, Region(box=[4, 4, 20, 20]))
    tracemalloc.start()
    peaks = {}
    for index, result in enumerate(stream):
        assert result.masks.shape == (1, 32, 32)
        if index in (99, 299):
            peaks[index] = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert index == 299
    assert peaks[299] <= peaks[99] * 1.2 + 256 * 1024
