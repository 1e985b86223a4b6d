"""Convert the official HyperSeg-3B checkpoint (``weic22/HyperSeg-3B``, ``model_type: mipha_phi``) to our format.

    python -m hyperseg_lite.convert SRC DST     # SRC: a folder or a hub id; DST: a new folder

``load_model`` calls the same code when it meets the official layout: the converted copy is written once
into ``$HF_HOME/hyperseg_lite/converted/<name>`` (our safetensors + config + tokenizer) and loaded from there,
so precision, quantization and ``device_map`` work exactly as for our own checkpoints.

The name table and its transforms live in :mod:`hyperseg_lite.official_names`; sizes are read from the
release's config (LLM) and from tensor shapes (towers, perceiver, decoder), with the release's fixed choices
(decoder heads 8, perceiver head width 64, GroupNorm 32, pyramid input 1024 px) where shapes cannot tell.
The converted model follows the released code: no perceiver gate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sys
import warnings
from collections import Counter
from pathlib import Path

import torch
from safetensors import safe_open

from .configuration_hyperseg import HyperSegConfig
from .official_names import UnmappedKeysError, convert_state_dict, map_name

OFFICIAL_MODEL_TYPE = "mipha_phi"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "special_tokens_map.json",
    "tokenizer.model",
)
KNOWN_TOWER_HEADS = {"google/siglip-so400m-patch14-384": 16}
# tensors whose shapes say the sizes of the converted model (config_from_official): a release always has them
REQUIRED_TENSORS = (
    "lm_head.weight",
    "model.vision_tower.vision_model.embeddings.patch_embedding.weight",
    "model.vision_tower.vision_model.embeddings.position_embedding.weight",
    "model.vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight",
    "model.vision_tower_mask.patch_embed.proj.weight",
    "model.vision_tower_mask.layers.0.blocks.0.attn.relative_position_bias_table",
    "temporal_query",
    "mgvp_layers.layers.0.0.to_q.weight",
    "mgvp_layers.layers.0.1.1.weight",
    "predictor.query_feat.weight",
    "predictor.transformer_ffn_layers.0.linear1.weight",
    "predictor.mask_embed.layers.2.weight",
    "pixel_decoder.transformer.encoder.layers.0.linear1.weight",
    "pixel_decoder.transformer.encoder.layers.0.self_attn.attention_weights.weight",
)
REQUIRED_CONFIG = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
WRAPPER_PREFIXES = ("base_model.model.", "module.", "_orig_mod.")  # PEFT, DDP / DeepSpeed, torch.compile saves


class ConversionError(ValueError):
    """The folder is not a complete official HyperSeg checkpoint; the message (one sentence) says what is wrong."""


def _listed(names, limit: int = 3) -> str:
    names = list(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(repr(n) for n in names[:limit]) + more


def check_official(official: dict, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Raise :class:`ConversionError` (one sentence) for what would stop the conversion; return the official
    names no rule knows (extra tensors, ignored and reported by the caller)."""
    for prefix in WRAPPER_PREFIXES:
        wrapped = [n for n in shapes if n.startswith(prefix)]
        if wrapped and len(wrapped) >= len(shapes) // 2:
            raise ConversionError(
                f"the tensor names start with {prefix!r} (a training wrapper's save, e.g. PEFT / DDP / torch.compile), "
                f"not the release's names: save the unwrapped model (PEFT: merge_and_unload() first) and convert that"
            )
    missing_config = [k for k in REQUIRED_CONFIG if k not in official]
    if missing_config:
        raise ConversionError(
            f"config.json lacks {_listed(missing_config)}, which the release's mipha_phi config "
            "always has; use the config.json shipped with the checkpoint"
        )
    missing = [n for n in REQUIRED_TENSORS if n not in shapes]
    if missing:
        raise ConversionError(
            f"the checkpoint lacks {len(missing)} tensor(s) every HyperSeg-3B release has "
            f"({_listed(missing)}): it is incomplete or not HyperSeg; check that every shard "
            "listed in model.safetensors.index.json is present"
        )
    unknown = []
    for name in shapes:
        try:
            map_name(name)
        except UnmappedKeysError:
            unknown.append(name)
    if unknown and len(unknown) >= len(shapes) // 2:
        raise ConversionError(
            f"{len(unknown)} of {len(shapes)} tensors have names the official layout does not use "
            f"(e.g. {_listed(unknown)}): this is not an official HyperSeg checkpoint"
        )
    return sorted(unknown)


