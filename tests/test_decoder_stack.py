"""Pixel decoder, deformable attention and masked-attention decoder: shapes, numerics, release names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hyperseg_lite.modeling.deformable_attention import deformable_sample
from hyperseg_lite.modeling.mask_decoder import MaskDecoder
from hyperseg_lite.modeling.pixel_decoder import PixelDecoder

PARAMS_TSV = Path(__file__).resolve().parents[2] / "shared" / "hyperseg3b_official_params.tsv"


def features(batch=2, size=64, channels=(8, 16, 32, 64), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, size // s, size // s, generator=gen) for c, s in zip(channels, (4, 8, 16, 32))]


def build(seed=0):
    torch.manual_seed(seed)
    pixel = PixelDecoder((8, 16, 32, 64), conv_dim=32, mask_dim=32, num_heads=4, dim_feedforward=64,
                         num_encoder_layers=2, num_groups=8)
    decoder = MaskDecoder(hidden_dim=32, num_queries=6, num_heads=4, dim_feedforward=64, num_layers=3, mask_dim=32)
    return pixel.eval(), decoder.eval()


def test_shapes_for_every_prompt_kind():
    pixel, decoder = build()
    mask_features, scales = pixel(features())
    assert mask_features.shape == (2, 32, 16, 16)
    assert [tuple(s.shape[-2:]) for s in scales] == [(2, 2), (4, 4), (8, 8)]
    queries = torch.randn(2, 6, 32)
    out = decoder(scales, mask_features, queries, refer_embeddings=torch.randn(2, 1, 32),
                  class_embeddings=torch.randn(2, 3, 32), region_embeddings=torch.randn(2, 2, 32),
                  predict_boxes=True, return_intermediate_masks=True)
    assert out.pred_masks.shape == (2, 6, 16, 16)
    assert out.refer_logits.shape == (2, 6, 1)
    assert out.class_logits.shape == (2, 6, 3)
    assert out.region_logits.shape == (2, 6, 2)
    assert out.instance_embeddings.shape == (2, 6, 32)
    assert out.pred_boxes.shape == (2, 6, 4) and ((out.pred_boxes >= 0) & (out.pred_boxes <= 1)).all()
    assert len(out.aux_outputs) == 3 and len(out.intermediate_masks) == 4


def naive_bilinear(value, x, y):
    """value (C, H, W); (x, y) in [0, 1] with align_corners=False and zero padding."""
    channels, height, width = value.shape
    px, py = x * width - 0.5, y * height - 0.5
    x0, y0 = int(torch.floor(px)), int(torch.floor(py))
    out = torch.zeros(channels)
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= xx < width and 0 <= yy < height:
                weight = (1 - abs(px - xx)) * (1 - abs(py - yy))
                out += weight * value[:, yy, xx]
    return out


def test_deformable_sampling_matches_a_naive_reference():
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (2, 2)]
    batch, heads, dim, queries, points = 1, 2, 3, 2, 2
    value = torch.randn(batch, sum(h * w for h, w in shapes), heads, dim, generator=gen)
    locations = torch.rand(batch, queries, heads, len(shapes), points, 2, generator=gen) * 1.2 - 0.1
    weights = torch.rand(batch, queries, heads, len(shapes), points, generator=gen)
    fast = deformable_sample(value, shapes, locations, weights)
    per_level = value[0].split([h * w for h, w in shapes], dim=0)
    for q in range(queries):
        for m in range(heads):
            expected = torch.zeros(dim)
            for level, (h, w) in enumerate(shapes):
                grid = per_level[level][:, m].T.reshape(dim, h, w)
                for p in range(points):
                    x, y = locations[0, q, m, level, p]
                    expected += weights[0, q, m, level, p] * naive_bilinear(grid, x, y)
            assert torch.allclose(fast[0, q, m * dim:(m + 1) * dim], expected, atol=1e-5)


def test_gradients_reach_every_used_parameter():
    pixel, decoder = build()
    pixel.train(), decoder.train()
    mask_features, scales = pixel(features())
    out = decoder(scales, mask_features, torch.randn(2, 6, 32), refer_embeddings=torch.randn(2, 1, 32),
                  class_embeddings=torch.randn(2, 3, 32), region_embeddings=torch.randn(2, 2, 32))
    loss = out.pred_masks.mean() + out.refer_logits.sum() + out.class_logits.sum() + out.region_logits.sum()
    loss = loss + out.instance_embeddings.sum() + sum(a["pred_masks"].mean() for a in out.aux_outputs)
    loss.backward()
    unused = ("SEG_query_embed", "box_embed", "iou_head", "query_feat", "transformer.level_embed")
    dead = [n for module in (pixel, decoder) for n, p in module.named_parameters()
            if (p.grad is None or p.grad.abs().sum() == 0) and not n.startswith(unused)]
    assert not dead, dead


def test_empty_masks_attend_everywhere_without_nans():
    pixel, decoder = build()
    mask_features, scales = pixel(features())
    with torch.no_grad():
        decoder.mask_embed.layers[-1].weight.zero_()
        decoder.mask_embed.layers[-1].bias.fill_(-50.0)  # every predicted mask is empty
    out = decoder(scales, -mask_features.abs() - 1, torch.randn(2, 6, 32), refer_embeddings=torch.randn(2, 1, 32))
    assert torch.isfinite(out.pred_masks).all() and torch.isfinite(out.refer_logits).all()


def test_deterministic_and_bf16_autocast():
    pixel, decoder = build()
    inputs = features()
    queries = torch.randn(2, 6, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mf, sc = pixel(inputs)
        first = decoder(sc, mf, queries).pred_masks
        second = decoder(sc, mf, queries).pred_masks
        assert torch.equal(first, second)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mf16, sc16 = pixel(inputs)
            low = decoder(sc16, mf16, queries).pred_masks
    assert torch.isfinite(low.float()).all()
    assert F.cosine_similarity(low.float().flatten(), first.flatten(), dim=0) > 0.95


@pytest.mark.skipif(not PARAMS_TSV.exists(), reason="shared/hyperseg3b_official_params.tsv is not beside the repo")
def test_names_and_shapes_match_the_release_at_3b_sizes():
    rows = [line.split("\t") for line in PARAMS_TSV.read_text().splitlines()[1:] if line.strip()]
    official = {name: tuple(int(d) for d in shape.split("x")) for name, shape, _ in rows}
    with torch.device("meta"):
        pixel = PixelDecoder((128, 256, 512, 1024))
        decoder = MaskDecoder()
    ours = {f"pixel_decoder.{k}": tuple(v.shape) for k, v in pixel.state_dict().items()}
    ours |= {f"predictor.{k}": tuple(v.shape) for k, v in decoder.state_dict().items()}
    theirs = {k: v for k, v in official.items() if k.startswith(("pixel_decoder.", "predictor."))}
    assert ours == theirs
