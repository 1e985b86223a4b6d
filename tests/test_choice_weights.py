"""research/tools/choice_weights.py: each row is what the evaluation scores with that weight.

0 is the release's rule."""

from __future__ import annotations

import json

import pytest
from helpers import load_tool

from hyperseg_lite import build_random_model
from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.tasks import evaluate_interactive, evaluate_vis, evaluate_vos
from hyperseg_lite.pipeline import HyperSegPipeline


def test_rows_match_the_evaluation_at_each_weight(tmp_path):
    tool = load_tool("choice_weights")
    loaded = build_random_model("tiny", seed=0)
    folder = tmp_path / "tiny"
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    out = tmp_path / "weights.json"
    rows = tool.main(
        [
            "--checkpoint",
            str(folder),
            "--seeds",
            "0",
            "--prompt-weights",
            "0",
            "10",
            "--tracking-weights",
            "0",
            "--track-rules",
            "match-classes",
            "--samples",
            "2",
            "--clips",
            "1",
            "--json",
            str(out),
        ]
    )
    assert [(r["weight"], r["value"]) for r in rows] == [
        ("prompt", 0.0),
        ("prompt", 10.0),
        ("tracking", 0.0),
        ("track_rule", "match-classes"),
    ]
    assert json.loads(out.read_text())["rows"] == rows
    world = World("val", 0, image_size=loaded.model.config.image_size)
    release = HyperSegPipeline(loaded, prompt_overlap_weight=0.0, tracking_overlap_weight=0.0)
    assert rows[0]["mIoU_box"] == pytest.approx(evaluate_interactive(release, world, 2)["mIoU_box"])
    assert rows[0]["mIoU_click"] == pytest.approx(rows[1]["mIoU_click"])  # clicks do not read the prompt weight
    tracking_off = HyperSegPipeline(loaded, tracking_overlap_weight=0.0)  # the prompt weight stays at its default
    assert rows[2]["vos_J&F"] == pytest.approx(evaluate_vos(tracking_off, world, 1)["J&F"])
    strict = HyperSegPipeline(loaded, track_match_classes=True)
    assert rows[3]["vis_AP"] == pytest.approx(evaluate_vis(strict, world, 1)["AP"])
