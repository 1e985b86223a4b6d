"""The model package on the tiny preset: shapes, every prompt family, gradients, LoRA, save/load, 3b sizes."""

from __future__ import annotations

import pytest
import torch
from helpers import run_mixed

from hyperseg_lite import HyperSegConfig, HyperSegForSegmentation, TemporalState, build_random_model
from hyperseg_lite.constants import IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX, SEG_TOKEN_INDEX, TEMPORAL_TOKEN_INDEX
from hyperseg_lite.prompts import referring_prompt

run = run_mixed  # (model, processor, kinds, with_targets=False, state=None, seed=0) -> (output, batch, targets)


def test_presets_build_configs():
    for name in ("tiny", "lite", "3b"):
        config = HyperSegConfig.from_preset(name)
        assert config.preset == name
    with pytest.raises(ValueError, match="unknown preset"):
        HyperSegConfig.from_preset("huge")


def test_processor_expands_placeholders(tiny):
    processor = tiny.processor
    encoded = processor.encode(referring_prompt(), expression="the red star")
    ids = encoded.input_ids
    assert (ids == IMAGE_TOKEN_INDEX).sum() == processor.num_image_tokens
    assert (ids == TEMPORAL_TOKEN_INDEX).sum() == processor.num_latents
    assert (ids == SEG_TOKEN_INDEX).sum() == processor.num_queries
    refer_tokens = ids[encoded.refer_mask]
    assert refer_tokens[-1] == processor.seg_token_id  # expression followed by [SEG]
    assert processor.tokenizer.decode(refer_tokens[:-1]) == "the red star"
    # the answer is supervised, the instruction and the placeholders are not
    supervised = encoded.labels[encoded.labels >= 0]
    assert "Sure, the segmentation result is" in processor.tokenizer.decode(supervised)
    assert (encoded.labels[ids < 0] == -100).all()


def test_processor_rejects_bad_text(tiny):
    with pytest.raises(ValueError, match="empty"):
        tiny.processor.check_text("   \n ")
    with pytest.raises(ValueError, match="too long"):
        tiny.processor.check_text("a" * 10_000)


def test_tiny_forward_is_shaped(tiny):
    """Speed is measured in benchmarks/model_forward.py, not asserted here."""
    kinds = ["refer", "class"]
    with torch.no_grad():
        out, _, _ = run(tiny.model, tiny.processor, kinds)
    q = tiny.model.num_queries
    side = tiny.model.config.image_size // 4
    assert out.pred_masks.shape == (2, q, side, side)
    assert out.prompt_logits.shape[:2] == (2, q)
    assert out.prompt_kind == kinds
    assert out.prompt_valid[0].tolist()[:1] == [True] and out.prompt_valid[0, 1:].sum() == 0
    assert out.prompt_valid[1].sum() == 3  # helpers.encode_mixed gives row 1 three class names
    assert out.instance_embeddings.shape[:2] == (2, q)


@pytest.mark.parametrize(
    "kinds", [["refer", "refer", "refer"], ["class", "class"], ["region", "region"], ["refer", "class", "region"]]
)
def test_every_prompt_family_batched(tiny, kinds):
    with torch.no_grad():
        out, batch, _ = run(tiny.model, tiny.processor, kinds)
    assert out.prompt_kind == kinds
    assert torch.isfinite(out.pred_masks).all() and torch.isfinite(out.prompt_logits).all()
    for row, kind in enumerate(kinds):
        valid = int(out.prompt_valid[row].sum())
        expected = {
            "refer": 1,
            "class": int(batch["class_spans"][row].max()),
            "region": int((batch["input_ids"][row] == REGION_TOKEN_INDEX).sum()),
        }[kind]
        assert valid == expected


def test_batching_matches_single_prompts(tiny):
    """Right padding and positions: a prompt gives the same answer alone and in a mixed batch."""
    kinds = ["refer", "class"]
    with torch.no_grad():
        batched, _, _ = run(tiny.model, tiny.processor, kinds)
        alone, _, _ = run(tiny.model, tiny.processor, ["refer"])
    assert torch.allclose(batched.pred_masks[0], alone.pred_masks[0], atol=1e-4)
    assert torch.allclose(batched.prompt_logits[0, :, :1], alone.prompt_logits[0, :, :1], atol=1e-4)


def test_video_frame_pair_carries_state(tiny):
    with torch.no_grad():
        first, _, _ = run(tiny.model, tiny.processor, ["refer", "refer"], state=TemporalState(), seed=1)
        state = first.temporal_state
        assert state.num_frames == 1 and state.latents.shape[1] == tiny.model.config.perceiver_config.num_latents
        second, _, _ = run(tiny.model, tiny.processor, ["refer", "refer"], state=state, seed=2)
        fresh, _, _ = run(tiny.model, tiny.processor, ["refer", "refer"], state=None, seed=2)
    assert second.temporal_state.num_frames == 2
    # local injection and global aggregation change the second frame's result
    assert not torch.allclose(second.pred_masks, fresh.pred_masks)


