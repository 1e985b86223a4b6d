"""Mask-pooled scores (not in the release): a weighted mean under each token's own mask, a no-op when switched on
over trained weights, a path for the scores' gradient into the pixel features (not the masks), and saved /
loaded with the config switch."""

from __future__ import annotations

import json

import torch
from helpers import run_mixed

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.modeling.mask_pooling import MaskPooledFeatures, masked_mean
from hyperseg_lite.train import main


def test_the_pool_is_the_mean_of_the_features_under_each_mask():
    features = torch.zeros(1, 2, 4, 4)
    features[0, 0, :2] = 3.0  # top half reads 3 in channel 0
    features[0, 1, 2:] = 5.0  # bottom half reads 5 in channel 1
    logits = torch.full((1, 2, 4, 4), -30.0)
    logits[0, 0, :2] = 30.0  # token 0: the top half
    logits[0, 1, 2:] = 30.0  # token 1: the bottom half
    pooled = masked_mean(logits, features)
    assert torch.allclose(pooled[0], torch.tensor([[3.0, 0.0], [0.0, 5.0]]), atol=1e-4)
    empty = masked_mean(torch.full((1, 1, 4, 4), -1e4), features)  # no foreground anywhere: finite, not NaN
    assert torch.isfinite(empty).all()


def test_the_scores_gradient_reaches_the_features_and_not_the_masks():
    module = MaskPooledFeatures(3, 8)
    torch.nn.init.normal_(module.out.weight)  # "trained"
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    features = torch.randn(1, 3, 4, 4, requires_grad=True)
    module(logits, features).sum().backward()
    assert logits.grad is None and features.grad.abs().sum() > 0


def _run(model, processor, kinds):
    with torch.no_grad():
        return run_mixed(model, processor, kinds)[0]


def test_switching_it_on_over_trained_weights_changes_nothing_until_trained(tmp_path):
    loaded = build_random_model("tiny", seed=0)
    model, processor = loaded.model.eval(), loaded.processor
    kinds = ["refer", "class", "region"]
    before = _run(model, processor, kinds)
    model.config.decoder_config.mask_pooled_scores = True
    model.mask_decoder.enable_mask_pooled_scores(model.mask_pooled_dim())
    assert isinstance(model.mask_decoder.mask_pooled, MaskPooledFeatures)
    after = _run(model, processor, kinds)
    assert torch.equal(before.prompt_logits, after.prompt_logits) and torch.equal(before.pred_masks, after.pred_masks)

    with torch.no_grad():  # now "trained": the scores move, the masks do not
        torch.nn.init.normal_(model.mask_decoder.mask_pooled.out.weight)
    changed = _run(model, processor, kinds)
    assert torch.equal(changed.pred_masks, before.pred_masks)
    assert not torch.allclose(changed.prompt_logits, before.prompt_logits)

    model.save_pretrained(tmp_path / "ckpt")
    loaded.tokenizer.save_pretrained(tmp_path / "ckpt")
    reloaded = load_model(tmp_path / "ckpt", precision="fp32", device_map="cpu").model
    assert reloaded.config.decoder_config.mask_pooled_scores
    assert torch.equal(_run(reloaded, processor, kinds).prompt_logits, changed.prompt_logits)


def test_a_run_switches_it_on_and_trains_it(tmp_path):
    first = main(
        ["--preset", "tiny", "--steps", "1", "--batch-size", "1", "--output", str(tmp_path / "a")]
        + ["--tasks", "referring"]
    )
    assert json.loads((first / "config.json").read_text())["decoder_config"]["mask_pooled_scores"] is False
    second = main(
        ["--init", str(first), "--steps", "2", "--batch-size", "2", "--mask-pooled-scores", "pyramid", "--lr", "1e-3"]
        + ["--output", str(tmp_path / "b"), "--tasks", "referring", "semantic"]
    )
    decoder_config = json.loads((second / "config.json").read_text())["decoder_config"]
    assert decoder_config["mask_pooled_scores"] is True and decoder_config["mask_pooled_features"] == "pyramid"
    model = load_model(second, precision="fp32", device_map="cpu").model
    pooled = model.mask_decoder.mask_pooled
    assert pooled is not None and pooled.out.weight.abs().sum() > 0  # trained away from its zero start
    assert pooled.in_dim == sum(model.pyramid.channels[:2])  # it reads the pyramid's two fine stages
