"""Reusing the LLM's state on an image's last prompt (``reuse_prefix``): a later prompt runs the LLM on fewer
positions and answers as it would without the cache; a cache made for other image features is never read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hyperseg_lite import build_random_model
from hyperseg_lite import prompts as P
from hyperseg_lite.pipeline import HyperSegPipeline, Region


@pytest.fixture(scope="module")
def pipes():
    loaded = build_random_model("tiny", seed=0)
    cached, plain = HyperSegPipeline(loaded), HyperSegPipeline(loaded)
    plain.predictor.reuse_prefix = False
    return cached, plain


def picture(seed=0, height=40, width=60):
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


class LLMPositions:
    """The number of positions each LLM pass runs (a forward pre-hook on the LLM body: public torch API)."""

    def __init__(self, model):
        self.lengths = []
        body = model.llm.model
        self.handle = body.register_forward_pre_hook(
            lambda _, args, kwargs: self.lengths.append(kwargs["inputs_embeds"].shape[1]), with_kwargs=True
        )

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.handle.remove()


def assert_same_candidates(a, b):
    assert a.prompts == b.prompts
    assert torch.equal(a.mask_logits > 0, b.mask_logits > 0)
    torch.testing.assert_close(a.mask_logits, b.mask_logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(a.scores, b.scores, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.embeddings, b.embeddings, atol=1e-4, rtol=0)


PROMPTS = [  # in turn on one image: each shares a beginning with the one before (image tokens, instruction...)
    {"expression": "the red star"},
    {"expression": "the blue ring below it"},
    {"regions": [Region(points=[[10, 12]])]},
    {"regions": [Region(points=[[30, 20], [5, 5]], point_labels=[1, 0]), Region(box=[2, 3, 30, 25])]},
    {"class_names": ["circle", "sky", "star"], "mode": "panoptic"},
    {"class_names": ["circle", "sky", "star", "square", "grass"], "mode": "semantic", "chunk_size": 2},
    {"question": "what could roll?"},
    {"question": "what could roll?"},  # the same prompt again: all but its last position reused
]


def test_later_prompts_run_fewer_llm_positions_and_answer_as_without_the_cache(pipes):
    cached, plain = pipes
    image = cached.encode(picture())
    with LLMPositions(cached.model) as positions:
        for prompt in PROMPTS:
            got = cached.predictor.predict(image=image, **prompt)
            want = plain.predictor.predict(image=image, **prompt)
            assert_same_candidates(got, want)
    with_cache, without = positions.lengths[0::2], positions.lengths[1::2]
    assert with_cache[0] == without[0]  # nothing kept yet: a whole pass
    assert all(a < b for a, b in zip(with_cache[1:], without[1:]))
    assert with_cache[-1] == 1


def test_the_pipeline_answers_as_without_the_cache(pipes):
    cached, plain = pipes
    image = cached.encode(picture(seed=1))
    calls = [
        lambda p, x: p.refer(x, "the red star", threshold=0.0),
        lambda p, x: p.interactive(x, Region(points=[[10, 12]])),
        lambda p, x: p.interactive(x, Region(points=[[40, 30]])),
        lambda p, x: p.segment_classes(x, ["circle", "sky"], mode="panoptic", threshold=0.0),
        lambda p, x: p.refer(x, "the blue ring", threshold=0.0),
    ]
    for call in calls:
        got, want = call(cached, image), call(plain, image)
        assert np.array_equal(got.masks, want.masks) and got.labels == want.labels
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)


def test_a_cache_kept_for_other_image_features_is_not_read(pipes):
    cached, plain = pipes
    first, second = cached.encode(picture(seed=2)), cached.encode(picture(seed=3))
    cached.predictor.predict(image=first, expression="the red star")
    # the first image's cache travels with a copy that holds the second image's features
    stale = dataclasses.replace(first, features=second.features)
    assert stale.prefix_cache is first.prefix_cache
    with LLMPositions(cached.model) as positions:
        got = cached.predictor.predict(image=stale, expression="the red star")
        want = plain.predictor.predict(image=second, expression="the red star")
    assert positions.lengths[0] == positions.lengths[1]  # a whole pass: nothing taken from the stale cache
    assert_same_candidates(got, want)
    assert stale.prefix_cache is not first.prefix_cache


def test_video_frames_keep_no_cache(pipes):
    cached, _ = pipes
    frame = cached.encode(picture(seed=4))
    cached.predictor.predict(image=frame, expression="the moving star", video=True)
    assert frame.prefix_cache is None


def test_two_passes_planned_at_once_each_read_the_state_they_were_planned_on(pipes):
    """Two users asking about one encoded image at once: each pass reads a consistent snapshot of the cache."""
    cached, plain = pipes
    model, processor = cached.model, cached.processor
    image = cached.encode(picture(seed=5))
    cached.predictor.predict(image=image, expression="the red star")  # something kept
    conversation = P.referring_prompt("referring")

    def batch(text):
        return processor.collate([processor.encode(conversation, expression=text)])

    first, second = batch("the red circle"), batch("a blue star on the left")
    first_plan = image.prefix_cache.plan(first["input_ids"], first["attention_mask"])
    second_plan = image.prefix_cache.plan(second["input_ids"], second["attention_mask"])
    assert first_plan.length > 0 and second_plan.length > 0

    def run(tensors, plan=None):
        with torch.inference_mode():
            out, _ = model.segment(
                image.features,
                tensors["input_ids"],
                tensors["attention_mask"],
                refer_mask=tensors["refer_mask"],
                aux_scores=False,
                prefix_reuse=plan,
            )
        return out

    run(second, second_plan)  # keeps the second prompt's state before the first pass runs
    assert image.prefix_cache.kept is not first_plan.kept
    got, want = run(first, first_plan), run(first)
    torch.testing.assert_close(got.pred_masks, want.pred_masks, atol=1e-4, rtol=0)
    torch.testing.assert_close(got.prompt_logits, want.prompt_logits, atol=1e-5, rtol=0)
