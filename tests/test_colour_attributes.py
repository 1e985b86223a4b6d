"""Colour attribute scores (not in the release): the stated colour selects the mask's colour probability, no
stated colour leaves the score alone, switching them on over trained weights barely moves a score, both heads
learn from their own targets in a run, and the switch is saved with the config."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import load_tool, run_mixed

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.data.vocabulary import COLOUR_NAMES
from hyperseg_lite.data.world import Sample
from hyperseg_lite.modeling.colour_attributes import ColourAttributeScores
from hyperseg_lite.train import main
from hyperseg_lite.training.attribute_supervision import stated_colour_labels


def _one_hot_logits(index: int, size: int, sharp: float = 30.0) -> torch.Tensor:
    logits = torch.full((size,), -sharp)
    logits[index] = sharp
    return logits


def test_the_answer_probability_is_multiplied_by_the_colour_compatibility():
    logits = torch.tensor([-12.0, -2.0, 0.0, 3.0, 12.0])
    for factor in (1e-4, 0.1, 0.5, 0.98):
        combined = ColourAttributeScores.combine(logits, torch.tensor(math.log(factor)))
        assert torch.allclose(combined.sigmoid(), logits.sigmoid() * factor, rtol=1e-3, atol=1e-7)
    # a saturated wrong-colour answer loses its score (adding the log to the logit would leave 12 - 2.3 = 9.7)
    assert ColourAttributeScores.combine(torch.tensor(12.0), torch.tensor(math.log(0.1))).sigmoid() < 0.11


def test_the_stated_colour_picks_the_mask_of_that_colour_and_no_colour_changes_nothing():
    red, blue = COLOUR_NAMES.index("red"), COLOUR_NAMES.index("blue")
    k = len(COLOUR_NAMES)
    masks = torch.stack([_one_hot_logits(red, k), _one_hot_logits(blue, k)])[None]  # (1, Q=2, K): red, blue
    says_red = _one_hot_logits(red, k + 1)[None, None]  # (1, R=1, K + 1)
    says_nothing = _one_hot_logits(k, k + 1)[None, None]
    red_score = ColourAttributeScores.compatibility(masks, says_red)[0, :, 0]
    assert red_score[0] > -1e-3 and red_score[1] < -20  # the red mask keeps its score, the blue one loses it
    assert torch.allclose(ColourAttributeScores.compatibility(masks, says_nothing), torch.zeros(1, 2, 1), atol=1e-3)
    # a uniform text head is log(p_none + (1 - p_none) p_mask(stated)), finite everywhere
    uniform = ColourAttributeScores.compatibility(masks, torch.zeros(1, 1, k + 1))
    assert torch.isfinite(uniform).all() and math.isclose(float(uniform[0, 0, 0]), math.log(2 / (k + 1)), rel_tol=1e-3)


def _run(model, processor, kinds):
    with torch.no_grad():
        return run_mixed(model, processor, kinds)[0]


def test_switched_on_over_trained_weights_the_scores_barely_move_and_it_survives_a_reload(tmp_path):
    loaded = build_random_model("tiny", seed=0)
    model, processor = loaded.model.eval(), loaded.processor
    kinds = ["refer", "class", "region"]
    before = _run(model, processor, kinds)
    model.config.decoder_config.colour_attributes = len(COLOUR_NAMES)
    model.mask_decoder.enable_colour_attributes(
        model.colour_attribute_dim(), len(COLOUR_NAMES), model.config.text_config.hidden_size
    )
    after = _run(model, processor, kinds)
    assert torch.equal(before.pred_masks, after.pred_masks)  # the masks never read it
    refer_row = before.prompt_logits[0, :, 0].sigmoid()
    # "no colour stated" at the start: each answer's probability is multiplied by about 0.98
    assert torch.allclose(after.prompt_logits[0, :, 0].sigmoid(), refer_row * 0.98, atol=0.01)
    assert torch.equal(before.prompt_logits[1:], after.prompt_logits[1:])  # class and region scores untouched
    assert after.colour_logits.shape[-1] == len(COLOUR_NAMES)
    assert after.refer_colour_logits.shape[-1] == len(COLOUR_NAMES) + 1

    with torch.no_grad():  # "trained": the text head states a colour, and the referring scores move
        model.mask_decoder.colour_attributes.text_head.bias.zero_()
    changed = _run(model, processor, kinds)
    assert not torch.allclose(changed.prompt_logits[0], before.prompt_logits[0], atol=0.05)

    model.save_pretrained(tmp_path / "ckpt")
    loaded.tokenizer.save_pretrained(tmp_path / "ckpt")
    reloaded = load_model(tmp_path / "ckpt", precision="fp32", device_map="cpu").model
    assert reloaded.config.decoder_config.colour_attributes == len(COLOUR_NAMES)
    assert torch.equal(_run(reloaded, processor, kinds).prompt_logits, changed.prompt_logits)


def test_the_text_targets_are_the_stated_colour_none_or_ignored():
    samples = [
        Sample("referring", expression="the red heart", stated_colour="red"),
        Sample("referring", expression="the heart", stated_colour=None),
        Sample("semantic", class_names=["heart"]),
    ]
    labels = stated_colour_labels(samples, ["refer", "refer", "class"])
    assert labels.tolist() == [COLOUR_NAMES.index("red"), len(COLOUR_NAMES), -100]


def test_a_run_switches_it_on_and_both_heads_learn(tmp_path):
    first = main(
        ["--preset", "tiny", "--steps", "1", "--batch-size", "1", "--output", str(tmp_path / "a")]
        + ["--tasks", "referring"]
    )
    assert json.loads((first / "config.json").read_text())["decoder_config"]["colour_attributes"] == 0
    second = main(
        ["--init", str(first), "--steps", "2", "--batch-size", "2", "--lr", "1e-3", "--warmup", "0"]
        + ["--colour-attributes", "pyramid", "--output", str(tmp_path / "b"), "--tasks", "referring", "panoptic"]
    )
    decoder_config = json.loads((second / "config.json").read_text())["decoder_config"]
    assert decoder_config["colour_attributes"] == len(COLOUR_NAMES)
    assert decoder_config["colour_attribute_features"] == "pyramid"
    rows = (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]
    logged = " ".join(rows)
    assert "loss_colour_text" in logged and "loss_colour_mask" in logged
    model = load_model(second, precision="fp32", device_map="cpu").model
    heads = model.mask_decoder.colour_attributes
    assert heads.mask_head[0].normalized_shape[0] == sum(model.pyramid.channels[:2])  # the pyramid's fine stages
    assert heads.text_head.weight.abs().sum() > 0  # trained away from its zero start


def test_the_attribute_tool_reports_what_the_heads_say(tmp_path):
    loaded = build_random_model("tiny", seed=0)
    loaded.model.config.decoder_config.colour_attributes = len(COLOUR_NAMES)
    model = loaded.model
    model.mask_decoder.enable_colour_attributes(
        model.colour_attribute_dim(), len(COLOUR_NAMES), model.config.text_config.hidden_size
    )
    loaded.model.save_pretrained(tmp_path / "ckpt")
    loaded.tokenizer.save_pretrained(tmp_path / "ckpt")
    report = load_tool("attribute_recognition").main(["--checkpoint", str(tmp_path / "ckpt"), "--scenes", "2"])
    heads = report["recognition"]["colour heads"]
    # untrained, the text head says "no colour stated" for every expression: right exactly on "the <shape>"
    shape_only = report["recognition"]["shape only"]["expressions"]
    asked = sum(
        report["recognition"][kind]["expressions"] for kind in ("colour and shape", "shape only", "colour only")
    )
    assert heads["text_accuracy"] == pytest.approx(shape_only / asked)
