"""Attribute scores (not in the release): the stated colour or category selects the mask's probability of it, none
stated leaves the score alone, "outside the world" leaves no mask a score, switching them on over trained weights
barely moves a score, every head learns from its own targets in a run, and the switches are saved with the
config."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import enable_attribute_group, load_tool, run_mixed

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.data.out_of_world import OUT_OF_WORLD
from hyperseg_lite.data.vocabulary import CATEGORIES, COLOUR_NAMES
from hyperseg_lite.data.world import Sample
from hyperseg_lite.modeling.attribute_scores import AttributeScores
from hyperseg_lite.modeling.losses import SegmentationTarget
from hyperseg_lite.train import main
from hyperseg_lite.training.attribute_supervision import stated_labels, target_values


def _one_hot_logits(index: int, size: int, sharp: float = 30.0) -> torch.Tensor:
    logits = torch.full((size,), -sharp)
    logits[index] = sharp
    return logits


def test_the_answer_probability_is_multiplied_by_the_colour_compatibility():
    logits = torch.tensor([-12.0, -2.0, 0.0, 3.0, 12.0])
    for factor in (1e-4, 0.1, 0.5, 0.98):
        combined = AttributeScores.combine(logits, torch.tensor(math.log(factor)))
        assert torch.allclose(combined.sigmoid(), logits.sigmoid() * factor, rtol=1e-3, atol=1e-7)
    # a saturated wrong-colour answer loses its score (adding the log to the logit would leave 12 - 2.3 = 9.7)
    assert AttributeScores.combine(torch.tensor(12.0), torch.tensor(math.log(0.1))).sigmoid() < 0.11


def test_the_stated_colour_picks_the_mask_of_that_colour_and_no_colour_changes_nothing():
    red, blue = COLOUR_NAMES.index("red"), COLOUR_NAMES.index("blue")
    k = len(COLOUR_NAMES)
    colours = AttributeScores(8, 8, k, 8)
    masks = torch.stack([_one_hot_logits(red, k), _one_hot_logits(blue, k)])[None]  # (1, Q=2, K): red, blue
    says_red = _one_hot_logits(red, k + 1)[None, None]  # (1, R=1, K + 1)
    says_nothing = _one_hot_logits(k, k + 1)[None, None]
    red_score = colours.compatibility(masks, says_red)[0, :, 0]
    assert red_score[0] > -1e-3 and red_score[1] < -20  # the red mask keeps its score, the blue one loses it
    assert torch.allclose(colours.compatibility(masks, says_nothing), torch.zeros(1, 2, 1), atol=1e-3)
    # a uniform text head is log(p_none + (1 - p_none) p_mask(stated)), finite everywhere
    uniform = colours.compatibility(masks, torch.zeros(1, 1, k + 1))
    assert torch.isfinite(uniform).all() and math.isclose(float(uniform[0, 0, 0]), math.log(2 / (k + 1)), rel_tol=1e-3)


def test_a_category_outside_the_world_leaves_every_mask_without_a_score():
    k = len(CATEGORIES)
    categories = AttributeScores(8, 8, k, 8, outside=True)
    assert categories.text_head.out_features == k + 2 and categories.outside_index == k + 1
    masks = torch.stack([_one_hot_logits(i, k, sharp=3.0) for i in range(k)])[None]  # every category, unsure
    outside = categories.compatibility(masks, _one_hot_logits(k + 1, k + 2)[None, None])
    assert (outside < -20).all()  # whatever the mask, a thing outside the world is not there
    star = CATEGORIES.index("star")
    says_star = categories.compatibility(masks, _one_hot_logits(star, k + 2)[None, None])[0, :, 0]
    assert int(says_star.argmax()) == star


def _run(model, processor, kinds):
    with torch.no_grad():
        return run_mixed(model, processor, kinds)[0]


def test_switched_on_over_trained_weights_the_scores_barely_move_and_it_survives_a_reload(tmp_path):
    loaded = build_random_model("tiny", seed=0)
    model, processor = loaded.model.eval(), loaded.processor
    kinds = ["refer", "class", "region"]
    before = _run(model, processor, kinds)
    enable_attribute_group(model, "colour", COLOUR_NAMES)
    enable_attribute_group(model, "category", CATEGORIES)
    after = _run(model, processor, kinds)
    assert torch.equal(before.pred_masks, after.pred_masks)  # the masks never read it
    refer_row = before.prompt_logits[0, :, 0].sigmoid()
    # "none stated" at the start: each answer's probability is multiplied by about 0.98 per group
    assert torch.allclose(after.prompt_logits[0, :, 0].sigmoid(), refer_row * 0.98 * 0.98, atol=0.01)
    assert torch.equal(before.prompt_logits[1:], after.prompt_logits[1:])  # class and region scores untouched
    assert after.attribute_logits["colour"].shape[-1] == len(COLOUR_NAMES)
    assert after.refer_attribute_logits["colour"].shape[-1] == len(COLOUR_NAMES) + 1
    assert after.attribute_logits["category"].shape[-1] == len(CATEGORIES)
    assert after.refer_attribute_logits["category"].shape[-1] == len(CATEGORIES) + 2  # none, outside the world

    with torch.no_grad():  # "trained": the text head states a colour, and the referring scores move
        model.mask_decoder.colour_attributes.text_head.bias.zero_()
    changed = _run(model, processor, kinds)
    assert not torch.allclose(changed.prompt_logits[0], before.prompt_logits[0], atol=0.05)

    model.save_pretrained(tmp_path / "ckpt")
    loaded.tokenizer.save_pretrained(tmp_path / "ckpt")
    reloaded = load_model(tmp_path / "ckpt", precision="fp32", device_map="cpu").model
    assert reloaded.config.decoder_config.colour_attributes == len(COLOUR_NAMES)
    assert reloaded.config.decoder_config.category_attributes == len(CATEGORIES)
    assert torch.equal(_run(reloaded, processor, kinds).prompt_logits, changed.prompt_logits)


def test_the_text_targets_are_the_stated_value_none_outside_or_ignored():
    samples = [
        Sample("referring", expression="the red heart", stated_colour="red", stated_category="heart"),
        Sample("referring", expression="the red object", stated_colour="red", stated_category=None),
        Sample("referring", expression="the red elephant", stated_colour="red", stated_category=OUT_OF_WORLD),
        Sample("semantic", class_names=["heart"]),
    ]
    kinds = ["refer", "refer", "refer", "class"]
    red, heart = COLOUR_NAMES.index("red"), CATEGORIES.index("heart")
    assert stated_labels("colour", samples, kinds).tolist() == [red, red, red, -100]
    k = len(CATEGORIES)
    assert stated_labels("category", samples, kinds).tolist() == [heart, k, k + 1, -100]


def test_the_mask_targets_of_the_category_are_the_class_or_the_stated_noun():
    target = SegmentationTarget(masks=torch.zeros(2, 4, 4), labels=torch.tensor([0, 1]))
    pixels = torch.zeros(3, 4, 4)
    panoptic = Sample("panoptic", class_names=["star", "sky"])
    assert target_values("category", panoptic, target, pixels, None).tolist() == [CATEGORIES.index("star"), -1]
    referring = Sample("referring", expression="the crosses", stated_category="cross")
    assert target_values("category", referring, target, pixels, None).tolist() == [CATEGORIES.index("cross")] * 2
    unnamed = Sample("referring", expression="all red objects")
    assert target_values("category", unnamed, target, pixels, None).tolist() == [-1, -1]


def test_a_run_switches_them_on_and_every_head_learns(tmp_path):
    first = main(
        ["--preset", "tiny", "--steps", "1", "--batch-size", "1", "--output", str(tmp_path / "a")]
        + ["--tasks", "referring"]
    )
    assert json.loads((first / "config.json").read_text())["decoder_config"]["colour_attributes"] == 0
    second = main(
        ["--init", str(first), "--steps", "3", "--batch-size", "2", "--lr", "1e-3", "--warmup", "0"]
        + ["--colour-attributes", "pyramid", "--category-attributes", "pixel_decoder"]
        + ["--output", str(tmp_path / "b"), "--tasks", "referring", "panoptic"]
    )
    decoder_config = json.loads((second / "config.json").read_text())["decoder_config"]
    assert decoder_config["colour_attributes"] == len(COLOUR_NAMES)
    assert decoder_config["colour_attribute_features"] == "pyramid"
    assert decoder_config["category_attributes"] == len(CATEGORIES)
    assert decoder_config["category_attribute_features"] == "pixel_decoder"
    rows = (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]
    logged = " ".join(rows)
    for group in ("colour", "category"):
        assert f"loss_{group}_text" in logged and f"loss_{group}_mask" in logged
    model = load_model(second, precision="fp32", device_map="cpu").model
    colours, categories = model.mask_decoder.colour_attributes, model.mask_decoder.category_attributes
    assert colours.mask_head[0].normalized_shape[0] == sum(model.pyramid.channels[:2])  # the pyramid's fine stages
    assert categories.mask_head[0].normalized_shape[0] == model.config.decoder_config.mask_dim  # mask_features
    for heads in (colours, categories):
        assert heads.text_head.weight.abs().sum() > 0  # trained away from its zero start


def test_the_attribute_tool_reports_what_the_heads_say(tmp_path):
    loaded = build_random_model("tiny", seed=0)
    enable_attribute_group(loaded.model, "colour", COLOUR_NAMES)
    enable_attribute_group(loaded.model, "category", CATEGORIES)
    loaded.model.save_pretrained(tmp_path / "ckpt")
    loaded.tokenizer.save_pretrained(tmp_path / "ckpt")
    report = load_tool("attribute_recognition").main(["--checkpoint", str(tmp_path / "ckpt"), "--scenes", "2"])
    recognition = report["recognition"]
    asked = sum(recognition[kind]["expressions"] for kind in ("colour and shape", "shape only", "colour only"))
    # untrained, each text head says "none stated" for every expression: right exactly where none is stated
    colour_unstated = recognition["shape only"]["expressions"]
    category_unstated = recognition["colour only"]["expressions"]
    assert recognition["colour heads"]["text_accuracy"] == pytest.approx(colour_unstated / asked)
    assert recognition["category heads"]["text_accuracy"] == pytest.approx(category_unstated / asked)
