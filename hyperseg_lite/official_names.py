"""The name table: official HyperSeg-3B state_dict names -> hyperseg-lite names.

Every one of the release's 1,636 entries (``shared/hyperseg3b_official_params.tsv``) is either mapped by
one of the rules below or dropped with a stated reason; anything else is an error. Rules are ordered
``(official regex, our template, transform)``; the transform says what happens to the tensor:

* ``copy`` - same tensor;
* ``qkv`` - the release's Swin fuses query/key/value in ``attn.qkv`` (3C x C); transformers' Swin has three
  projections: the fused tensor is split in thirds (q, k, v order);
* ``pad_vocab`` - the release's input embedding has 50,296 rows (Phi-2's 50,295 + ``[SEG]``) but its
  ``lm_head`` 51,200; transformers' Phi uses one ``vocab_size`` for both, so the embedding is zero-padded to
  51,200 rows (ids >= 50,296 never occur: the tokenizer has 50,296 tokens).

Our ``llm.lm_head.bias`` has no official counterpart (the release's head is bias-free): it is set to zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

DROPPED: dict[str, str] = {
    r"model\.vision_tower\.vision_model\.head\..*": (
        "SigLIP's attention-pooling head: HyperSeg reads patch tokens of layer -2 and never calls it"
    ),
    r"model\.vision_tower_mask\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index": (
        "a constant index buffer, recomputed by transformers' Swin from the window size"
    ),
}

_SWIN = r"model\.vision_tower_mask\."
_OURS_SWIN = "pyramid.backbone.swin."
RULES: list[tuple[str, str, str]] = [
    # --- LLM (Phi-2 as transformers 4.38 named it; transformers 5 keeps these names) ---
    (r"model\.embed_tokens\.weight", "llm.model.embed_tokens.weight", "pad_vocab"),
    (r"model\.layers\.(\d+)\.(.*)", r"llm.model.layers.\1.\2", "copy"),
    (r"model\.final_layernorm\.(weight|bias)", r"llm.model.final_layernorm.\1", "copy"),
    (r"lm_head\.weight", "llm.lm_head.weight", "copy"),
    # --- global tower (SigLIP) and projector ---
    (r"model\.vision_tower\.vision_model\.(.*)", r"global_vision.encoder.\1", "copy"),
    (r"model\.mm_projector\.(0|2)\.(weight|bias)", r"global_vision.projector.\1.\2", "copy"),
    # --- pyramid backbone (detectron2-style Swin -> transformers SwinBackbone) ---
    (_SWIN + r"patch_embed\.proj\.(weight|bias)", _OURS_SWIN + r"embeddings.patch_embeddings.projection.\1", "copy"),
    (_SWIN + r"patch_embed\.norm\.(weight|bias)", _OURS_SWIN + r"embeddings.norm.\1", "copy"),
    (
        _SWIN + r"layers\.(\d+)\.blocks\.(\d+)\.norm1\.(weight|bias)",
        _OURS_SWIN + r"encoder.layers.\1.blocks.\2.layernorm_before.\3",
        "copy",
    ),
    (
        _SWIN + r"layers\.(\d+)\.blocks\.(\d+)\.norm2\.(weight|bias)",
        _OURS_SWIN + r"encoder.layers.\1.blocks.\2.layernorm_after.\3",
        "copy",
    ),
    (
        _SWIN + r"layers\.(\d+)\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)",
        _OURS_SWIN + r"encoder.layers.\1.blocks.\2.attention.{q,k,v}_proj.\3",
        "qkv",
    ),
    (
        _SWIN + r"layers\.(\d+)\.blocks\.(\d+)\.attn\.proj\.(weight|bias)",
        _OURS_SWIN + r"encoder.layers.\1.blocks.\2.attention.o_proj.\3",
        "copy",
    ),
    (
        _SWIN + r"layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table",
        _OURS_SWIN + r"encoder.layers.\1.blocks.\2.attention.relative_position_bias.relative_position_bias_table",
        "copy",
    ),
    (
        _SWIN + r"layers\.(\d+)\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)",
        _OURS_SWIN + r"encoder.layers.\1.blocks.\2.mlp.\3.\4",
        "copy",
    ),
    (
        _SWIN + r"layers\.(\d+)\.downsample\.(reduction|norm)\.(weight|bias)",
        _OURS_SWIN + r"encoder.layers.\1.downsample.\2.\3",
        "copy",
    ),
    (_SWIN + r"norm([0-3])\.(weight|bias)", "pyramid.backbone.hidden_states_norms.stage{norm+1}.\\2", "copy"),
    # --- Fine-grained Visual Perceiver ---
    (r"temporal_query", "perceiver.latents", "copy"),
    (r"local_project\.(\d+)\.(weight|bias)", r"perceiver.level_projections.\1.\2", "copy"),
    (r"level_embed\.weight", "perceiver.level_embed.weight", "copy"),
    (r"mgvp_layers\.layers\.(\d+)\.0\.(.*)", r"perceiver.attention_layers.\1.\2", "copy"),
    (r"mgvp_layers\.layers\.(\d+)\.1\.(\d)\.(weight|bias)", r"perceiver.feed_forwards.\1.\2.\3", "copy"),
    (r"mgvp_layers\.norm\.(weight|bias)", r"perceiver.norm.\1", "copy"),
    (r"expanded_seg_query_project\.(weight|bias)", r"perceiver.to_llm.\1", "copy"),
    (r"temporal_query_project\.(weight|bias)", r"perceiver.from_llm.\1", "copy"),
    # --- mask queries, HER projectors, decoder ---
    (r"seg_query", "mask_queries", "copy"),
    (r"seg_query_projector\.(weight|bias)", r"entity_recognition.mask_query_projector.\1", "copy"),
    (r"SEG_token_projector\.(weight|bias)", r"entity_recognition.refer_projector.\1", "copy"),
    (r"class_name_projector\.(weight|bias)", r"entity_recognition.class_projector.\1", "copy"),
    (r"region_projector\.(weight|bias)", r"entity_recognition.region_projector.\1", "copy"),
    (r"pixel_decoder\.(.*)", r"pixel_decoder.\1", "copy"),
    (r"predictor\.(.*)", r"mask_decoder.\1", "copy"),
]
_COMPILED = [(re.compile(pattern + r"\Z"), template, transform) for pattern, template, transform in RULES]
_DROPPED = [(re.compile(pattern + r"\Z"), reason) for pattern, reason in DROPPED.items()]


class UnmappedKeysError(KeyError):
    """Official names that no rule maps (or our names nothing fills); the message lists them."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def drop_reason(name: str) -> str | None:
    for pattern, reason in _DROPPED:
        if pattern.match(name):
            return reason
    return None


