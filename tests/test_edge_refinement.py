"""Mask edges move onto the image's own edges (``pipeline/edge_refinement.py``).

The decoder draws masks at stride 4, so an outline comes back a pixel or two off the object's; users expect the
mask to hug the object they see. The release's masks stay available: a checkpoint without settings (the
converter's, the ``3b`` preset) or ``refine_edges=False`` gives them unchanged.
"""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import load_tool

from hyperseg_lite import HyperSegConfig, build_random_model
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT, load_model
from hyperseg_lite.pipeline import HyperSegPipeline, Region
from hyperseg_lite.pipeline.edge_refinement import EdgeRefinement, refine_logits, refine_maps


def square_scene() -> tuple[torch.Tensor, torch.Tensor]:
    """A 64 x 64 grey image holding a red square (rows and columns 18-45): the (3, H, W) guide and the square."""
    square = torch.zeros((64, 64), dtype=torch.bool)
    square[18:46, 18:46] = True
    guide = torch.full((3, 64, 64), 0.5)
    guide[:, square] = torch.tensor([0.9, 0.1, 0.1])[:, None]
    return guide, square


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum())


def coarse(square: torch.Tensor, shift: int) -> torch.Tensor:
    """What a stride-4 decoder gives: the square moved by ``shift`` pixels, pooled to 16 x 16, upsampled again."""
    moved = torch.roll(square.float(), shifts=(shift, shift), dims=(0, 1))
    pooled = F.avg_pool2d(moved[None, None], 4)
    return F.interpolate(pooled, size=(64, 64), mode="bilinear", align_corners=False)[0]


def test_a_coarse_mask_moves_onto_the_objects_outline():
    guide, square = square_scene()
    probabilities = coarse(square, shift=2)
    before = iou(probabilities[0] > 0.5, square)
    after = iou(refine_maps(probabilities, guide, 17, 1e-3)[0] > 0.5, square)
    assert before < 0.9
    assert after > 0.97


def test_masks_of_one_image_are_refined_alike_whether_given_together_or_alone():
    guide, square = square_scene()
    stack = torch.cat([coarse(square, 2), coarse(square, -2), coarse(~square, 1)])  # more than one call's chunk
    together = refine_maps(stack.repeat(4, 1, 1), guide, 9, 1e-3)
    alone = torch.cat([refine_maps(m[None], guide, 9, 1e-3) for m in stack.repeat(4, 1, 1)])
    assert torch.allclose(together, alone, atol=1e-4)


def test_refined_logits_keep_their_sign_convention():
    guide, square = square_scene()
    logits = torch.logit(coarse(square, 2).clamp(0.01, 0.99))
    refined = refine_logits(logits, guide, 17, 1e-3)
    assert torch.isfinite(refined).all()
    assert torch.equal(refined > 0, refine_maps(logits.sigmoid(), guide, 17, 1e-3) > 0.5)
    assert iou(refined[0] > 0, square) > 0.97


@pytest.mark.parametrize("size, eps", [(8, 1e-3), (0, 1e-3), (9, 0.0), (9, -1.0)])
def test_bad_settings_are_refused_with_a_sentence(size, eps):
    with pytest.raises(ValueError, match="edge refinement needs"):
        EdgeRefinement(size, eps)


def test_the_release_settings_refine_nothing():
    assert HyperSegConfig.from_preset("3b").edge_refinement_size == 0
    assert EdgeRefinement.from_config(HyperSegConfig.from_preset("3b")) is None


@pytest.fixture(scope="module")
def pipes():
    loaded = build_random_model("tiny", seed=0)
    loaded.model.config.edge_refinement_size = 5
    return HyperSegPipeline(loaded), HyperSegPipeline(loaded, refine_edges=False)


def test_the_pipeline_takes_the_checkpoints_settings_and_can_switch_them_off(pipes):
    refining, release = pipes
    assert refining.edge_refinement == EdgeRefinement(5, refining.model.config.edge_refinement_eps)
    assert release.edge_refinement is None
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    regions = [Region(points=[[20, 20]]), Region(box=[4, 4, 30, 40])]
    ours, theirs = refining.interactive(image, regions), release.interactive(image, regions)
    assert ours.masks.shape == theirs.masks.shape
    assert (ours.scores == theirs.scores).all()  # the choice and its score do not change, only the edges
    semantic = refining.segment_classes(image, ["star", "ring", "sky"], mode="semantic")
    assert semantic.masks.sum(0).max() <= 1  # semantic labels stay one per pixel
    panoptic = refining.segment_classes(image, ["star", "ring", "sky"], mode="panoptic", stuff=["sky"])
    assert panoptic.masks.sum(0).max() <= 1


def test_the_window_scales_with_the_size_the_image_is_worked_on():
    edges = EdgeRefinement(13, 1e-3)
    same = SimpleNamespace(working_size=(200, 256), prepared=SimpleNamespace(resized_size=(200, 256)))
    twice = SimpleNamespace(working_size=(400, 512), prepared=SimpleNamespace(resized_size=(200, 256)))
    assert edges.window(same) == 13
    assert edges.window(twice) in (25, 27)


def test_the_val_tool_scores_each_setting_and_writes_the_best_into_the_checkpoint(tmp_path, capsys):
    tool = load_tool("edge_refinement")
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(EMBEDDED_CHECKPOINT, checkpoint, ignore=shutil.ignore_patterns("*.png", "*.csv", "*.md"))
    report = tool.main(
        ["--checkpoint", str(checkpoint), "--samples", "2", "--seeds", "0", "--sizes", "0", "9", "--eps", "1e-3"]
        + ["--write"]
    )
    assert [(row["size"], row["eps"]) for row in report["rows"]] == [(0, 0.0), (9, 1e-3)]
    best = max(report["rows"], key=lambda row: row["score"])
    assert "| size | eps | interactive mIoU_click |" in capsys.readouterr().out
    config = load_model(checkpoint).model.config
    assert config.edge_refinement_size == best["size"] == report["best"]["edge_refinement_size"]


def test_naming_is_confirmed_on_the_decoders_own_masks(pipes, monkeypatch):
    """Refinement moves edges; which names segmentation confirms stays what the decoder's masks say, even where
    refinement would take a class's every pixel away (here: all of them)."""
    refining, release = pipes
    monkeypatch.setattr(EdgeRefinement, "maps", lambda self, maps, image: torch.zeros_like(maps))
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    names = ["star", "ring", "sky", "circle"]
    assert not refining.segment_classes(image, names, mode="semantic", threshold=1e-6).labels
    confirmed = release.confirm_class_names(image, names, threshold=1e-6)
    assert confirmed and refining.confirm_class_names(image, names, threshold=1e-6) == confirmed


@pytest.mark.parametrize("height, width", [(1, 1), (2, 300), (33, 34), (513, 7)])
def test_images_smaller_than_the_window_are_refined_too(height, width):
    maps = torch.rand(3, height, width)
    out = refine_maps(maps, torch.rand(3, height, width), 33, 1e-4)
    assert out.shape == maps.shape and torch.isfinite(out).all()
