"""tools/class_threshold.py: replaying thresholds on cached outputs scores exactly what the pipeline would."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import load_tool

from hyperseg_lite import build_random_model
from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.tasks import evaluate_panoptic, evaluate_semantic
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT, load_model
from hyperseg_lite.pipeline import HyperSegPipeline


@pytest.fixture(scope="module")
def tool():
    return load_tool("class_threshold")


def test_replay_equals_the_pipeline_at_each_threshold(tool):
    pipe = HyperSegPipeline(build_random_model("tiny", seed=0))
    world = World("val", 0, image_size=pipe.model.config.image_size)
    report = tool.sweep(pipe, world, samples=2, candidates=(0.0, 0.3))
    for row in report["semantic"]:
        pipe.model.config.semantic_threshold = row["threshold"]
        assert row["mIoU"] == pytest.approx(evaluate_semantic(pipe, world, 2)["mIoU"], nan_ok=True)
    for row in report["panoptic"]:
        pipe.model.config.segment_threshold = row["threshold"]
        assert row["PQ"] == pytest.approx(evaluate_panoptic(pipe, world, 2)["PQ"], nan_ok=True)


def test_prints_a_table_and_writes_the_best_values_into_the_checkpoint(tool, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(EMBEDDED_CHECKPOINT, checkpoint, ignore=shutil.ignore_patterns("*.png", "*.csv", "*.md"))
    out = tmp_path / "thresholds.json"
    report = tool.main(["--checkpoint", str(checkpoint), "--samples", "2", "--json", str(out), "--write"])
    assert json.loads(out.read_text()) == report
    assert len(report["semantic"]) == len(report["panoptic"]) == len(tool.CANDIDATES)
    best = report["best"]
    assert best["semantic_threshold"] in tool.CANDIDATES and best["segment_threshold"] in tool.CANDIDATES
    assert "| threshold | semantic mIoU | PQ |" in capsys.readouterr().out
    config = load_model(checkpoint).model.config  # the edited config still loads, with the chosen values
    assert (config.semantic_threshold, config.segment_threshold) == (
        best["semantic_threshold"],
        best["segment_threshold"],
    )
