"""Region fine features (not in the release): a clicked point, box or scribble also averages the pixel decoder's
stride-4 features inside it, so two clicks in one cell of the global tower's coarse grid are told apart; a no-op
when switched on over trained weights, saved / loaded with the config switch, trained by a run."""

from __future__ import annotations

import json

import torch
from helpers import image_batch, run_mixed

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.train import main


def _two_clicks_in_one_global_cell(model, processor):
    """Pooled embeddings of two one-pixel clicks at opposite corners of the global grid's first cell."""
    pixels, global_pixels = image_batch(processor, 1)
    with torch.no_grad():
        features = model.encode_images(pixels, global_pixels)
    size = processor.config.image_size
    cell = size // int(features.global_tokens.shape[1] ** 0.5)
    masks = torch.zeros(2, size, size, dtype=torch.bool)
    masks[0, 0, 0] = True
    masks[1, cell - 1, cell - 1] = True
    with torch.no_grad():
        pooled, valid = model.pool_region_prompts(features, [masks])
    assert valid.all()
    return pooled[0]


def test_two_clicks_in_one_global_cell_differ_only_with_the_fine_features():
    loaded = build_random_model("tiny", seed=0)
    model, processor = loaded.model.eval(), loaded.processor
    plain = _two_clicks_in_one_global_cell(model, processor)
    assert torch.allclose(plain[0], plain[1])  # the global grid alone cannot tell them apart

    model.enable_region_fine_features()
    with torch.no_grad():  # "trained"
        torch.nn.init.normal_(model.region_fine.out.weight)
    fine = _two_clicks_in_one_global_cell(model, processor)
    assert not torch.allclose(fine[0], fine[1], atol=1e-4)


def test_switching_it_on_over_trained_weights_changes_nothing_until_trained(tmp_path):
    loaded = build_random_model("tiny", seed=0)
    model, processor = loaded.model.eval(), loaded.processor
    kinds = ["region", "refer", "region"]
    with torch.no_grad():
        before = run_mixed(model, processor, kinds)[0]
        model.enable_region_fine_features()
        assert model.config.region_fine_features
        after = run_mixed(model, processor, kinds)[0]
    assert torch.equal(before.prompt_logits, after.prompt_logits) and torch.equal(before.pred_masks, after.pred_masks)

    with torch.no_grad():
        torch.nn.init.normal_(model.region_fine.out.weight)
        changed = run_mixed(model, processor, kinds)[0]
    assert not torch.allclose(changed.prompt_logits[0], before.prompt_logits[0])  # a region prompt's scores move
    assert torch.equal(changed.prompt_logits[1], before.prompt_logits[1])  # the referring prompt's do not

    model.save_pretrained(tmp_path / "ckpt")
    loaded.tokenizer.save_pretrained(tmp_path / "ckpt")
    reloaded = load_model(tmp_path / "ckpt", precision="fp32", device_map="cpu").model
    assert reloaded.config.region_fine_features and reloaded.region_fine is not None
    with torch.no_grad():
        reloaded_logits = run_mixed(reloaded, processor, kinds)[0].prompt_logits
    # the same weights; bit-for-bit equality across a reload depends on the CPU's kernels (it fails on AMD EPYC)
    assert torch.allclose(reloaded_logits, changed.prompt_logits, rtol=1e-5, atol=1e-6)


def test_a_run_switches_it_on_and_trains_it(tmp_path):
    first = main(
        ["--preset", "tiny", "--steps", "1", "--batch-size", "1", "--output", str(tmp_path / "a")]
        + ["--tasks", "interactive"]
    )
    assert json.loads((first / "config.json").read_text())["region_fine_features"] is False
    second = main(
        ["--init", str(first), "--steps", "2", "--batch-size", "2", "--region-fine-features", "--lr", "1e-3"]
        + ["--output", str(tmp_path / "b"), "--tasks", "interactive"]
    )
    assert json.loads((second / "config.json").read_text())["region_fine_features"] is True
    model = load_model(second, precision="fp32", device_map="cpu").model
    assert model.region_fine.out.weight.abs().sum() > 0  # trained away from its zero start