def map_name(name: str) -> tuple[list[str], str] | None:
    """Our name(s) and the transform for one official name; ``None`` if deliberately dropped."""
    if drop_reason(name) is not None:
        return None
    for pattern, template, transform in _COMPILED:
        match = pattern.match(name)
        if not match:
            continue
        if "{norm+1}" in template:
            target = template.replace("{norm+1}", str(int(match.group(1)) + 1)).replace("\\2", match.group(2))
            return [target], transform
        target = match.expand(template)
        if transform == "qkv":
            return [target.replace("{q,k,v}", part) for part in ("q", "k", "v")], transform
        return [target], transform
    raise UnmappedKeysError(f"no rule maps the official parameter {name!r}")


def convert_state_dict(official: dict[str, torch.Tensor], expected: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Official tensors -> ours, checked against ``expected`` (our names and shapes). Each tensor keeps its dtype.

    Raises :class:`UnmappedKeysError` listing unknown official names, our names left unfilled, and shape mismatches.
    """
    ours: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for name, tensor in official.items():
        try:
            mapped = map_name(name)
        except UnmappedKeysError:
            unknown.append(name)
            continue
        if mapped is None:
            continue
        targets, transform = mapped
        values = _TRANSFORMS[transform](tensor, targets, expected)
        ours.update(zip(targets, values))
    missing = sorted(set(expected) - set(ours) - {"llm.lm_head.bias"})
    if "llm.lm_head.bias" in expected and "llm.lm_head.bias" not in ours:
        ours["llm.lm_head.bias"] = torch.zeros(expected["llm.lm_head.bias"], dtype=ours["llm.lm_head.weight"].dtype)
    extra = sorted(set(ours) - set(expected))
    wrong = sorted(
        f"{k}: official gives {tuple(ours[k].shape)}, model needs {tuple(expected[k])}"
        for k in set(ours) & set(expected)
        if tuple(ours[k].shape) != tuple(expected[k])
    )
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} unknown official parameter(s): {', '.join(unknown[:20])}")
    if missing:
        problems.append(
            f"{len(missing)} parameter(s) of our model not found in the checkpoint: {', '.join(missing[:20])}"
        )
    if extra:
        problems.append(f"{len(extra)} mapped name(s) our model does not have: {', '.join(extra[:20])}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): {'; '.join(wrong[:10])}")
    if problems:
        raise UnmappedKeysError(
            "the checkpoint does not match the official HyperSeg layout:\n- " + "\n- ".join(problems)
        )
    return ours


def _copy(tensor, targets, expected):
    return [tensor]


def _qkv(tensor, targets, expected):
    return [part.clone() for part in tensor.chunk(3, dim=0)]  # own storage: safetensors refuses shared views


def _pad_vocab(tensor, targets, expected):
    rows = expected.get(targets[0], tensor.shape)[0]
    if rows < tensor.shape[0]:
        raise UnmappedKeysError(f"the checkpoint's vocabulary ({tensor.shape[0]}) exceeds the model's ({rows})")
    return [torch.cat([tensor, tensor.new_zeros((rows - tensor.shape[0], tensor.shape[1]))])]


_TRANSFORMS: dict[str, Callable] = {"copy": _copy, "qkv": _qkv, "pad_vocab": _pad_vocab}


def to_official(ours: dict[str, torch.Tensor], official_vocab: int) -> dict[str, torch.Tensor]:
    """Inverse map (for tests that write a checkpoint in the official layout, and for comparisons)."""
    inverse: dict[str, torch.Tensor] = {}
    # build by trying every official-looking name the rules can produce
    for name, tensor in ours.items():
        if name == "llm.lm_head.bias":
            continue
        official = _inverse_name(name)
        if official is None:
            raise UnmappedKeysError(f"no official name for {name!r}")
        if official.endswith(".attn.qkv.weight") or official.endswith(".attn.qkv.bias"):
            inverse.setdefault(official, [None, None, None])
            inverse[official]["qkv".index(name.split("attention.")[1][0])] = tensor
        elif name == "llm.model.embed_tokens.weight":
            inverse[official] = tensor[:official_vocab]
        else:
            inverse[official] = tensor
    return {k: torch.cat(v) if isinstance(v, list) else v for k, v in inverse.items()}


_INVERSE = [
    (r"llm\.model\.embed_tokens\.weight", "model.embed_tokens.weight"),
    (r"llm\.model\.layers\.(.*)", r"model.layers.\1"),
    (r"llm\.model\.final_layernorm\.(.*)", r"model.final_layernorm.\1"),
    (r"llm\.lm_head\.weight", "lm_head.weight"),
    (r"global_vision\.encoder\.(.*)", r"model.vision_tower.vision_model.\1"),
    (r"global_vision\.projector\.(.*)", r"model.mm_projector.\1"),
    (
        r"pyramid\.backbone\.swin\.embeddings\.patch_embeddings\.projection\.(.*)",
        r"model.vision_tower_mask.patch_embed.proj.\1",
    ),
    (r"pyramid\.backbone\.swin\.embeddings\.norm\.(.*)", r"model.vision_tower_mask.patch_embed.norm.\1"),
    (
        r"pyramid\.backbone\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.layernorm_before\.(.*)",
        r"model.vision_tower_mask.layers.\1.blocks.\2.norm1.\3",
    ),
    (
        r"pyramid\.backbone\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.layernorm_after\.(.*)",
        r"model.vision_tower_mask.layers.\1.blocks.\2.norm2.\3",
    ),
    (
        r"pyramid\.backbone\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\.[qkv]_proj\.(.*)",
        r"model.vision_tower_mask.layers.\1.blocks.\2.attn.qkv.\3",
    ),
    (
        r"pyramid\.backbone\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\.o_proj\.(.*)",
        r"model.vision_tower_mask.layers.\1.blocks.\2.attn.proj.\3",
    ),
    (
        r"pyramid\.backbone\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.attention\.relative_position_bias\.relative_position_bias_table",
        r"model.vision_tower_mask.layers.\1.blocks.\2.attn.relative_position_bias_table",
    ),
    (
        r"pyramid\.backbone\.swin\.encoder\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.(.*)",
        r"model.vision_tower_mask.layers.\1.blocks.\2.mlp.\3",
    ),
    (
        r"pyramid\.backbone\.swin\.encoder\.layers\.(\d+)\.downsample\.(.*)",
        r"model.vision_tower_mask.layers.\1.downsample.\2",
    ),
    (r"perceiver\.latents", "temporal_query"),
    (r"perceiver\.level_projections\.(.*)", r"local_project.\1"),
    (r"perceiver\.level_embed\.weight", "level_embed.weight"),
    (r"perceiver\.attention_layers\.(\d+)\.(.*)", r"mgvp_layers.layers.\1.0.\2"),
    (r"perceiver\.feed_forwards\.(\d+)\.(.*)", r"mgvp_layers.layers.\1.1.\2"),
    (r"perceiver\.norm\.(.*)", r"mgvp_layers.norm.\1"),
    (r"perceiver\.to_llm\.(.*)", r"expanded_seg_query_project.\1"),
    (r"perceiver\.from_llm\.(.*)", r"temporal_query_project.\1"),
    (r"mask_queries", "seg_query"),
    (r"entity_recognition\.mask_query_projector\.(.*)", r"seg_query_projector.\1"),
    (r"entity_recognition\.refer_projector\.(.*)", r"SEG_token_projector.\1"),
    (r"entity_recognition\.class_projector\.(.*)", r"class_name_projector.\1"),
    (r"entity_recognition\.region_projector\.(.*)", r"region_projector.\1"),
    (r"pixel_decoder\.(.*)", r"pixel_decoder.\1"),
    (r"mask_decoder\.(.*)", r"predictor.\1"),
]


def _inverse_name(name: str) -> str | None:
    match = re.match(r"pyramid\.backbone\.hidden_states_norms\.stage([1-4])\.(.*)\Z", name)
    if match:
        return f"model.vision_tower_mask.norm{int(match.group(1)) - 1}.{match.group(2)}"
    for pattern, template in _INVERSE:
        match = re.match(pattern + r"\Z", name)
        if match:
            return match.expand(template)
    return None
