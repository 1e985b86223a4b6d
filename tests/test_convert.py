"""The official HyperSeg-3B layout: the name table covers the release, and a tiny official-layout checkpoint
converts, loads (fp32 and 4-bit) and answers exactly like the model it was written from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hyperseg_lite import HyperSegConfig, HyperSegForSegmentation, load_model
from hyperseg_lite.convert import ConversionError, convert_checkpoint, read_tensors
from hyperseg_lite.convert import main as convert_main
from hyperseg_lite.loading import CheckpointNotFound
from hyperseg_lite.official_names import UnmappedKeysError, convert_state_dict, drop_reason, map_name, to_official
from hyperseg_lite.prompts import referring_prompt
from hyperseg_lite.tokenization import build_byte_tokenizer

PARAMS_TSV = Path(__file__).resolve().parents[1] / "docs" / "hyperseg3b_official_params.tsv"  # the repo's copy


def official_rows():
    lines = PARAMS_TSV.read_text().splitlines()[1:]
    return [(name, tuple(int(d) for d in shape.split("x"))) for name, shape, _ in (l.split("\t") for l in lines if l)]


def test_name_table_covers_every_line_of_the_release():
    from accelerate import init_empty_weights

    rows = official_rows()
    assert len(rows) == 1636
    dropped = [name for name, _ in rows if drop_reason(name)]
    assert len(dropped) == 11 + 24  # SigLIP head, Swin relative_position_index buffers
    for name, _ in rows:
        assert map_name(name) is None or map_name(name)[0]
    with init_empty_weights():
        model = HyperSegForSegmentation(HyperSegConfig.from_preset("3b"))
    expected = {k: v.shape for k, v in model.state_dict().items()}
    fake = {name: torch.empty(shape, device="meta", dtype=torch.float16) for name, shape in rows}
    converted = convert_state_dict(fake, expected)  # raises with a list on any gap or shape mismatch
    assert set(converted) == set(expected)


# ---------------------------------------------------------------- a tiny checkpoint in the official layout
def tiny_official_config() -> HyperSegConfig:
    """Sizes that respect the release's fixed choices (decoder heads 8, perceiver head width 64, GroupNorm 32,
    Swin window 12, SigLIP head width 72), so they can be read back from tensor shapes."""
    tokenizer = build_byte_tokenizer()
    return HyperSegConfig(
        preset="tiny-official",
        text_config=dict(
            model_type="phi",
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            vocab_size=272,
            partial_rotary_factor=0.4,
            layer_norm_eps=1e-5,
            hidden_act="gelu_new",
            max_position_embeddings=2048,
            tie_word_embeddings=False,
            rope_theta=10000.0,
        ),
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=72,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=1,
            image_size=56,
            patch_size=14,
            vision_use_head=False,
        ),
        pyramid_config=dict(
            model_type="swin",
            image_size=1024,
            embed_dim=32,
            depths=[1, 1, 2, 1],
            num_heads=[1, 2, 4, 8],
            window_size=12,
            out_features=["stage1", "stage2", "stage3", "stage4"],
        ),
        perceiver_config=dict(num_latents=8, hidden_size=64, num_layers=3, num_heads=1, head_dim=64, ff_mult=4),
        decoder_config=dict(
            hidden_dim=32,
            num_queries=6,
            num_heads=8,
            dim_feedforward=64,
            num_layers=3,
            mask_dim=32,
            pixel_decoder_layers=1,
            pixel_decoder_ffn=64,
            num_points=4,
            num_groups=32,
        ),
        image_size=1024,
        seg_token_id=tokenizer.convert_tokens_to_ids("[SEG]"),
    )


LLM_PREFIXES = (
    "model.layers.",
    "model.embed_tokens",
    "model.final_layernorm",
    "lm_head",
    "model.vision_tower.",
    "model.mm_projector",
    "region_projector",
)  # stored in fp16 in the release (see the .md)


def write_official(folder: Path, model: HyperSegForSegmentation, official_vocab: int) -> dict[str, torch.Tensor]:
    """Write ``model`` as the release would: official names, 2 shards + index, fp16/fp32 mix, mipha config."""
    folder.mkdir(parents=True)
    tensors = to_official({k: v.detach().clone() for k, v in model.state_dict().items()}, official_vocab)
    swin_layers = model.config.pyramid_config.depths
    for stage, depth in enumerate(swin_layers):  # the release saves these buffers too
        for block in range(depth):
            tensors[f"model.vision_tower_mask.layers.{stage}.blocks.{block}.attn.relative_position_index"] = (
                torch.zeros(144, 144, dtype=torch.int64)
            )
    tensors = {
        k: (v.half() if k.startswith(LLM_PREFIXES) and v.is_floating_point() else v).contiguous()
        for k, v in tensors.items()
    }
    names = sorted(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(folder / file), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    text = model.config.text_config
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "mipha_phi",
                "architectures": ["HyperSeg"],
                "hidden_size": text.hidden_size,
                "intermediate_size": text.intermediate_size,
                "num_hidden_layers": text.num_hidden_layers,
                "num_attention_heads": text.num_attention_heads,
                "partial_rotary_factor": 0.4,
                "layer_norm_eps": 1e-5,
                "hidden_act": "gelu_new",
                "vocab_size": official_vocab,
                "mm_vision_tower": "tiny-test-siglip",
                "mm_projector_type": "mlp2x_gelu",
                "swin_type": "base",
                "mask_decode_train": True,
                "torch_dtype": "float16",
            }
        )
    )
    tokenizer = build_byte_tokenizer()
    tokenizer.save_pretrained(folder)
    (folder / "added_tokens.json").write_text(json.dumps({"[SEG]": tokenizer.convert_tokens_to_ids("[SEG]")}))
    return tensors


@pytest.fixture(scope="module")
def official_folder(tmp_path_factory):
    torch.manual_seed(0)
    model = HyperSegForSegmentation(tiny_official_config()).eval()
    folder = tmp_path_factory.mktemp("official") / "HyperSeg-tiny"
    write_official(folder, model, official_vocab=258)
    # the reference: the same weights after the fp16 round trip the file imposes, lm_head bias zero
    reference = HyperSegForSegmentation(tiny_official_config()).eval()
    state = model.state_dict()
    for name, value in state.items():
        if name.startswith(("llm.", "global_vision.")) or name.startswith("entity_recognition.region_projector"):
            state[name] = value.half().float()
    state["llm.lm_head.bias"] = torch.zeros_like(state["llm.lm_head.bias"])
    state["llm.model.embed_tokens.weight"][258:] = 0
    reference.load_state_dict(state)
    return folder, reference


def query(model, processor):
    image = torch.randint(0, 256, (90, 120, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    prepared = processor.prepare_image(image)
    batch = processor.collate([processor.encode(referring_prompt(), expression="the red star")])
    with torch.no_grad():
        features = model.encode_images(prepared.pixel_values[None], prepared.global_pixel_values[None])
        out, _ = model.segment(features, batch["input_ids"], batch["attention_mask"], refer_mask=batch["refer_mask"])
    return out


def test_tiny_official_checkpoint_converts_and_matches(official_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    folder, reference = official_folder
    loaded = load_model(folder, precision="fp32", device_map="cpu")
    assert loaded.model.config.perceiver_config.conditional_gate is False  # follows the released code
    converted, expected = query(loaded.model, loaded.processor), query(reference, loaded.processor)
    assert torch.allclose(converted.pred_masks, expected.pred_masks, atol=1e-5)
    assert torch.allclose(converted.prompt_logits, expected.prompt_logits, atol=1e-5)
    assert any((tmp_path / "hf" / "hyperseg_lite" / "converted").iterdir())  # converted once, cached


def test_tiny_official_checkpoint_in_4bit(official_folder, tmp_path, monkeypatch):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    folder, reference = official_folder
    loaded = load_model(folder, precision="4bit", device_map="cpu")
    assert "Linear4bit" in {type(m).__name__ for m in loaded.model.llm.modules()}
    out = query(loaded.model, loaded.processor)
    expected = query(reference, loaded.processor)
    error = (out.pred_masks - expected.pred_masks).abs().mean() / expected.pred_masks.abs().mean()
    assert error < 0.3


def test_unknown_and_missing_keys_are_listed(official_folder):
    folder, reference = official_folder
    expected = {k: v.shape for k, v in reference.state_dict().items()}
    official = to_official(reference.state_dict(), 258)
    official["model.some_new_module.weight"] = torch.zeros(3)
    del official["predictor.decoder_norm.weight"]
    with pytest.raises(UnmappedKeysError) as info:
        convert_state_dict(official, expected)
    message = str(info.value)
    assert "model.some_new_module.weight" in message and "mask_decoder.decoder_norm.weight" in message


def rewritten(folder: Path, target: Path, edit) -> Path:
    """A copy of an official-layout folder whose tensors went through ``edit`` (one file, no index)."""
    import shutil

    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("*.safetensors", "*.index.json"))
    tensors = edit(read_tensors(folder))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(target / "model.safetensors"))
    return target


@pytest.mark.parametrize("missing", ["predictor.query_feat.weight", "lm_head.weight"])
def test_a_missing_release_tensor_is_one_sentence_and_exit_status_2(official_folder, tmp_path, capsys, missing):
    folder, _ = official_folder
    broken = rewritten(folder, tmp_path / "broken", lambda t: {k: v for k, v in t.items() if k != missing})
    with pytest.raises(ConversionError, match=f"lacks 1 tensor.*'{missing}'"):
        convert_checkpoint(broken, tmp_path / "out")
    with pytest.raises(SystemExit) as stopped:
        convert_main([str(broken), str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and len(err.strip().splitlines()) == 1 and missing in err


def test_a_missing_shard_is_named(official_folder, tmp_path):
    import shutil

    folder, _ = official_folder
    partial = tmp_path / "partial"
    shutil.copytree(folder, partial)
    (partial / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ConversionError, match="lists 'model-00002-of-00002.safetensors', which .* does not hold"):
        convert_checkpoint(partial, tmp_path / "out")


def test_a_wrapper_prefix_is_named_not_listed_as_unknown(official_folder, tmp_path):
    folder, _ = official_folder
    wrapped = rewritten(folder, tmp_path / "peft", lambda t: {f"base_model.model.{k}": v for k, v in t.items()})
    with pytest.raises(ConversionError, match="start with 'base_model.model.'.*merge_and_unload"):
        convert_checkpoint(wrapped, tmp_path / "out")


def test_shape_mismatches_are_one_sentence(official_folder, tmp_path):
    folder, _ = official_folder
    broken = rewritten(folder, tmp_path / "shape", lambda t: {**t, "predictor.decoder_norm.weight": torch.zeros(5)})
    with pytest.raises(ConversionError) as info:
        convert_checkpoint(broken, tmp_path / "out")
    assert "\n" not in str(info.value) and "mask_decoder.decoder_norm.weight" in str(info.value)


def test_extra_tensors_are_reported_and_ignored(official_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    folder, reference = official_folder
    extra = rewritten(folder, tmp_path / "extra", lambda t: {**t, "model.some_new_module.weight": torch.zeros(3)})
    convert_main([str(extra), str(tmp_path / "ours")])
    assert (
        "note: ignored 1 tensor(s) the official layout does not have: 'model.some_new_module.weight'"
        in capsys.readouterr().out
    )
    assert "model.some_new_module.weight" in (tmp_path / "ours" / "CONVERTED_FROM.txt").read_text()
    loaded = load_model(tmp_path / "ours", precision="fp32", device_map="cpu")
    assert torch.allclose(
        query(loaded.model, loaded.processor).pred_masks, query(reference, loaded.processor).pred_masks, atol=1e-5
    )


def test_command_line_writes_our_format(official_folder, tmp_path):
    folder, reference = official_folder
    convert_main([str(folder), str(tmp_path / "ours")])
    assert (tmp_path / "ours" / "config.json").exists()
    assert json.loads((tmp_path / "ours" / "config.json").read_text())["model_type"] == "hyperseg_lite"
    loaded = load_model(tmp_path / "ours", precision="fp32", device_map="cpu")
    assert torch.allclose(
        query(loaded.model, loaded.processor).pred_masks, query(reference, loaded.processor).pred_masks, atol=1e-5
    )


def test_offline_hub_without_cache_names_the_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty" / "hub"))
    with pytest.raises(CheckpointNotFound) as info:
        load_model("weic22/HyperSeg-3B")
    message = str(info.value)
    assert "embedded model" in message and "Traceback" not in message and "huggingface-cli download" in message


def test_hub_id_uses_the_cached_snapshot(official_folder, tmp_path, monkeypatch):
    import huggingface_hub

    folder, _ = official_folder
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id, **kwargs: str(folder))
    loaded = load_model("weic22/HyperSeg-tiny", precision="fp32", device_map="cpu")
    assert loaded.model.config.preset == "3b-converted"


@pytest.mark.slow
def test_full_size_random_official_checkpoint_converts_and_answers(tmp_path, monkeypatch):
    """~6.9 GB written in the official layout (fp16/fp32 mix), converted and queried on CPU (opt-in).

    fp32 for the query: CPUs without bf16 matrix units run a bf16 3B forward many times slower."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    config = HyperSegConfig.from_preset("3b", seg_token_id=257)
    config.text_config.vocab_size = 51200
    with torch.device("cpu"):
        model = HyperSegForSegmentation(config).to(torch.bfloat16).eval()
    folder = tmp_path / "HyperSeg-3B"
    write_official(folder, model, official_vocab=50296)
    del model
    loaded = load_model(folder, precision="fp32", device_map="cpu")
    out = query(loaded.model, loaded.processor)
    assert out.pred_masks.shape == (1, 100, 256, 256) and torch.isfinite(out.prompt_logits.float()).all()


def test_class_prompt_parity_script_collapses_and_expands_the_prompt_exactly():
    """tools/official_e2e_parity_classes.py hands the release one <cls> id per class (its tokens + [SEG] in
    class_name_ids); expanding that back must give our processor's ids and class spans, position for position."""
    import importlib.util

    from hyperseg_lite import build_random_model

    path = Path(__file__).resolve().parents[1] / "tools" / "official_e2e_parity_classes.py"
    spec = importlib.util.spec_from_file_location("official_e2e_parity_classes", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    processor = build_random_model("tiny").processor
    encoded = script.our_prompt(processor)
    official = script.to_official(encoded.input_ids, encoded.class_spans)
    assert (official["input_ids"] == script.CLS).sum() == len(script.CLASS_NAMES)
    assert set(official["cls_indices"].tolist()) == {0, 1, 2}
    for placeholder in (script.IMAGE, script.SEG):
        assert (official["input_ids"] == placeholder).sum() == 1
    counts = {int(t): int((encoded.input_ids == t).sum()) for t in (script.IMAGE, script.SEG, script.TEMPORAL)}
    ids, spans = script.from_official(official, counts)
    assert torch.equal(ids, encoded.input_ids) and torch.equal(spans, encoded.class_spans)
