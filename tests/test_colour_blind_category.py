"""The colour-blind category head (training/colour_blind_category.py) and tools/refit_category_head.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import load_tool
from safetensors.torch import load_file
from torch import nn

from hyperseg_lite.data.vocabulary import CATEGORIES, COLOUR_NAMES
from hyperseg_lite.data.world import HELD_OUT_PAIRS, TRAIN_PAIRS
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline
from hyperseg_lite.training.colour_blind_category import (
    CategoryExamples,
    category_accuracy,
    distil_category_head,
    fit_category_head,
    fresh_head_like,
)


def _examples(pairs, count: int, rng, shape_noise: float = 0.5) -> CategoryExamples:
    """Features as the pooled ones look: the colour, clean, beside a noisy code of the category."""
    drawn = [pairs[i] for i in rng.integers(len(pairs), size=count)]
    category = np.asarray([CATEGORIES.index(c) for c, _ in drawn])
    colour = np.asarray([COLOUR_NAMES.index(k) for _, k in drawn])
    shape = np.eye(len(CATEGORIES))[category] + shape_noise * rng.standard_normal((count, len(CATEGORIES)))
    features = np.concatenate([np.eye(len(COLOUR_NAMES))[colour], shape], 1).astype(np.float32)
    return CategoryExamples(features, category, colour)


def _plain_and_blind(seed: int):
    """Synthetic train objects (training pairs) and held-out-pair objects; a plain and a colour-blind head."""
    rng = np.random.default_rng(seed)
    train, held_out = _examples(list(TRAIN_PAIRS), 2000, rng), _examples(list(HELD_OUT_PAIRS), 500, rng)
    width = len(COLOUR_NAMES) + len(CATEGORIES)
    template = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 32), nn.GELU(), nn.Linear(32, len(CATEGORIES)))
    plain = fit_category_head(fresh_head_like(template, 0), train, colour_adversary=0.0, steps=600)
    blind = fit_category_head(fresh_head_like(template, 0), train, colour_adversary=3.0, steps=600)
    return train, held_out, template, plain, blind


def test_the_colour_adversary_names_the_categories_of_pairs_never_seen_where_a_plain_head_rules_them_out():
    train, held_out, _, plain, blind = _plain_and_blind(0)
    assert category_accuracy(plain, held_out) < 0.4  # the colour says "not this category" for every unseen pair
    assert category_accuracy(blind, held_out) > category_accuracy(plain, held_out) + 0.25
    # as right on the unseen pairs as on the pairs it was fitted on: the shape alone decides
    assert category_accuracy(blind, held_out) > category_accuracy(blind, train) - 0.1


def test_a_head_distilled_to_the_blend_of_plain_and_colour_blind_answers_between_them_on_unseen_pairs():
    train, held_out, template, plain, blind = _plain_and_blind(1)
    blend = distil_category_head(fresh_head_like(template, 1), train, [(plain, 0.5), (blind, 0.5)], steps=600)
    accuracy = {name: category_accuracy(head, held_out) for name, head in (("plain", plain), ("blind", blind))}
    assert accuracy["plain"] + 0.05 < category_accuracy(blend, held_out) < accuracy["blind"] + 0.05
    assert category_accuracy(blend, train) >= category_accuracy(blind, train) - 0.02  # keeps the colour's help


def test_refit_changes_only_the_category_mask_head_and_leaves_the_resume_state_behind(tmp_path, capsys):
    out = tmp_path / "refit"
    report = load_tool("refit_category_head").main(
        [str(EMBEDDED_CHECKPOINT), "--output", str(out), "--train-scenes", "3", "--check-scenes", "2", "--steps", "5"]
    )
    old, new = load_file(EMBEDDED_CHECKPOINT / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(old) == set(new)
    changed = {key for key in old if not old[key].equal(new[key])}
    assert changed and all(key.startswith("mask_decoder.category_attributes.mask_head.") for key in changed)
    assert json.loads((out / "category_head_refit.json").read_text()) == report
    assert report["train_objects"] > 0 and set(report["accuracy_after"]) == {"val", "held_out"}
    assert not any((out / name).exists() for name in ("optimizer.pt", "trainer_state.json", "training_args.json"))
    HyperSegPipeline.from_pretrained(out)  # loads as a checkpoint
    assert "category right" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", str(EMBEDDED_CHECKPOINT)], "--output must be another folder"),
        (["--output", "elsewhere", "--blend", "1.5"], "--blend must be between 0 and 1"),
    ],
)
def test_refit_refuses_bad_arguments_in_one_sentence(extra, message, capsys):
    with pytest.raises(SystemExit):
        load_tool("refit_category_head").main([str(EMBEDDED_CHECKPOINT), *extra])
    assert message in capsys.readouterr().err


def test_refit_moves_the_head_onto_a_two_stream_pyramids_shape_stream(tmp_path):
    from hyperseg_lite import build_random_model
    from hyperseg_lite.configuration_hyperseg import conv_encoder_config
    from hyperseg_lite.loading import load_model

    shapes = conv_encoder_config("resnet", [8, 16, 16, 32], [1, 1, 1, 1], image_size=64)
    colours = conv_encoder_config("resnet", [4, 4, 8, 8], [1, 1, 1, 1], image_size=64)
    loaded = build_random_model("tiny2", pyramid_config=shapes, pyramid_colour_config=colours)
    model = loaded.model
    model.enable_attribute_scores("category", 12, "pixel_decoder")
    model.save_pretrained(tmp_path / "two")
    loaded.tokenizer.save_pretrained(tmp_path / "two")
    out = tmp_path / "refit"
    report = load_tool("refit_category_head").main(
        [str(tmp_path / "two"), "--output", str(out), "--source", "shape_stream", "--colour-adversary", "0"]
        + ["--train-scenes", "3", "--check-scenes", "2", "--steps", "5", "--min-iou", "0"]  # random masks
    )
    assert (report["source_before"], report["source"]) == ("pixel_decoder", "shape_stream")
    again = load_model(out, precision="fp32", device_map="cpu").model
    assert again.mask_decoder.attribute_sources["category"] == "shape_stream"
    assert again.mask_decoder.category_attributes.mask_head[1].in_features == sum(again.pyramid.shape_channels)
    old, new = load_file(tmp_path / "two" / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {key for key in old if not old[key].equal(new[key])}
    assert changed and all(key.startswith("mask_decoder.category_attributes.mask_head.") for key in changed)


def test_refit_onto_the_shape_stream_needs_a_two_stream_pyramid(capsys):
    with pytest.raises(SystemExit):
        load_tool("refit_category_head").main(
            [str(EMBEDDED_CHECKPOINT), "--output", "elsewhere", "--source", "shape_stream"]
        )
    assert "two-stream pyramid" in capsys.readouterr().err
