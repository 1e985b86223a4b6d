"""Single modules at toy size: vision side, perceiver (with and without the gate), region pooling, prompts."""

from __future__ import annotations

import pytest
import torch

from hyperseg_lite import HyperSegConfig
from hyperseg_lite.modeling.entity_recognition import gather_variable, mean_over_spans
from hyperseg_lite.modeling.perceiver import FineGrainedVisualPerceiver
from hyperseg_lite.modeling.pyramid_backbone import PyramidBackbone
from hyperseg_lite.modeling.region_pooling import pool_regions
from hyperseg_lite.modeling.temporal_adapter import aggregate_prompts
from hyperseg_lite.modeling.vision_tower import GlobalVisionTower
from hyperseg_lite.prompts import class_prompt, parse_class_list, referring_prompt
from hyperseg_lite.visual_prompts import box_mask, disc_mask, scaled_radius, scribble_mask


@pytest.fixture(scope="module")
def config():
    return HyperSegConfig.from_preset("tiny")


def test_vision_side_shapes(config):
    tower = GlobalVisionTower(config.vision_config, llm_hidden=32)
    tokens = tower(torch.randn(2, 3, 32, 32))
    assert tokens.shape == (2, 16, 32)  # (32 / 8)^2 patches projected to the LLM width
    pyramid = PyramidBackbone(config.pyramid_config)
    feats = pyramid(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4), (2, 64, 2, 2)]


@pytest.mark.parametrize("gate", [False, True])
def test_perceiver_shapes_and_attention_maps(gate):
    torch.manual_seed(0)
    perceiver = FineGrainedVisualPerceiver(
        [8, 16, 32, 64],
        num_latents=5,
        dim=16,
        num_layers=3,
        num_heads=2,
        head_dim=8,
        ff_mult=2,
        llm_hidden=24,
        pyramid_levels=[1, 2, 3],
        conditional_gate=gate,
    )
    feats = [torch.randn(2, c, s, s) for c, s in zip([8, 16, 32, 64], [16, 8, 4, 2])]
    tokens, maps = perceiver(feats, return_attention=True)
    assert tokens.shape == (2, 5, 24)
    assert [m.shape for m in maps] == [(2, 2, 5, 64 + 5), (2, 2, 5, 16 + 5), (2, 2, 5, 4 + 5)]
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 2, 5), atol=1e-5)
    plain, _ = perceiver(feats)  # the SDPA path equals the explicit-attention path
    assert torch.allclose(plain, tokens, atol=1e-5)
    injected, _ = perceiver(feats, latents=torch.zeros(2, 5, 16))  # local space-time injection replaces P_0
    assert not torch.allclose(injected, tokens)


def test_region_pooling_modes():
    tokens = torch.arange(16, dtype=torch.float32).repeat_interleave(3).view(16, 3)  # 4x4 grid, value = cell index
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, :16, :16] = True  # exactly cell 0
    masks[1, 48:, 48:] = True  # exactly cell 15
    area = pool_regions(tokens, masks)
    assert torch.allclose(area[:, 0], torch.tensor([0.0, 15.0]))
    sampled = pool_regions(tokens, masks, mode="sampled", generator=torch.Generator().manual_seed(0))
    # bilinear sampling mixes in neighbouring cells, so only closeness is expected
    assert sampled.shape == (2, 3) and (sampled[0, 0] < 3.0) and (sampled[1, 0] > 12.0)
    tiny = torch.zeros(1, 64, 64, dtype=torch.bool)
    tiny[0, 20, 20] = True  # smaller than a cell: still pooled from the cell it lies in
    assert pool_regions(tokens, tiny)[0, 0] == 5.0
    with pytest.raises(ValueError, match="empty"):
        pool_regions(tokens, torch.zeros(1, 64, 64, dtype=torch.bool))


def test_span_pooling_and_variable_gather():
    hidden = torch.arange(12, dtype=torch.float32).view(1, 6, 2)
    spans = torch.tensor([[0, 1, 1, 0, 2, 0]])
    pooled, valid = mean_over_spans(hidden, spans)
    assert torch.equal(pooled[0], torch.tensor([[3.0, 4.0], [8.0, 9.0]])) and valid.all()
    out, valid = gather_variable(hidden.repeat(2, 1, 1), torch.tensor([[0, 1, 0, 0, 1, 0], [0, 0, 0, 1, 0, 0]]).bool())
    assert out.shape == (2, 2, 2) and valid.tolist() == [[True, True], [True, False]]


def test_global_prompt_aggregation_is_a_running_mean():
    first, total = aggregate_prompts(None, 0, torch.ones(1, 1, 2))
    second, total = aggregate_prompts(total, 1, torch.full((1, 1, 2), 3.0))
    assert torch.equal(first, torch.ones(1, 1, 2)) and torch.equal(second, torch.full((1, 1, 2), 2.0))
    off, _ = aggregate_prompts(total, 2, torch.zeros(1, 1, 2), enabled=False)
    assert torch.equal(off, torch.zeros(1, 1, 2))


def test_visual_prompt_rendering():
    assert scaled_radius(10, (512, 256)) == 5 and scaled_radius(10, (20, 20)) == 1
    disc = disc_mask((40, 40), [(10, 10)], 3)
    assert disc[10, 10] and disc[10, 13] and not disc[10, 14]
    box = box_mask((40, 40), (5, 6, 15, 20))
    assert box.sum() == 10 * 14 and box[6, 5] and not box[20, 15]
    stroke = scribble_mask((40, 40), [(5, 5), (30, 5)], 2)
    assert stroke[5, 5] and stroke[5, 30] and stroke[5, 18] and not stroke[20, 18]


def test_templates_match_the_release():
    # exactly what the release's RefCOCO_dataset_test.preprocess_llama2 renders (conv_phi_v0)
    assert referring_prompt().render() == (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: This is an image <image>\n<temporal>\n, Please "
        "doing Referring Segmentation according to the following instruction:\n<refer> ASSISTANT: \nSure, the "
        "segmentation result is <gt><seg><|endoftext|>"
    )
    assert "Please segment all the positive objects" in class_prompt(2, wording="paper").user
    assert class_prompt(3).user.endswith("This is all the candidate categories: <cls>, <cls>, <cls>.\n")
    assert parse_class_list("cat, sky,  cat , dog.<|endoftext|>") == ["cat", "sky", "dog"]
    # a model never taught to name what it sees answers with the segmentation template: no class names in it
    assert parse_class_list("Sure, the segmentation result is<|endoftext|>") == []
    assert parse_class_list("sure thing, Star") == ["sure thing", "Star"]
