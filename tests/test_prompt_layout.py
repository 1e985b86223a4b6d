"""The host-side prompt layout: counts and checks, and a forward that never reads data back from the device.

"No host-device syncs inside the forward" (issue #7) is checked without a GPU: under ``FakeTensorMode`` tensors
carry shapes but no values, so any ``.item()``, ``.tolist()``, ``if tensor.any()`` or boolean indexing in the
forward raises, exactly where it would stall a GPU. (transformers skips its own eager-mode mask checks when it
sees fake tensors, as it does under ``torch.compile`` and CUDA graph capture.)
"""

from __future__ import annotations

import pytest
import torch
from helpers import encode_mixed, image_batch
from torch._subclasses.fake_tensor import DataDependentOutputException, FakeTensor, FakeTensorMode

from hyperseg_lite import TemporalState
from hyperseg_lite.constants import IMAGE_TOKEN_INDEX
from hyperseg_lite.modeling.prompt_layout import PromptLayout
from hyperseg_lite.prompts import class_prompt, referring_prompt

PROMPT_KEYS = ("input_ids", "attention_mask", "class_spans", "refer_mask")


def layout_of(batch: dict) -> PromptLayout:
    return PromptLayout.of(batch["input_ids"], batch["class_spans"], batch["refer_mask"])


def test_layout_counts_a_mixed_batch(tiny):
    batch, region_masks = encode_mixed(tiny.processor, ["refer", "class", "region"])
    layout = layout_of(batch)
    processor = tiny.processor
    assert layout.kinds() == ["refer", "class", "region"]
    assert layout.image_positions == (processor.num_image_tokens,) * 3
    assert layout.fvp_positions == (processor.num_latents,) * 3
    assert layout.query_positions == (processor.num_queries,) * 3
    assert layout.class_names == (0, 3, 0) and layout.max_class_names == 3  # encode_mixed: row 1 has 3 names
    assert (
        layout.region_positions == (0, 0, region_masks[2].shape[0]) and layout.max_regions == region_masks[2].shape[0]
    )


def test_a_prompt_must_ask_for_exactly_one_kind_of_target(tiny):
    processor = tiny.processor
    both = processor.collate([processor.encode(referring_prompt(), expression="the red star")])
    both["class_spans"][0, 5] = 1  # an expression and a class name in one row
    with pytest.raises(ValueError, match="exactly one kind"):
        layout_of(both).kinds()
    neither = processor.collate([processor.encode(referring_prompt(), expression="the red star")])
    neither["refer_mask"][:] = False
    with pytest.raises(ValueError, match="exactly one kind"):
        layout_of(neither).kinds()


def test_placeholder_counts_that_do_not_match_the_embeddings_are_clear_errors(tiny):
    model, processor = tiny.model, tiny.processor
    batch, _ = encode_mixed(processor, ["refer"])
    pixels, global_pixels = image_batch(processor, 1)
    with torch.no_grad():
        features = model.encode_images(pixels, global_pixels)
        ids = batch["input_ids"].clone()
        ids[0, (ids[0] == IMAGE_TOKEN_INDEX).nonzero()[:3, 0]] = 65  # three image positions become text
        with pytest.raises(ValueError, match="image positions per row"):
            model.segment(features, ids, batch["attention_mask"], batch["class_spans"], batch["refer_mask"])
        regions, masks = encode_mixed(processor, ["region"])
        with pytest.raises(ValueError, match="region masks were given"):
            model.segment(
                features,
                regions["input_ids"],
                regions["attention_mask"],
                regions["class_spans"],
                regions["refer_mask"],
                region_masks=[masks[0][:1].repeat(3, 1, 1)],
            )


def test_layout_given_or_derived_gives_the_same_output(tiny):
    model, processor = tiny.model, tiny.processor
    batch, region_masks = encode_mixed(processor, ["region", "class", "refer"])
    pixels, global_pixels = image_batch(processor, 3)
    with torch.no_grad():
        features = model.encode_images(pixels, global_pixels)
        args = (features, *(batch[k] for k in PROMPT_KEYS))
        derived, _ = model.segment(*args, region_masks=region_masks)
        given, _ = model.segment(*args, region_masks=region_masks, layout=layout_of(batch))
    assert derived.prompt_kind == given.prompt_kind == ["region", "class", "refer"]
    assert torch.equal(derived.pred_masks, given.pred_masks) and torch.equal(derived.prompt_logits, given.prompt_logits)


@pytest.mark.parametrize("kinds", [["refer"], ["class", "class"], ["region"], ["refer", "class", "region"]])
def test_the_forward_never_reads_values_back_from_the_device(tiny, kinds):
    """Image encoding, the LLM pass, HER and the decoder, on a first and a second video frame."""
    model, processor = tiny.model.eval(), tiny.processor
    batch, region_masks = encode_mixed(processor, kinds)
    layout = layout_of(batch)
    pixels, global_pixels = image_batch(processor, len(kinds))
    with torch.no_grad():
        # region masks arrive on the host; their pooling (and its empty-mask check) happens there, once per video
        regions = model.pool_region_prompts(model.encode_images(pixels, global_pixels), region_masks)
    region_features = regions if regions[0] is not None else None
    with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True):
        state = TemporalState()
        for _ in range(2):
            features = model.encode_images(pixels, global_pixels, temporal_state=state)
            out, _ = model.segment(
                features,
                *(batch[k] for k in PROMPT_KEYS),
                temporal_state=state,
                region_features=region_features,
                layout=layout,
            )
            state = out.temporal_state
    assert isinstance(out.pred_masks, FakeTensor) and out.prompt_kind == kinds
    assert out.pred_masks.shape[:2] == (len(kinds), model.num_queries)


def test_the_sync_detector_catches_a_read_back(tiny):
    """Without a layout the model must read the ids: the same check then fails, so it can fail."""
    model, processor = tiny.model.eval(), tiny.processor
    batch = processor.collate([processor.encode(class_prompt(2), class_names=["circle", "sky"])])
    pixels, global_pixels = image_batch(processor, 1)
    with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True):
        features = model.encode_images(pixels, global_pixels)
        with pytest.raises(DataDependentOutputException):
            model.segment(features, *(batch[k] for k in PROMPT_KEYS))
