"""Colour relation scores (not in the release, modeling/relation_scores.py): "the same colour as the <anchor>"
picks the other objects of the anchor's colour, an expression without the relation keeps its referring score,
switching them on over trained weights changes no answer, the text head learns from its own targets in a run
and in tools/fit_question_heads.py (tests/test_ranking_scores.py), and the switch is saved with the config."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import check_question_head_switch, with_attribute_groups

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.data.vocabulary import CATEGORIES, COLOUR_NAMES
from hyperseg_lite.data.world import Sample, World
from hyperseg_lite.modeling.relation_scores import RELATION_GROUP, ColourRelationScores
from hyperseg_lite.train import main
from hyperseg_lite.training.attribute_supervision import relation_labels


def _one_hot(index: int, size: int, sharp: float = 30.0) -> torch.Tensor:
    logits = torch.full((size,), -sharp)
    logits[index] = sharp
    return logits


def _scene():
    """Four mask tokens on a 32 x 32 grid: a red ring (the anchor), a red star, a blue star, an empty token."""
    masks = torch.full((1, 4, 32, 32), -20.0)
    masks[0, 0, 2:10, 2:10] = 20  # ring, top left
    masks[0, 1, 20:30, 2:10] = 20  # red star, bottom left
    masks[0, 2, 2:10, 20:30] = 20  # blue star, top right
    red, blue = COLOUR_NAMES.index("red"), COLOUR_NAMES.index("blue")
    ring, star = CATEGORIES.index("ring"), CATEGORIES.index("star")
    colours = torch.stack([_one_hot(c, len(COLOUR_NAMES)) for c in (red, red, blue, red)])[None]
    categories = torch.stack([_one_hot(c, len(CATEGORIES)) for c in (ring, star, star, ring)])[None]
    return masks, colours, categories


def _text(relation: bool, anchor: str) -> torch.Tensor:
    return torch.cat([_one_hot(int(relation), 2), _one_hot(CATEGORIES.index(anchor), len(CATEGORIES))])[None, None]


def test_the_same_colour_as_the_anchor_picks_the_other_object_of_its_colour():
    scores = ColourRelationScores(8, len(CATEGORIES))
    masks, colours, categories = _scene()
    refer = torch.tensor([[[3.0], [-3.0], [2.0], [4.0]]])  # the referring score likes the wrong tokens
    combined = scores.combine(refer, masks, colours, categories, _text(True, "ring"))[0, :, 0]
    assert int(combined.argmax()) == 1  # the red star: red like the ring, and not the ring itself
    assert combined[1] > 2 and combined[0] < -5 and combined[2] < -5 and combined[3] < -5  # the empty token: none
    answer, stated = scores.relation_probability(masks, colours, categories, _text(True, "ring"))
    assert float(stated) > 0.99 and float(answer[0, 1, 0]) > 0.95


def test_without_the_relation_the_referring_score_is_kept():
    scores = ColourRelationScores(8, len(CATEGORIES))
    masks, colours, categories = _scene()
    refer = torch.tensor([[[3.0], [-3.0], [2.0], [4.0]]])
    kept = scores.combine(refer, masks, colours, categories, _text(False, "ring"))
    assert torch.allclose(kept, refer, atol=1e-3)
    # as built (before training) its text head says "no relation" whatever it reads: no probability moves
    hidden, mask = torch.randn(1, 5, 8), torch.ones(1, 5, dtype=torch.bool)
    untrained = scores.combine(refer, masks, colours, categories, scores.text_logits(hidden, mask))
    assert torch.allclose(untrained.sigmoid(), refer.sigmoid(), atol=1e-3)


def test_an_anchor_no_mask_found_leaves_the_answer_to_the_referring_score():
    scores = ColourRelationScores(8, len(CATEGORIES))
    masks, colours, categories = _scene()
    refer = torch.tensor([[[3.0], [-3.0], [2.0], [4.0]]])
    hidden = scores.combine(refer, masks, colours, categories, _text(True, "heart"))  # no token is a heart
    assert torch.allclose(hidden.sigmoid(), refer.sigmoid(), atol=1e-3)


def test_an_expression_about_a_thing_outside_the_world_gets_no_relation_answer():
    scores = ColourRelationScores(8, len(CATEGORIES))
    masks, colours, categories = _scene()
    refer = torch.full((1, 4, 1), -12.0)  # the referring score already found nothing
    vetoed = scores.combine(refer, masks, colours, categories, _text(True, "ring"), outside=torch.ones(1, 1, 1))
    assert (vetoed.sigmoid() < 1e-4).all()  # "a toothbrush" read as a relation still finds nothing
    allowed = scores.combine(refer, masks, colours, categories, _text(True, "ring"), outside=torch.zeros(1, 1, 1))
    assert float(allowed[0, 1, 0]) > 2


def test_the_text_targets_are_the_relation_and_its_anchor_or_ignored():
    samples = [
        Sample("reasoning", expression="what shape is the same colour as the ring?", colour_anchor_category="ring"),
        Sample("reasoning", expression="the object with the most corners"),
        Sample("referring", expression="the red star"),
        Sample("semantic", class_names=["star"]),
    ]
    relation, anchor = relation_labels(samples, ["refer", "refer", "refer", "class"])
    assert relation.tolist() == [1, 0, 0, -100]
    assert anchor.tolist() == [CATEGORIES.index("ring"), -100, -100, -100]


def test_the_world_records_the_anchor_of_each_colour_relation_question():
    world, found = World("val", 0), 0
    for index in range(40):
        sample = world.sample("reasoning", index)
        if "same colour as" in sample.expression:
            assert sample.expression.endswith(f"the {sample.colour_anchor_category}?")
            found += 1
        else:
            assert sample.colour_anchor_category is None
    assert found > 3


def test_switched_on_over_trained_weights_no_answer_changes_and_it_survives_a_reload(tmp_path):
    loaded = with_attribute_groups("colour", "category")
    check_question_head_switch(tmp_path, loaded, "colour_relation", RELATION_GROUP, gate="relation_head")


def test_the_relation_needs_both_attribute_groups():
    model = build_random_model("tiny", seed=0).model
    with pytest.raises(ValueError, match="colour and category attribute scores"):
        model.mask_decoder.enable_colour_relation(model.config.text_config.hidden_size)


def test_a_run_switches_it_on_and_its_text_head_learns(tmp_path):
    run = main(
        ["--preset", "tiny", "--steps", "3", "--batch-size", "2", "--lr", "1e-3", "--warmup", "0"]
        + ["--colour-attributes", "pyramid", "--category-attributes", "pixel_decoder", "--colour-relation"]
        + ["--output", str(tmp_path / "a"), "--tasks", "reasoning", "referring"]
    )
    assert json.loads((run / "config.json").read_text())["decoder_config"]["colour_relation"] is True
    assert "loss_colour_relation_text" in (tmp_path / "a" / "log.csv").read_text()
    relation = load_model(run, precision="fp32", device_map="cpu").model.mask_decoder.colour_relation
    assert relation.relation_head.weight.abs().sum() > 0  # trained away from its zero start
