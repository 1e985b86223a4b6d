"""HyperSegPredictor and EncodedImage: an image is encoded once however many prompts ask about it, and a task
asked about an EncodedImage answers as it does about the image itself (its scores to float rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperseg_lite import build_random_model
from hyperseg_lite.pipeline import Candidates, EncodedImage, HyperSegPipeline, HyperSegPredictor, Region


@pytest.fixture(scope="module")
def pipe():
    return HyperSegPipeline(build_random_model("tiny", seed=0))


def picture(height=40, width=60, seed=0):
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


class CountingEncoder:
    """Counts the model's image-side passes (a forward hook on the pyramid backbone: public torch API)."""

    def __init__(self, model):
        self.calls = 0
        self.handle = model.pyramid.register_forward_hook(lambda *_: setattr(self, "calls", self.calls + 1))

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.handle.remove()


def same(a, b):
    """The same answer: masks, labels and text exactly; scores to float rounding (the image and the encoded image
    reach them through differently batched kernels, equal to the last bit on some CPUs and not on others)."""
    return (
        np.array_equal(a.masks, b.masks)
        and np.allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
        and a.labels == b.labels
        and list(a.ids) == list(b.ids)
        and a.answer == b.answer
        and a.notices == b.notices
    )


def test_every_image_task_answers_an_encoded_image_as_the_image_without_encoding_again(pipe):
    image = picture()
    calls = {
        "refer": lambda x: pipe.refer(x, "the red star", threshold=0.0),
        "reason": lambda x: pipe.reason(x, "what could roll?", explain=True, threshold=0.0),
        "panoptic": lambda x: pipe.segment_classes(x, ["circle", "sky"], mode="panoptic", threshold=0.0),
        "semantic": lambda x: pipe.segment_classes(x, ["circle", "sky"], mode="semantic", threshold=0.0),
        "instance": lambda x: pipe.segment_classes(x, "circle, square", mode="instance", threshold=0.0),
        "no class list": lambda x: pipe.segment_classes(x, None),
        "click": lambda x: pipe.interactive(x, Region(points=[[10, 12], [30, 20]], point_labels=[1, 0])),
        "box and scribble": lambda x: pipe.interactive(
            x, [Region(box=[2, 3, 30, 25]), Region(scribble=[[5, 5], [40, 30]])]
        ),
    }
    encoded = pipe.encode(image)
    assert isinstance(encoded, EncodedImage) and encoded.size == (40, 60) and encoded.features is not None
    assert pipe.encode(encoded) is encoded
    with CountingEncoder(pipe.model) as counter:
        for name, call in calls.items():
            assert same(call(encoded), call(image)), name
        assert pipe.describe(encoded) == pipe.describe(image)
    assert counter.calls == len(calls) + 1  # once per call on the raw image, never on the encoded one


def test_predictor_is_sam_like(pipe):
    predictor = HyperSegPredictor(pipe)
    with pytest.raises(ValueError, match="set_image"):
        predictor.predict(expression="the red star")
    image = picture(32, 48)
    with CountingEncoder(pipe.model) as counter:
        predictor.set_image(image)
        first = predictor.predict(expression="the red star")
        second = predictor.predict(class_names=["circle", "square", "sky"], mode="instance", chunk_size=2)
        third = predictor.predict(regions=Region(box=[2, 2, 20, 20]))
    assert counter.calls == 1
    queries = pipe.model.num_queries
    assert isinstance(first, Candidates) and len(first) == queries and first.scores.shape == (queries, 1)
    assert len(second) == 2 * queries and second.scores.shape == (2 * queries, 3)  # two chunks, three names
    assert second.embeddings.shape[0] == 2 * queries and second.prompts == ["circle", "square", "sky"]
    assert third.prompts == ["region 1"] and third.temporal_state is None
    masks = predictor.to_original(first.mask_logits[:2])
    assert masks.shape == (2, 32, 48) and masks.dtype == bool
    assert np.array_equal(masks, first.to_original(first.mask_logits[:2]))
    predictor.reset_image()
    with pytest.raises(ValueError, match="set_image"):
        predictor.to_original(first.mask_logits[:1])


def test_predict_refuses_an_ambiguous_prompt(pipe):
    predictor = HyperSegPredictor(pipe.loaded)
    image = predictor.encode(picture())
    with pytest.raises(ValueError, match="exactly one"):
        predictor.predict(expression="a", class_names=["b"], image=image)
    with pytest.raises(ValueError, match="exactly one"):
        predictor.predict(image=image)
    with pytest.raises(ValueError, match="at least one region"):
        predictor.predict(regions=[], image=image)
    with pytest.raises(ValueError, match="outside"):
        predictor.predict(regions=[Region(points=[[500, 5]])], image=image)
    with pytest.raises(ValueError, match="LoadedModel"):
        HyperSegPredictor("not a model")


def test_a_second_prompt_runs_no_image_side(pipe):
    """The work a second prompt skips: with the image encoded, a click runs only the LLM and the decoder."""
    encoded = pipe.encode(picture(64, 64))
    with CountingEncoder(pipe.model) as counter, torch.inference_mode():
        for x in range(5, 60, 10):
            assert len(pipe.interactive(encoded, Region(points=[[x, 30]]))) == 1
    assert counter.calls == 0
