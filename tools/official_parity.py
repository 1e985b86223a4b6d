"""Numerical parity with the official HyperSeg code, module by module, on the same (converted) weights.

    git clone https://github.com/congvvc/HyperSeg /path/to/HyperSeg     # on a machine with network
    pip install einops
    python tools/official_parity.py --official-repo /path/to/HyperSeg

Imports the release's own modules from that checkout (nothing of it is copied here), builds them at small
sizes with the release's fixed choices, writes their weights in the official layout, converts them with
``hyperseg_lite.official_names`` and compares outputs on the same inputs:

* Swin pyramid backbone (``multimodal_encoder/swin_trans.py``) at 1024 px, against transformers' SwinBackbone;
* Fine-grained Visual Perceiver (``language_model/perceiver.py`` + the release's ``get_fvp_feat`` steps);
* MSDeformAttn pixel decoder (``Mask2Former_Simplify/.../msdeformattn.py``, pure-PyTorch sampling path);
* masked-attention predictor (``MultiScaleMaskedTransformerDecoderForOPTPreTrain``, ``forward_woconcat``),
  including the referring, class and region scores.

The LLM (Phi-2) and SigLIP are transformers' own implementations on both sides and are not re-checked.
Third-party pieces the release imports only for initialisation (fvcore's weight init, timm's DropPath and
trunc_normal_) and the compiled deformable-attention op are replaced by small stand-ins: in eval mode they
do not change the forward pass (the release falls back to its PyTorch sampling when the op is missing).
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import types
from pathlib import Path

import torch
from torch import nn


def install_stand_ins() -> None:
    fvcore = types.ModuleType("fvcore")
    fvcore_nn = types.ModuleType("fvcore.nn")
    weight_init = types.ModuleType("fvcore.nn.weight_init")

    def c2_xavier_fill(module):
        nn.init.kaiming_uniform_(module.weight, a=1)
        if module.bias is not None:
            nn.init.zeros_(module.bias)

    weight_init.c2_xavier_fill = c2_xavier_fill
    weight_init.c2_msra_fill = c2_xavier_fill
    fvcore_nn.weight_init = weight_init
    sys.modules.update({"fvcore": fvcore, "fvcore.nn": fvcore_nn, "fvcore.nn.weight_init": weight_init})

    timm = types.ModuleType("timm")
    timm_models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    layers.DropPath = lambda p=0.0: nn.Identity()
    layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
    layers.trunc_normal_ = lambda tensor, std=1.0, **_: nn.init.trunc_normal_(tensor, std=std)
    sys.modules.update({"timm": timm, "timm.models": timm_models, "timm.models.layers": layers})
    sys.modules["MultiScaleDeformableAttention"] = types.ModuleType("MultiScaleDeformableAttention")


def package(name: str, path: Path) -> None:
    """Register a package without running its __init__ (which would import the whole release)."""
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    sys.modules[name] = module


def load_official(repo: Path):
    install_stand_ins()
    model_dir = repo / "hyperseg" / "model"
    package("hs_lm", model_dir / "language_model")
    package("hs_enc", model_dir / "multimodal_encoder")
    m2f = model_dir / "mask_decoder" / "Mask2Former_Simplify" / "modeling"
    package("hs_m2f", m2f)
    package("hs_m2f.pixel_decoder", m2f / "pixel_decoder")
    package("hs_m2f.transformer_decoder", m2f / "transformer_decoder")
    package("hs_m2f.pixel_decoder.ops", m2f / "pixel_decoder" / "ops")
    return types.SimpleNamespace(
        perceiver=importlib.import_module("hs_lm.perceiver"),
        swin=importlib.import_module("hs_enc.swin_trans"),
        pixel=importlib.import_module("hs_m2f.pixel_decoder.msdeformattn"),
        predictor=importlib.import_module("hs_m2f.transformer_decoder.mask2former_transformer_decoder"),
    )


def report(name: str, ours: torch.Tensor, theirs: torch.Tensor) -> float:
    diff = (ours.float() - theirs.float()).abs().max().item()
    scale = theirs.float().abs().max().item()
    print(f"| {name} | {tuple(theirs.shape)} | {diff:.2e} | {scale:.2e} |")
    return diff / max(scale, 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official-repo", type=Path, required=True)
    args = parser.parse_args()
    official = load_official(args.official_repo.resolve())

    from transformers import SwinConfig

    from hyperseg_lite.modeling.mask_decoder import MaskDecoder
    from hyperseg_lite.modeling.perceiver import FineGrainedVisualPerceiver
    from hyperseg_lite.modeling.pixel_decoder import PixelDecoder
    from hyperseg_lite.modeling.pyramid_backbone import PyramidBackbone
    from hyperseg_lite.official_names import map_name

    def load_converted(ours: nn.Module, their_state: dict, their_prefix: str, our_prefix: str) -> None:
        converted = {}
        for name, tensor in their_state.items():
            mapped = map_name(their_prefix + name)
            if mapped is None:
                continue
            targets, transform = mapped
            values = list(tensor.chunk(3)) if transform == "qkv" else [tensor]
            for target, value in zip(targets, values):
                converted[target[len(our_prefix) :]] = value.clone()
        ours.load_state_dict(converted, strict=True)

    torch.manual_seed(0)
    worst = 0.0
    print("| module | output shape | max abs diff | max abs value |\n|---|---|---|---|")

    # --- Swin at 1024 px, small widths, the release's window of 12 ---
    depths, heads, embed = [1, 1, 2, 1], [1, 2, 4, 8], 32
    theirs = official.swin.SwinTransformer(
        embed_dim=embed, depths=depths, num_heads=heads, window_size=12, drop_path_rate=0.0, out_indices=(0, 1, 2, 3)
    )
    theirs.eval()  # the release's train() returns None, so no chaining
    ours = PyramidBackbone(
        SwinConfig(
            image_size=1024,
            embed_dim=embed,
            depths=depths,
            num_heads=heads,
            window_size=12,
            out_features=["stage1", "stage2", "stage3", "stage4"],
        )
    ).eval()
    load_converted(ours, theirs.state_dict(), "model.vision_tower_mask.", "pyramid.")
    image = torch.randn(1, 3, 1024, 1024)
    with torch.no_grad():
        a, b = ours(image), theirs(image)
    their_maps = b if isinstance(b, (list, tuple)) else [b[k] for k in sorted(b)]
    for level, (x, y) in enumerate(zip(a, their_maps)):
        worst = max(worst, report(f"Swin res{level + 2}", x, y))

    # --- Fine-grained Visual Perceiver, res3..res5 of that Swin ---
    channels = [embed * 2**i for i in range(4)]
    resampler = official.perceiver.PerceiverResampler(dim=64, depth=3).eval()
    local_project = nn.ModuleList(nn.Conv2d(c, 64, 1) for c in channels[1:])
    level_embed, latents = nn.Embedding(3, 64), nn.Parameter(torch.randn(8, 64))
    to_llm = nn.Linear(64, 96)
    their_state = {f"mgvp_layers.{k}": v for k, v in resampler.state_dict().items()}
    their_state |= {f"local_project.{k}": v for k, v in local_project.state_dict().items()}
    their_state |= {
        "level_embed.weight": level_embed.weight.data,
        "temporal_query": latents.data,
        "expanded_seg_query_project.weight": to_llm.weight.data,
        "expanded_seg_query_project.bias": to_llm.bias.data,
        "temporal_query_project.weight": torch.zeros(64, 96),
        "temporal_query_project.bias": torch.zeros(64),
    }
    ours_fvp = FineGrainedVisualPerceiver(channels, 8, 64, 3, 8, 64, 4, 96, [1, 2, 3]).eval()  # release: 8 heads x 64
    load_converted(ours_fvp, their_state, "", "perceiver.")
    with torch.no_grad():
        feats = [f for f in a]
        local = [local_project[i](feats[i + 1]).flatten(2) + level_embed.weight[i][None, :, None] for i in range(3)]
        their_out = to_llm(resampler(latents.unsqueeze(0), [x.permute(0, 2, 1) for x in local]))
        our_out, _ = ours_fvp(feats)
    worst = max(worst, report("FVP tokens", our_out, their_out))

    # --- pixel decoder ---
    shape = {f"res{i + 2}": types.SimpleNamespace(channel=c, stride=4 * 2**i) for i, c in enumerate(channels)}
    their_pixel = official.pixel.MSDeformAttnPixelDecoder(
        shape, 0.0, 8, 64, 1, 32, 32, ["res3", "res4", "res5"], 4
    ).eval()
    our_pixel = PixelDecoder(
        channels, conv_dim=32, mask_dim=32, num_heads=8, dim_feedforward=64, num_encoder_layers=1
    ).eval()
    our_pixel.load_state_dict(their_pixel.state_dict(), strict=True)  # same names: no conversion needed
    with torch.no_grad():
        mf_ours, ms_ours = our_pixel(feats)
        mf_theirs, _, ms_theirs = their_pixel.forward_features({f"res{i + 2}": f for i, f in enumerate(feats)})
    worst = max(worst, report("mask features", mf_ours, mf_theirs))
    for i, (x, y) in enumerate(zip(ms_ours, ms_theirs)):
        worst = max(worst, report(f"multi-scale {i}", x, y))

    # --- predictor with referring, class and region prompts ---
    their_pred = official.predictor.MultiScaleMaskedTransformerDecoderForOPTPreTrain(
        32, 32, 6, 8, 64, 3, False, 32, False, False, False, True, False
    ).eval()
    our_pred = MaskDecoder(
        hidden_dim=32, num_queries=6, num_heads=8, dim_feedforward=64, num_layers=3, mask_dim=32
    ).eval()
    our_pred.load_state_dict(their_pred.state_dict(), strict=True)
    queries, refer = torch.randn(1, 6, 32), torch.randn(1, 1, 32)
    classes, regions = torch.randn(1, 4, 32), torch.randn(1, 2, 32)
    with torch.no_grad():
        out_theirs = their_pred(ms_theirs, mf_theirs, None, queries, refer, classes, [regions[0]])
        out_ours = our_pred(ms_ours, mf_ours, queries, refer, classes, regions)
    worst = max(worst, report("pred_masks", out_ours.pred_masks, out_theirs["pred_masks"]))
    worst = max(worst, report("referring logits", out_ours.refer_logits, out_theirs["pred_SEG_logits"]))
    worst = max(worst, report("class logits", out_ours.class_logits, out_theirs["pred_class_name_logits"]))
    worst = max(worst, report("region logits", out_ours.region_logits[0].T, out_theirs["pred_region_logits"][0]))
    print(f"\nworst relative difference: {worst:.2e}")
    if worst > 1e-4 or math.isnan(worst):
        raise SystemExit("parity check FAILED")
    print("parity check passed")


if __name__ == "__main__":
    main()
