"""research/tools/outline_oracle.py: the oracle swaps in true outlines only for masks that cover an object,
reads the scene the world drew, leaves the model as it was, and names the expression kinds the generator writes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import load_tool

from hyperseg_lite import build_random_model
from hyperseg_lite.data.world import World
from hyperseg_lite.pipeline import HyperSegPipeline


@pytest.fixture(scope="module")
def tool():
    return load_tool("outline_oracle")


def test_only_masks_on_an_object_get_its_outline(tool):
    objects = np.zeros((1, 16, 16), dtype=bool)
    objects[0, 4:12, 4:12] = True
    logits = torch.full((1, 3, 8, 8), -5.0)
    logits[0, 0, 2:6, 2:5] = 5.0  # covers the object (IoU 12 / 16)
    logits[0, 1, 0:1, 0:1] = 5.0  # elsewhere
    swapped = tool.true_outline_logits(logits, objects)
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2:6, 2:6] = True
    assert torch.equal(swapped[0, 0] > 0, expected)  # the object's outline, not the token's narrower mask
    assert torch.equal(swapped[0, 1:], logits[0, 1:])  # no object under them: their own masks
    assert torch.equal(tool.true_outline_logits(logits, np.zeros((0, 16, 16), dtype=bool)), logits)


def test_expression_kinds_follow_the_generator(tool):
    assert tool.expression_kind("the red star", False) == "category + colour"
    assert tool.expression_kind("the small star", False) == "category + size"
    assert tool.expression_kind("the star on the left", False) == "position"
    assert tool.expression_kind("the red star left of the blue ring", False) == "relation"
    assert tool.expression_kind("all red objects", False) == "plural"
    assert tool.expression_kind("the green heart", True) == "no target"
    world = World("val", 0)
    kinds = {tool.expression_kind(s.expression, s.no_target) for s in (world.sample("referring", i) for i in range(40))}
    assert "other" not in kinds


def test_the_oracle_reads_the_drawn_scene_and_restores_the_model(tool, tmp_path):
    loaded = build_random_model("tiny", seed=0)
    loaded.model.mask_decoder.enable_mask_shape()
    loaded.model.config.decoder_config.mask_shape_embedding = True
    with torch.no_grad():
        loaded.model.mask_decoder.mask_shape.out.weight.normal_()  # "trained": the outline moves the scores
    pipe = HyperSegPipeline(loaded)
    world = tool.SceneRecordingWorld("val", 0, image_size=loaded.model.config.image_size)
    sample = world.sample("referring", 0)
    assert np.array_equal(world.last_scene.image, sample.image)  # the scene of the sample just drawn
    encoder = pipe.model.mask_decoder.mask_shape
    seen = []
    encoder.register_forward_hook(lambda _module, inputs, _out: seen.append(inputs[0].clone()))
    before = pipe.refer(sample.image, sample.expression)
    # a scene whose one object is exactly mask token 0's own mask: the oracle must hand token 0 that outline
    token = (seen[0][0, 0] > 0).float()[None, None]
    outline = torch.nn.functional.interpolate(token, size=sample.image.shape[:2], mode="nearest")[0, 0].bool().numpy()
    world.last_scene = SimpleNamespace(objects=[SimpleNamespace(mask=outline)])
    with tool.true_outlines(pipe, world):
        inside = pipe.refer(sample.image, sample.expression)
    after = pipe.refer(sample.image, sample.expression)
    assert len(seen) == 3  # the pipeline ran the embedding each time
    assert torch.equal(seen[1], tool.true_outline_logits(seen[0], outline[None]))  # inside: the scene's outlines
    assert not torch.equal(seen[1], seen[0])
    assert torch.equal(seen[2], seen[0]) and np.array_equal(after.masks, before.masks)  # the model as it was
    assert inside.masks.shape[1:] == before.masks.shape[1:]

    folder = tmp_path / "tiny"
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    report = tool.main(
        ["--checkpoint", str(folder), "--samples", "2", "--referring-samples", "3", "--tasks", "semantic", "referring"]
    )
    assert set(report["tasks"]) == {"semantic", "referring"}
    assert set(report["tasks"]["semantic"]) == {"predicted", "true"}
    assert report["referring_kinds"]["predicted"]["all"]["samples"] == 3
