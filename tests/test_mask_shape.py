"""The mask-shape embedding (not in the release): boxes, size- and position-free crops, a no-op when switched on
over trained weights, and saved / loaded with the config switch."""

from __future__ import annotations

import torch
from helpers import encode_mixed, image_batch, run_mixed

from hyperseg_lite import build_random_model, load_model
from hyperseg_lite.modeling.mask_shape import MaskShapeEncoder, crop_to_grid, mask_boxes


def test_boxes_are_tight_and_an_empty_mask_gets_the_whole_map():
    masks = torch.zeros(2, 10, 12, dtype=torch.bool)
    masks[0, 2:5, 3:9] = True
    assert mask_boxes(masks).tolist() == [[3.0, 2.0, 9.0, 5.0], [0.0, 0.0, 12.0, 10.0]]


def test_the_crop_sees_the_outline_whatever_the_size_and_place():
    def triangle(size: int, top: int, left: int) -> torch.Tensor:
        canvas = torch.zeros(64, 64)
        for row in range(size):
            canvas[top + row, left : left + row + 1] = 1.0
        return canvas

    small, large = triangle(12, 5, 40), triangle(36, 20, 4)
    maps = torch.stack([small, large])
    crops = crop_to_grid(maps, mask_boxes(maps > 0.5), 8)
    assert (crops[0] - crops[1]).abs().mean() < 0.1  # the same triangle, 3x larger and elsewhere
    assert crops[0, 0, -1] < 0.2 and crops[0, -1, 0] > 0.8  # empty top-right corner, full bottom-left
    assert not torch.allclose(crops[0], crops[0].flip(-1), atol=0.3)  # and its mirror image differs


def test_switching_it_on_over_trained_weights_changes_nothing_until_trained(tmp_path):
    loaded = build_random_model("tiny", seed=0)
    model, processor = loaded.model.eval(), loaded.processor
    kinds = ["refer", "class", "region"]

    def run(m):
        with torch.no_grad():
            return run_mixed(m, processor, kinds)[0]

    before = run(model)
    model.config.decoder_config.mask_shape_embedding = True
    model.mask_decoder.enable_mask_shape()
    assert isinstance(model.mask_decoder.mask_shape, MaskShapeEncoder)
    after = run(model)
    assert torch.equal(before.prompt_logits, after.prompt_logits) and torch.equal(before.pred_masks, after.pred_masks)

    with torch.no_grad():  # now "trained": the scores move, the masks do not
        model.mask_decoder.mask_shape.out.bias.fill_(0.5)
    changed = run(model)
    assert torch.equal(changed.pred_masks, before.pred_masks)
    assert not torch.allclose(changed.prompt_logits, before.prompt_logits)

    model.save_pretrained(tmp_path / "ckpt")
    loaded.tokenizer.save_pretrained(tmp_path / "ckpt")
    reloaded = load_model(tmp_path / "ckpt", precision="fp32", device_map="cpu").model
    assert reloaded.config.decoder_config.mask_shape_embedding
    assert torch.equal(run(reloaded).prompt_logits, changed.prompt_logits)


def test_inference_scores_only_the_last_layer_and_answers_the_same():
    """``segment(aux_scores=False)``, what the pipeline runs: the earlier layers' scores (and their mask-shape
    embeddings) feed only the auxiliary losses, so leaving them out must change no mask and no final score."""
    loaded = build_random_model("tiny", seed=0)
    model, processor = loaded.model.eval(), loaded.processor
    model.mask_decoder.enable_mask_shape()
    with torch.no_grad():
        model.mask_decoder.mask_shape.out.bias.fill_(0.5)  # a "trained" embedding, so it moves the scores
    kinds = ["refer", "class", "region"]
    batch, region_masks = encode_mixed(processor, kinds)
    pixels, global_pixels = image_batch(processor, len(kinds))
    calls = []
    model.mask_decoder.mask_shape.register_forward_hook(lambda *_: calls.append(1))

    def run(aux_scores):
        calls.clear()
        with torch.no_grad():
            features = model.encode_images(pixels, global_pixels)
            out, _ = model.segment(
                features,
                batch["input_ids"],
                batch["attention_mask"],
                batch["class_spans"],
                batch["refer_mask"],
                region_masks,
                aux_scores=aux_scores,
            )
        return out, len(calls)

    full, full_calls = run(True)
    lean, lean_calls = run(False)
    assert torch.equal(full.pred_masks, lean.pred_masks) and torch.equal(full.prompt_logits, lean.prompt_logits)
    assert full_calls == model.config.decoder_config.num_layers + 1 and lean_calls == 1
    assert len(full.aux_outputs) == model.config.decoder_config.num_layers and lean.aux_outputs == []
