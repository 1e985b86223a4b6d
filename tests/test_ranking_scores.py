"""Category ranking scores (not in the release, modeling/ranking_scores.py; measured and not shipped): a ranking
question picks the first-ranked category among the objects the masks found (what else is there decides), an
expression without a ranking keeps its referring score, and the text head learns in a run."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import check_question_head_switch, with_attribute_groups

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.data.vocabulary import CATEGORIES
from hyperseg_lite.data.world import Sample, World
from hyperseg_lite.modeling.ranking_scores import RANKING_GROUP, CategoryRankingScores
from hyperseg_lite.train import main
from hyperseg_lite.training.attribute_supervision import ranking_labels

CORNERS = {"circle": 0, "square": 4, "hexagon": 6, "star": 10, "cross": 12}  # the ranking "most corners" learns


def _one_hot(index: int, size: int, sharp: float = 30.0) -> torch.Tensor:
    logits = torch.full((size,), -sharp)
    logits[index] = sharp
    return logits


def _tokens(categories: list[str | None]):
    """One mask token per entry on a 32 x 32 grid, side by side; None: a token that found nothing."""
    masks = torch.full((1, len(categories), 32, 32), -20.0)
    for k, name in enumerate(categories):
        if name is not None:
            masks[0, k, 2:8, 1 + 5 * k : 5 + 5 * k] = 20
    logits = torch.stack([_one_hot(CATEGORIES.index(name or "circle"), len(CATEGORIES)) for name in categories])
    return masks, logits[None]


def _most_corners(ranks: bool = True) -> torch.Tensor:
    ranking = torch.tensor([float(CORNERS.get(c, 0)) for c in CATEGORIES])
    return torch.cat([_one_hot(int(ranks), 2), ranking])[None, None]


def test_the_first_ranked_category_present_answers_whatever_else_is_there():
    scores = CategoryRankingScores(8, len(CATEGORIES))
    refer = torch.zeros(1, 5, 1)
    masks, categories = _tokens(["hexagon", "square", "circle", None, "hexagon"])
    picked = scores.combine(refer, masks, categories, _most_corners())[0, :, 0]
    assert picked[0] > 5 and picked[4] > 5 and picked[1] < -1 and picked[2] < -5  # both hexagon tokens answer
    assert picked[3] < -10  # a token that found nothing never does
    masks, categories = _tokens(["hexagon", "square", "star", None, "circle"])  # a star is there: it ranks first
    picked = scores.combine(refer, masks, categories, _most_corners())[0, :, 0]
    assert int(picked.argmax()) == 2 and picked[0] < -1


def test_without_a_ranking_the_referring_score_is_kept():
    scores = CategoryRankingScores(8, len(CATEGORIES))
    masks, categories = _tokens(["hexagon", "square", "star"])
    refer = torch.tensor([[[3.0], [-3.0], [1.0]]])
    kept = scores.combine(refer, masks, categories, _most_corners(ranks=False))
    assert torch.allclose(kept.sigmoid(), refer.sigmoid(), atol=1e-3)
    hidden, mask = torch.randn(1, 5, 8), torch.ones(1, 5, dtype=torch.bool)  # untrained: says "no ranking"
    untrained = scores.combine(refer, masks, categories, scores.text_logits(hidden, mask))
    assert torch.allclose(untrained.sigmoid(), refer.sigmoid(), atol=1e-3)


def test_the_text_targets_are_the_gate_the_answer_category_and_the_categories_present():
    samples = [
        Sample(
            "reasoning",
            expression="the object with the most corners",
            ranked_category="star",
            present_categories=["circle", "star"],
        ),
        Sample("reasoning", expression="which object has no corners?", present_categories=["circle"]),
        Sample("semantic", class_names=["star"]),
    ]
    gate, answer, present = ranking_labels(samples, ["refer", "refer", "class"])
    assert gate.tolist() == [1, 0, -100]
    assert answer.tolist() == [CATEGORIES.index("star"), -100, -100]
    assert present[0].nonzero().flatten().tolist() == sorted([CATEGORIES.index("circle"), CATEGORIES.index("star")])


def test_the_world_records_what_a_ranking_question_ranks():
    world, found = World("val", 0), 0
    for index in range(40):
        sample = world.sample("reasoning", index)
        assert sample.present_categories and set(sample.present_categories) <= set(CATEGORIES)
        if sample.ranked_category is not None:
            assert "most corners" in sample.expression and sample.ranked_category in sample.present_categories
            assert sample.ranked_category in sample.answer
            found += 1
    assert found > 3


def test_switched_on_over_trained_weights_no_answer_changes_and_it_survives_a_reload(tmp_path):
    loaded = with_attribute_groups("category")
    check_question_head_switch(tmp_path, loaded, "category_ranking", RANKING_GROUP, gate="gate_head")


def test_the_ranking_needs_the_category_attribute_scores():
    model = build_random_model("tiny", seed=0).model
    with pytest.raises(ValueError, match="category attribute scores"):
        model.mask_decoder.enable_category_ranking(model.config.text_config.hidden_size)


def test_a_run_switches_it_on_and_its_text_head_learns(tmp_path):
    run = main(
        ["--preset", "tiny", "--steps", "3", "--batch-size", "2", "--lr", "1e-3", "--warmup", "0"]
        + ["--category-attributes", "pixel_decoder", "--category-ranking"]
        + ["--output", str(tmp_path / "a"), "--tasks", "reasoning"]
    )
    assert json.loads((run / "config.json").read_text())["decoder_config"]["category_ranking"] is True
    assert "loss_category_ranking_text" in (tmp_path / "a" / "log.csv").read_text()
    ranking = load_model(run, precision="fp32", device_map="cpu").model.mask_decoder.category_ranking
    assert ranking.gate_head.weight.abs().sum() > 0  # trained away from its zero start