def is_official_checkpoint(folder: Path) -> bool:
    """The release's config says ``model_type: mipha_phi``; ours says ``hyperseg_lite``."""
    config = Path(folder) / "config.json"
    if not config.exists():
        return False
    return json.loads(config.read_text()).get("model_type") == OFFICIAL_MODEL_TYPE


def official_tensor_files(folder: Path) -> list[Path]:
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / f for f in files]
    single = folder / "model.safetensors"
    if single.exists():
        return [single]
    raise FileNotFoundError(f"{folder} holds no safetensors weights (model.safetensors or an index)")


def read_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for file in official_tensor_files(folder):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                shapes[name] = tuple(handle.get_slice(name).get_shape())
    return shapes


def read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in official_tensor_files(folder):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                tensors[name] = handle.get_tensor(name)
    return tensors


def _count(shapes, pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for name in shapes if (m := regex.match(name))})


def config_from_official(
    official: dict, shapes: dict[str, tuple[int, ...]], image_size: int = 1024, seg_token_id: int | None = None
) -> HyperSegConfig:
    """Our config from the release's config.json (LLM fields) and its tensor shapes (everything else)."""
    text = dict(
        model_type="phi",
        hidden_size=official["hidden_size"],
        intermediate_size=official["intermediate_size"],
        num_hidden_layers=official["num_hidden_layers"],
        num_attention_heads=official["num_attention_heads"],
        num_key_value_heads=official.get("num_key_value_heads") or official["num_attention_heads"],
        partial_rotary_factor=official.get("partial_rotary_factor", 0.4),
        layer_norm_eps=official.get("layer_norm_eps", 1e-5),
        hidden_act=official.get("hidden_act", "gelu_new"),
        max_position_embeddings=official.get("max_position_embeddings", 2048),
        rope_theta=official.get("rope_theta", 10000.0),
        vocab_size=shapes["lm_head.weight"][0],
        tie_word_embeddings=False,
    )
    vt = "model.vision_tower.vision_model."
    v_hidden, _, _, patch = shapes[vt + "embeddings.patch_embedding.weight"]
    grid = math.isqrt(shapes[vt + "embeddings.position_embedding.weight"][0])
    tower = official.get("mm_vision_tower", "")
    # Mipha's config.json nests the tower's own config (MiphaVisionConfig) under vision_config.vision_tower:
    # head count, activation, LayerNorm eps and selected layer are read there; shapes and the tower name are
    # only a fallback for configs without it.
    tower_config = (official.get("vision_config") or {}).get("vision_tower") or {}
    heads = (
        tower_config.get("num_attention_heads")
        or KNOWN_TOWER_HEADS.get(tower)
        or (v_hidden // 72 if v_hidden % 72 == 0 else max(1, v_hidden // 64))
    )
    projector = (official.get("vision_config") or {}).get("mm_projector") or {}
    projector_type = projector.get("mm_projector_type", official.get("mm_projector_type", "mlp2x_gelu"))
    if projector_type != "mlp2x_gelu":
        raise ValueError(f"the release uses the mlp2x_gelu projector; this checkpoint has {projector_type!r}")
    vision = dict(
        model_type="siglip_vision_model",
        hidden_size=v_hidden,
        num_attention_heads=heads,
        intermediate_size=shapes[vt + "encoder.layers.0.mlp.fc1.weight"][0],
        num_hidden_layers=_count(shapes, re.escape(vt) + r"encoder\.layers\.(\d+)\."),
        patch_size=patch,
        image_size=tower_config.get("image_size") or (384 if (grid, patch) == (27, 14) else grid * patch),
        hidden_act=tower_config.get("hidden_act", "gelu_pytorch_tanh"),
        layer_norm_eps=tower_config.get("layer_norm_eps", 1e-6),
        vision_use_head=False,
    )
    sw = "model.vision_tower_mask."
    stages = _count(shapes, re.escape(sw) + r"layers\.(\d+)\.")
    depths = [_count(shapes, re.escape(sw) + rf"layers\.{i}\.blocks\.(\d+)\.") for i in range(stages)]
    tables = [shapes[f"{sw}layers.{i}.blocks.0.attn.relative_position_bias_table"] for i in range(stages)]
    window = (math.isqrt(tables[0][0]) + 1) // 2
    pyramid = dict(
        model_type="swin",
        image_size=image_size,
        embed_dim=shapes[sw + "patch_embed.proj.weight"][0],
        depths=depths,
        num_heads=[t[1] for t in tables],
        window_size=window,
        out_features=[f"stage{i + 1}" for i in range(stages)],
    )
    latents, p_dim = shapes["temporal_query"]
    perceiver = dict(
        num_latents=latents,
        hidden_size=p_dim,
        num_layers=_count(shapes, r"mgvp_layers\.layers\.(\d+)\."),
        num_heads=shapes["mgvp_layers.layers.0.0.to_q.weight"][0] // 64,
        head_dim=64,
        ff_mult=shapes["mgvp_layers.layers.0.1.1.weight"][0] // p_dim,
        conditional_gate=False,
    )
    queries, d_hidden = shapes["predictor.query_feat.weight"]
    decoder = dict(
        hidden_dim=d_hidden,
        num_queries=queries,
        num_heads=8,
        dim_feedforward=shapes["predictor.transformer_ffn_layers.0.linear1.weight"][0],
        num_layers=_count(shapes, r"predictor\.transformer_ffn_layers\.(\d+)\."),
        mask_dim=shapes["predictor.mask_embed.layers.2.weight"][0],
        pixel_decoder_layers=_count(shapes, r"pixel_decoder\.transformer\.encoder\.layers\.(\d+)\."),
        pixel_decoder_ffn=shapes["pixel_decoder.transformer.encoder.layers.0.linear1.weight"][0],
        num_points=shapes["pixel_decoder.transformer.encoder.layers.0.self_attn.attention_weights.weight"][0] // 24,
        num_groups=32,
    )
    return HyperSegConfig(
        preset="3b-converted",
        text_config=text,
        vision_config=vision,
        pyramid_config=pyramid,
        perceiver_config=perceiver,
        decoder_config=decoder,
        image_size=image_size,
        seg_token_id=seg_token_id,
        vision_feature_layer=tower_config.get("mm_vision_select_layer", -2),
        # the released video evaluation (eval_ReasonVOS.py) hands the FVP latents from frame
        # to frame but never averages prompt embeddings over frames: follow the code
        global_prompt_aggregation=False,
        local_space_time_injection=True,
    )


def _official_seg_id(folder: Path) -> int | None:
    added = Path(folder) / "added_tokens.json"
    if added.exists():
        return json.loads(added.read_text()).get("[SEG]")
    return None


def convert_checkpoint(src: Path, dst: Path, image_size: int = 1024) -> Path:
    """Write our format for an official folder into ``dst`` (created; must not hold a checkpoint already)."""
    from accelerate import init_empty_weights
    from transformers import AutoTokenizer

    from .modeling.modeling_hyperseg import HyperSegForSegmentation
    from .tokenization import add_seg_token

    src, dst = Path(src), Path(dst)
    try:
        official = json.loads((src / "config.json").read_text())
    except json.JSONDecodeError as error:
        raise ConversionError(f"{src / 'config.json'} is not valid JSON ({error.msg}, line {error.lineno})") from None
    try:
        absent = [f.name for f in official_tensor_files(src) if not f.exists()]
    except FileNotFoundError as error:
        raise ConversionError(str(error)) from None
    if absent:
        raise ConversionError(
            f"model.safetensors.index.json lists {_listed(absent)}, which {src} does not hold: download every shard"
        )
    shapes = read_shapes(src)
    extra = check_official(official, shapes)
    config = config_from_official(official, shapes, image_size=image_size, seg_token_id=_official_seg_id(src))
    with init_empty_weights():
        skeleton = HyperSegForSegmentation(config)
    expected = {k: v.shape for k, v in skeleton.state_dict().items()}
    tensors = {k: v for k, v in read_tensors(src).items() if k not in set(extra)}
    try:
        state = convert_state_dict(tensors, expected)
    except UnmappedKeysError as error:  # missing parameters or shape mismatches: one sentence, the first few named
        lines = [line[2:] for line in str(error).splitlines()[1:]]
        raise ConversionError(
            "the checkpoint does not match the official HyperSeg layout: " + "; ".join(lines)
        ) from None
    if extra:
        warnings.warn(
            f"ignored {len(extra)} tensor(s) the official layout does not have: {_listed(extra, 10)}", stacklevel=2
        )
    dst.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(src)
    seg_id = add_seg_token(tokenizer)
    if config.seg_token_id is None:
        config.seg_token_id = seg_id
    elif seg_id != config.seg_token_id:
        raise ValueError(f"the tokenizer's [SEG] id {seg_id} differs from the checkpoint's {config.seg_token_id}")
    config.text_config.pad_token_id = tokenizer.pad_token_id
    config.save_pretrained(dst)
    tokenizer.save_pretrained(dst)
    from huggingface_hub import save_torch_state_dict

    save_torch_state_dict(state, dst, max_shard_size="5GB")
    note = (
        f"Converted from the official HyperSeg layout at {src.name} by hyperseg_lite.convert "
        "(names: hyperseg_lite/official_names.py).\n"
    )
    if extra:
        note += f"Ignored {len(extra)} tensor(s) the official layout does not have:\n" + "".join(
            f"  {n}\n" for n in extra
        )
    (dst / "CONVERTED_FROM.txt").write_text(note)
    return dst


CONVERTER_VERSION = 2  # part of the cache key: bump when the conversion of an unchanged source changes


def converted_cache_dir(src: Path) -> Path:
    """Cache folder for one source: keyed by its path, its config and weight files (size, mtime) and
    :data:`CONVERTER_VERSION`, so a changed source or a newer converter never reuses a stale copy."""
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    src = Path(src).resolve()
    fingerprint = [str(src), str(CONVERTER_VERSION)]
    for file in [src / "config.json", *official_tensor_files(src)]:
        stat = file.stat()
        fingerprint.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    key = hashlib.sha1("|".join(fingerprint).encode()).hexdigest()[:12]
    return home / "hyperseg_lite" / "converted" / f"{Path(src).name}-{key}"


def load_official_checkpoint(folder: Path, precision: str, device_map):
    """Convert once into the cache, then load like any of our checkpoints (same precisions and placement)."""
    from .checkpoints import load_ours as _load_ours

    target = converted_cache_dir(folder)
    if not (target / "config.json").exists():
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        convert_checkpoint(folder, tmp)
        tmp.rename(target)
    return _load_ours(target, precision, device_map)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert the official HyperSeg checkpoint to hyperseg-lite's format")
    parser.add_argument("src", help="official checkpoint folder or hub id (e.g. weic22/HyperSeg-3B)")
    parser.add_argument("dst", help="output folder")
    args = parser.parse_args(argv)
    from .checkpoints import resolve_checkpoint

    try:
        src = resolve_checkpoint(args.src)
        if not is_official_checkpoint(src):
            raise ConversionError(
                f"{args.src} is not in the official HyperSeg layout (its config.json's model_type "
                f"is not {OFFICIAL_MODEL_TYPE!r})"
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = convert_checkpoint(src, Path(args.dst))
    except (ValueError, OSError) as error:  # ConversionError, CheckpointNotFound, unreadable files: one line
        print(f"error: {' '.join(str(error).split()) or type(error).__name__}", file=sys.stderr)
        raise SystemExit(2) from None
    for warning in caught:
        print(f"note: {warning.message}")
    counts = Counter(p.suffix for p in out.iterdir())
    print(f"wrote {out} ({counts['.safetensors']} safetensors file(s))")


if __name__ == "__main__":
    main()
