"""tools/class_threshold.py: replaying thresholds on cached outputs scores exactly what the pipeline would."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import load_tool

from hyperseg_lite import build_random_model
from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.tasks import evaluate_panoptic, evaluate_referring, evaluate_semantic
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


def test_referring_replay_equals_the_pipeline_at_each_threshold(tool):
    """Refusing offline below each threshold scores what ``pipe.refer`` at that threshold scores."""
    pipe = HyperSegPipeline(build_random_model("tiny", seed=0))
    world = World("val", 0, image_size=pipe.model.config.image_size)
    samples = 8  # with index 0-7 of the val split: no-target and real expressions both
    assert {world.sample("referring", i).no_target for i in range(samples)} == {True, False}
    first = world.sample("referring", 0)
    score = float(pipe.refer(first.image, first.expression, threshold=0.0).scores[0])
    # thresholds at and just above a real score: the answer to that sample changes between them
    report = tool.referring_sweep(pipe, world, samples, candidates=(0.0, score, min(score + 0.01, 1.0), 1.0))
    for row in report:
        pipe.model.config.referring_threshold = row["threshold"]
        expected = evaluate_referring(pipe, world, samples)
        for metric in ("cIoU", "gIoU", "no_target_accuracy", "target_accuracy"):
            assert row[metric] == pytest.approx(expected[metric], nan_ok=True), (row["threshold"], metric)
    assert report[-1]["no_target_accuracy"] == 1.0 and report[-1]["target_accuracy"] == 0.0  # 1.0 refuses all


def test_union_replay_equals_the_pipeline_at_each_union_threshold(tool):
    """The union sweep scores what ``pipe.refer`` scores with ``referring_union_threshold`` set to each value."""
    pipe = HyperSegPipeline(build_random_model("tiny", seed=0))
    pipe.model.config.referring_threshold = 0.0  # the random model's scores are low: every expression answers
    world = World("val", 0, image_size=pipe.model.config.image_size)
    report = tool.union_sweep(pipe, world, 6, candidates=(0.0, 0.2, 0.9))
    for row in report:
        pipe.model.config.referring_union_threshold = row["threshold"]
        expected = evaluate_referring(pipe, world, 6)
        assert row["cIoU"] == pytest.approx(expected["cIoU"]) and row["gIoU"] == pytest.approx(expected["gIoU"])


def test_prints_a_table_and_writes_the_best_values_into_the_checkpoint(tool, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(EMBEDDED_CHECKPOINT, checkpoint, ignore=shutil.ignore_patterns("*.png", "*.csv", "*.md"))
    out = tmp_path / "thresholds.json"
    report = tool.main(["--checkpoint", str(checkpoint), "--samples", "2", "--json", str(out), "--write"])
    assert json.loads(out.read_text()) == report
    assert len(report["semantic"]) == len(report["panoptic"]) == len(tool.CANDIDATES)
    best = report["best"]
    assert best["semantic_threshold"] in tool.CANDIDATES and best["segment_threshold"] in tool.CANDIDATES
    assert best["referring_threshold"] in tool.REFERRING_CANDIDATES
    printed = capsys.readouterr().out
    assert "| threshold | semantic mIoU | PQ |" in printed and "| threshold | referring cIoU | gIoU |" in printed
    config = load_model(checkpoint).model.config  # the edited config still loads, with the chosen values
    assert (config.semantic_threshold, config.segment_threshold, config.referring_threshold) == (
        best["semantic_threshold"],
        best["segment_threshold"],
        best["referring_threshold"],
    )


def test_the_referring_threshold_alone_leaves_the_class_thresholds_as_they_were(tool, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(EMBEDDED_CHECKPOINT, checkpoint, ignore=shutil.ignore_patterns("*.png", "*.csv", "*.md"))
    before = load_model(checkpoint).model.config
    report = tool.main(
        ["--checkpoint", str(checkpoint), "--samples", "2", "--kinds", "referring", "--write"]
        + ["--referring-candidates", "0.05", "0.99"]
    )
    assert "semantic" not in report and set(report["best"]) == {"referring_threshold"}
    assert "semantic mIoU" not in capsys.readouterr().out
    after = load_model(checkpoint).model.config
    assert (after.semantic_threshold, after.segment_threshold) == (before.semantic_threshold, before.segment_threshold)
    assert after.referring_threshold == report["best"]["referring_threshold"] in (0.05, 0.99)