def test_losses_and_gradients_reach_every_trainable_module():
    loaded = build_random_model("tiny", seed=1)
    model = loaded.model.train()
    kinds = ["refer", "class", "region"]
    out, _, targets = run(model, loaded.processor, kinds, with_targets=True)
    assert {"loss_text", "loss_cls", "loss_mask", "loss_dice"} <= set(out.loss_dict)
    out2, _, targets2 = run(model, loaded.processor, kinds, with_targets=True, state=out.temporal_state, seed=3)
    loss = out.loss + out2.loss + model.instance_association_loss(out, out2, targets, targets2)
    loss.backward()
    unused = (
        "mask_decoder.SEG_query_embed",
        "mask_decoder.box_embed",
        "mask_decoder.iou_head",  # kept for loading
        "mask_decoder.query_feat",  # replaced by the LLM's mask tokens, as in the release
        "perceiver.from_llm",  # video only: checked in test_local_injection_gets_gradient_through_two_frames
        "pixel_decoder.transformer.level_embed",  # reaches the loss only through the zero-initialised
        # offset/weight projections of deformable attention (Deformable DETR init): zero at step 0
        "llm.lm_head",
    )  # only sees answer tokens; checked below
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad
        and (p.grad is None or p.grad.abs().sum() == 0)
        and not n.startswith(unused)
        and "post_layernorm" not in n
        and f"layers.{model.config.vision_config.num_hidden_layers - 1}." not in n
    ]
    assert not missing, missing
    assert model.llm.lm_head.weight.grad is not None


def test_local_injection_gets_gradient_through_two_frames():
    loaded = build_random_model("tiny", seed=2)
    model = loaded.model.train()
    out, _, _ = run(model, loaded.processor, ["refer"], with_targets=True, state=TemporalState())
    out2, _, _ = run(model, loaded.processor, ["refer"], with_targets=True, state=out.temporal_state, seed=5)
    out2.loss.backward()
    assert model.perceiver.from_llm.weight.grad.abs().sum() > 0


def test_one_optimizer_step_lowers_the_loss():
    loaded = build_random_model("tiny", seed=3)
    model = loaded.model.train()
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        torch.manual_seed(0)  # same point samples every step: a fixed batch
        out, _, _ = run(model, loaded.processor, ["refer", "class"], with_targets=True)
        losses.append(out.loss.item())
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    assert losses[-1] < losses[0]


def test_conditional_gate_switch_changes_the_perceiver():
    plain = build_random_model("tiny", seed=0).model
    gated = build_random_model(
        "tiny",
        seed=0,
        perceiver_config=dict(
            num_latents=8, hidden_size=16, num_layers=3, num_heads=2, head_dim=8, conditional_gate=True
        ),
    ).model
    assert plain.perceiver.gates is None
    assert gated.perceiver.gates is not None and len(gated.perceiver.gates) == 3
    assert not any("gates" in n for n, _ in plain.named_parameters())


def test_lora_trains_and_merges():
    from peft import LoraConfig, get_peft_model

    loaded = build_random_model("tiny", seed=4)
    model = loaded.model
    config = LoraConfig(r=4, lora_alpha=8, target_modules=r".*llm\.model\.layers\.\d+\.self_attn\.(q_proj|v_proj)")
    peft_model = get_peft_model(model, config)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    optimizer = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=0.5)
    out, _, _ = run(peft_model, loaded.processor, ["refer"], with_targets=True)
    out.loss.backward()
    optimizer.step()
    peft_model.eval()
    with torch.no_grad():
        adapted, _, _ = run(peft_model, loaded.processor, ["refer"])
        merged_model = peft_model.merge_and_unload()
        merged, _, _ = run(merged_model, loaded.processor, ["refer"])
    assert isinstance(merged_model, HyperSegForSegmentation)
    assert not any("lora_" in n for n, _ in merged_model.named_parameters())
    assert torch.allclose(adapted.pred_masks, merged.pred_masks, atol=1e-4)


def test_save_load_round_trip_is_exact(tmp_path, tiny):
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    from hyperseg_lite import load_model

    loaded = load_model(tmp_path, precision="fp32", device_map="cpu")
    for (name, a), (_, b) in zip(tiny.model.state_dict().items(), loaded.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert loaded.tokenizer.convert_tokens_to_ids("[SEG]") == tiny.processor.seg_token_id
    with torch.no_grad():
        a, _, _ = run(tiny.model, tiny.processor, ["refer", "class"])
        b, _, _ = run(loaded.model, loaded.processor, ["refer", "class"])
    assert torch.equal(a.pred_masks, b.pred_masks) and torch.equal(a.prompt_logits, b.prompt_logits)


@pytest.mark.parametrize("precision", ["4bit", "8bit"])
def test_quantized_loading_on_cpu_is_close_to_fp32(tmp_path, precision):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    from hyperseg_lite import load_model

    # an LLM at least one quantization block (64) wide: bitsandbytes' CPU 4-bit kernel needs in_features >= 64
    text = dict(
        model_type="llama",
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=272,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
    )
    reference = build_random_model("tiny", seed=5, text_config=text)
    reference.model.save_pretrained(tmp_path)
    reference.tokenizer.save_pretrained(tmp_path)
    try:
        quantized = load_model(tmp_path, precision=precision, device_map="cpu")
    except (ImportError, RuntimeError) as error:  # pragma: no cover - depends on the bitsandbytes build
        pytest.skip(f"bitsandbytes cannot run {precision} here: {error}")
    linear_types = {type(m).__name__ for m in quantized.model.llm.modules()}
    assert ("Linear4bit" if precision == "4bit" else "Linear8bitLt") in linear_types
    assert type(quantized.model.mask_decoder.mask_embed.layers[0]).__name__ == "Linear"
    with torch.no_grad():
        a, _, _ = run(reference.model, reference.processor, ["refer"])
        b, _, _ = run(quantized.model, quantized.processor, ["refer"])
    error = (a.pred_masks - b.pred_masks).abs().mean() / a.pred_masks.abs().mean()
    assert error < 0.25, error


def test_3b_preset_on_meta_device_has_paper_size():
    from accelerate import init_empty_weights

    config = HyperSegConfig.from_preset("3b")
    with init_empty_weights():
        model = HyperSegForSegmentation(config)
    total = sum(p.numel() for p in model.parameters())
    assert 3.3e9 <= total <= 3.5e9, total
    assert all(p.device.type == "meta" for p in model.parameters())
