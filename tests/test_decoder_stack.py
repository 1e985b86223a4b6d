"""Pixel decoder, deformable attention and masked-attention decoder: shapes, numerics, release names."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import one_thread

from hyperseg_lite.modeling.deformable_attention import (
    MultiScaleDeformableAttention,
    deformable_sample,
    deformable_sample_gather,
    deformable_sample_grid,
)
from hyperseg_lite.modeling.mask_decoder import MaskDecoder
from hyperseg_lite.modeling.pixel_decoder import DeformableEncoder, PixelDecoder
from hyperseg_lite.modeling.position_encoding import sine_position_embedding

PARAMS_TSV = Path(__file__).resolve().parents[1] / "docs" / "hyperseg3b_official_params.tsv"  # the repo's copy
CHANNELS = (8, 16, 32, 64)
HIDDEN, QUERIES = 32, 6
# never read in forward_woconcat with LLM queries (kept for checkpoint compatibility; see mask_decoder.py)
UNUSED = ("SEG_query_embed", "query_feat", "iou_head")


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Toy tensors gain nothing from intra-op threads, and on a busy CPU their sync costs ~10 ms per op."""
    with one_thread():
        yield


def features(batch: int = 2, size: int = 64, seed: int = 0) -> list[torch.Tensor]:
    """res2..res5 of a size x size image."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, size // s, size // s, generator=gen) for c, s in zip(CHANNELS, (4, 8, 16, 32))]


def build(seed: int = 0) -> tuple[PixelDecoder, MaskDecoder]:
    torch.manual_seed(seed)
    pixel = PixelDecoder(
        CHANNELS, conv_dim=HIDDEN, mask_dim=HIDDEN, num_heads=4, dim_feedforward=64, num_encoder_layers=2, num_groups=8
    )
    decoder = MaskDecoder(
        hidden_dim=HIDDEN, num_queries=QUERIES, num_heads=4, dim_feedforward=64, num_layers=3, mask_dim=HIDDEN
    )
    return pixel.eval(), decoder.eval()


def prompts(batch: int = 2, seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "queries": torch.randn(batch, QUERIES, HIDDEN, generator=gen),
        "refer_embeddings": torch.randn(batch, 1, HIDDEN, generator=gen),
        "class_embeddings": torch.randn(batch, 3, HIDDEN, generator=gen),
        "region_embeddings": torch.randn(batch, 2, HIDDEN, generator=gen),
    }


def test_shapes_for_every_prompt_kind():
    pixel, decoder = build()
    with torch.no_grad():
        mask_features, scales = pixel(features())
        out = decoder(scales, mask_features, **prompts(), predict_boxes=True, return_intermediate_masks=True)
    assert mask_features.shape == (2, HIDDEN, 16, 16)
    assert [tuple(s.shape) for s in scales] == [
        (2, HIDDEN, 2, 2),
        (2, HIDDEN, 4, 4),
        (2, HIDDEN, 8, 8),
    ]  # strides 32..8
    assert out.pred_masks.shape == (2, QUERIES, 16, 16)
    assert out.refer_logits.shape == (2, QUERIES, 1)
    assert out.class_logits.shape == (2, QUERIES, 3)
    assert out.region_logits.shape == (2, QUERIES, 2)
    assert out.instance_embeddings.shape == out.query_states.shape == (2, QUERIES, HIDDEN)
    assert out.pred_boxes.shape == (2, QUERIES, 4) and ((out.pred_boxes >= 0) & (out.pred_boxes <= 1)).all()
    assert len(out.aux_outputs) == 3 and len(out.intermediate_masks) == 4
    for aux, masks in zip(out.aux_outputs, out.intermediate_masks):
        assert set(aux) == {"pred_masks", "refer_logits", "class_logits", "region_logits", "pred_boxes"}
        assert torch.equal(aux["pred_masks"], masks) and aux["class_logits"].shape == (2, QUERIES, 3)
    assert torch.equal(out.intermediate_masks[-1], out.pred_masks)


def test_logits_are_none_without_prompts():
    pixel, decoder = build()
    with torch.no_grad():
        mask_features, scales = pixel(features())
        out = decoder(scales, mask_features, prompts()["queries"])
    assert out.refer_logits is out.class_logits is out.region_logits is out.pred_boxes is out.intermediate_masks is None
    assert set(out.aux_outputs[0]) == {"pred_masks", "refer_logits", "class_logits", "region_logits"}


def test_sine_position_embedding_against_its_formula():
    height, width, feats = 3, 5, 4
    pos = sine_position_embedding(torch.zeros(1, 7, height, width), feats)
    assert pos.shape == (1, 2 * feats, height, width) and pos.dtype == torch.float32
    for k in range(feats):
        freq = 10000.0 ** (2 * (k // 2) / feats)
        trig = math.sin if k % 2 == 0 else math.cos
        for i in range(height):
            for j in range(width):
                y = (i + 1) / (height + 1e-6) * 2 * math.pi
                x = (j + 1) / (width + 1e-6) * 2 * math.pi
                assert abs(pos[0, k, i, j].item() - trig(y / freq)) < 1e-6  # y channels first
                assert abs(pos[0, feats + k, i, j].item() - trig(x / freq)) < 1e-6


def naive_bilinear(value: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """value (C, H, W); (x, y) in [0, 1] with align_corners=False and zero padding, one point at a time."""
    channels, height, width = value.shape
    px, py = x * width - 0.5, y * height - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(channels, dtype=torch.float64)
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= xx < width and 0 <= yy < height:
                out += (1 - abs(px - xx)) * (1 - abs(py - yy)) * value[:, yy, xx].double()
    return out


def naive_deformable(value, shapes, locations, weights) -> torch.Tensor:
    """Loops over batch, query, head, level, point: value (B, S, M, D) -> (B, Lq, M * D)."""
    batch, _, heads, dim = value.shape
    queries = locations.shape[1]
    per_level = value.split([h * w for h, w in shapes], dim=1)
    out = torch.zeros(batch, queries, heads * dim, dtype=torch.float64)
    for b in range(batch):
        for q in range(queries):
            for m in range(heads):
                for level, (h, w) in enumerate(shapes):
                    grid = per_level[level][b, :, m].T.reshape(dim, h, w)
                    for p in range(locations.shape[4]):
                        x, y = locations[b, q, m, level, p].tolist()
                        out[b, q, m * dim : (m + 1) * dim] += weights[b, q, m, level, p].item() * naive_bilinear(
                            grid, x, y
                        )
    return out


def test_deformable_sampling_matches_a_naive_reference():
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (2, 5)]
    batch, heads, dim, queries, points = 2, 2, 3, 3, 2
    value = torch.randn(batch, sum(h * w for h, w in shapes), heads, dim, generator=gen)
    locations = torch.rand(batch, queries, heads, len(shapes), points, 2, generator=gen) * 1.4 - 0.2  # some outside
    weights = torch.rand(batch, queries, heads, len(shapes), points, generator=gen)
    expected = naive_deformable(value, shapes, locations, weights)
    for form in (deformable_sample, deformable_sample_grid, deformable_sample_gather):
        assert torch.allclose(form(value, shapes, locations, weights).double(), expected, atol=1e-5), form.__name__


def test_the_gather_form_of_deformable_sampling_matches_grid_sample_in_values_and_gradients():
    """The CPU path (embedding_bag over bilinear taps) must train as the grid_sample path does: points far
    outside every level, on the borders and exactly on pixel centres included."""
    gen = torch.Generator().manual_seed(1)
    shapes = [(4, 4), (3, 6), (2, 2)]
    batch, heads, dim, queries, points = 2, 2, 4, 5, 3
    value = torch.randn(batch, sum(h * w for h, w in shapes), heads, dim, generator=gen, dtype=torch.float64)
    locations = torch.rand(batch, queries, heads, len(shapes), points, 2, generator=gen, dtype=torch.float64) * 3 - 1
    locations[0, 0, 0, :, 0] = torch.tensor([0.0, 1.0])  # the map's corners
    locations[0, 0, 0, :, 1] = torch.tensor([1.0, 0.0])
    locations[0, 1, 0, 0, 0] = torch.tensor([0.125, 0.375])  # a pixel centre of the 4 x 4 level
    weights = torch.rand(batch, queries, heads, len(shapes), points, generator=gen, dtype=torch.float64)
    outputs, grads = [], []
    for form in (deformable_sample_grid, deformable_sample_gather):
        inputs = [t.clone().float().requires_grad_() for t in (value, locations, weights)]
        out = form(inputs[0], shapes, inputs[1], inputs[2])
        outputs.append(out.detach())
        grads.append(torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), inputs))
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5)
    for grid_grad, gather_grad in zip(*grads):
        assert torch.allclose(grid_grad, gather_grad, atol=1e-4, rtol=1e-4)
    broken = locations.float().clone()
    broken[0, 0, 0, 0, 0] = float("nan")  # a diverged model: no index error, the other points still sampled
    out = deformable_sample_gather(value.float(), shapes, broken, weights.float())
    assert torch.isfinite(out).all() and torch.allclose(out[1], outputs[1][1], atol=1e-5)


def test_deformable_attention_module_matches_a_naive_reference():
    """Offsets are in pixels of each level: checks the (W, H) normaliser on non-square levels."""
    torch.manual_seed(0)
    shapes = [(3, 5), (2, 3)]
    attn = MultiScaleDeformableAttention(dim=8, num_levels=2, num_heads=2, num_points=2)
    with torch.no_grad():
        attn.sampling_offsets.weight.normal_(std=0.5)
        attn.attention_weights.weight.normal_()
    batch, queries = 2, 4
    query = torch.randn(batch, queries, 8)
    values = torch.randn(batch, sum(h * w for h, w in shapes), 8)
    reference = torch.rand(batch, queries, 2, 2)
    with torch.no_grad():
        fast = attn(query, reference, values, shapes)
        value = attn.value_proj(values).view(batch, -1, 2, 4)
        offsets = attn.sampling_offsets(query).view(batch, queries, 2, 2, 2, 2)
        weights = attn.attention_weights(query).view(batch, queries, 2, 4).softmax(-1).view(batch, queries, 2, 2, 2)
        locations = torch.empty_like(offsets)
        for level, (h, w) in enumerate(shapes):
            locations[:, :, :, level, :, 0] = reference[:, :, None, level, None, 0] + offsets[:, :, :, level, :, 0] / w
            locations[:, :, :, level, :, 1] = reference[:, :, None, level, None, 1] + offsets[:, :, :, level, :, 1] / h
        expected = attn.output_proj(naive_deformable(value, shapes, locations, weights).float())
    assert torch.allclose(fast, expected, atol=1e-5)


def test_deformable_attention_init_is_the_ring():
    attn = MultiScaleDeformableAttention(dim=16, num_levels=3, num_heads=4, num_points=2)
    bias = attn.sampling_offsets.bias.view(4, 3, 2, 2)
    # head 0 points right, head 1 down, head 2 left, head 3 up; point k at distance k + 1 on every level
    direction = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    assert torch.allclose(bias, direction[:, None, None] * torch.tensor([1.0, 2.0]).view(1, 1, 2, 1), atol=1e-6)
    assert not attn.attention_weights.weight.any() and not attn.sampling_offsets.weight.any()


def test_reference_points_are_pixel_centres():
    ref = DeformableEncoder.reference_points([(2, 4), (1, 2)], torch.ones(3, 2, 2))
    assert ref.shape == (3, 8 + 2, 2, 2) and ref.dtype == torch.float32
    assert torch.allclose(ref[0, :8, 0, 0], torch.tensor([0.125, 0.375, 0.625, 0.875] * 2))
    assert torch.allclose(ref[0, :8, 1, 1], torch.tensor([0.25] * 4 + [0.75] * 4))
    assert torch.allclose(ref[2, 8:, 0], torch.tensor([[0.25, 0.5], [0.75, 0.5]]))
    assert torch.equal(ref[:, :, 0], ref[:, :, 1])  # no padding: the same point on every level


@pytest.mark.parametrize("predict_boxes", [False, True])
def test_gradients_reach_every_used_parameter(predict_boxes):
    pixel, decoder = build()
    pixel.train(), decoder.train()
    with torch.no_grad():  # leave the zero init, under which level_embed and offset weights get no gradient
        for name, p in pixel.named_parameters():
            if name.endswith(("sampling_offsets.weight", "attention_weights.weight")):
                p.normal_(std=0.05)
    mask_features, scales = pixel(features())
    out = decoder(scales, mask_features, **prompts(), predict_boxes=predict_boxes)
    loss = out.pred_masks.mean() + out.refer_logits.sum() + out.class_logits.sum() + out.region_logits.sum()
    loss = loss + out.instance_embeddings.sum() + sum(a["pred_masks"].mean() for a in out.aux_outputs)
    if predict_boxes:
        loss = loss + out.pred_boxes.sum()
    loss.backward()
    unused = UNUSED if predict_boxes else UNUSED + ("box_embed",)
    dead = [
        name
        for module in (pixel, decoder)
        for name, p in module.named_parameters()
        if (p.grad is None or not p.grad.abs().sum() > 0) and not name.startswith(unused)
    ]
    assert not dead, dead
    assert all(p.grad is None for name, p in decoder.named_parameters() if name.startswith(unused))


def test_an_empty_mask_attends_everywhere():
    """All-background masks must behave like all-foreground ones (both: attend to every pixel), with no NaNs."""
    pixel, decoder = build()
    inputs = prompts()
    with torch.no_grad():
        _, scales = pixel(features())
        decoder.mask_embed.layers[-1].weight.zero_()
        decoder.mask_embed.layers[-1].bias.fill_(1.0)  # mask logits = sum of mask_features over channels
        ones = torch.ones(2, HIDDEN, 16, 16)
        empty = decoder(
            scales,
            -ones,
            inputs["queries"],
            refer_embeddings=inputs["refer_embeddings"],
            return_intermediate_masks=True,
        )
        full = decoder(scales, ones, inputs["queries"], refer_embeddings=inputs["refer_embeddings"])
        half = ones.clone()
        half[..., :8] = -1
        partial = decoder(scales, half, inputs["queries"], refer_embeddings=inputs["refer_embeddings"])
    assert all((m < 0).all() for m in empty.intermediate_masks)  # every query's mask is empty at every layer
    assert torch.isfinite(empty.query_states).all() and torch.isfinite(empty.refer_logits).all()
    assert torch.allclose(empty.query_states, full.query_states, atol=1e-6)
    assert not torch.allclose(partial.query_states, full.query_states, atol=1e-3)  # the mask does act


def test_deterministic_eval():
    outputs = []
    for _ in range(2):
        pixel, decoder = build(seed=3)
        with torch.no_grad():
            mask_features, scales = pixel(features())
            outputs.append(decoder(scales, mask_features, **prompts()))
    assert torch.equal(outputs[0].pred_masks, outputs[1].pred_masks)
    assert torch.equal(outputs[0].class_logits, outputs[1].class_logits)


def test_bf16_autocast_and_half_precision_inputs():
    pixel, decoder = build()
    inputs, kwargs = features(), prompts()
    with torch.no_grad():
        mask_features, scales = pixel(inputs)
        reference = decoder(scales, mask_features, **kwargs).pred_masks
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mf, sc = pixel(inputs)
            autocast = decoder(sc, mf, **kwargs).pred_masks
        pixel.half(), decoder.half()
        mf, sc = pixel([x.half() for x in inputs])
        half = decoder(sc, mf, **{k: v.half() for k, v in kwargs.items()}).pred_masks
    assert half.dtype == torch.float16
    for low in (autocast, half):
        assert torch.isfinite(low.float()).all()
        assert F.cosine_similarity(low.float().flatten(), reference.flatten(), dim=0) > 0.99


@pytest.mark.gpu
def test_cuda_bf16_autocast_and_fp16():
    pixel, decoder = build()
    pixel, decoder = pixel.cuda(), decoder.cuda()
    inputs = [x.cuda() for x in features()]
    kwargs = {k: v.cuda() for k, v in prompts().items()}
    with torch.no_grad():
        mask_features, scales = pixel(inputs)
        reference = decoder(scales, mask_features, **kwargs).pred_masks
        with torch.autocast("cuda", dtype=torch.bfloat16):
            mf, sc = pixel(inputs)
            autocast = decoder(sc, mf, **kwargs).pred_masks
        pixel.half(), decoder.half()
        mf, sc = pixel([x.half() for x in inputs])
        half = decoder(sc, mf, **{k: v.half() for k, v in kwargs.items()}).pred_masks
    for low in (autocast, half):
        assert torch.isfinite(low.float()).all()
        assert F.cosine_similarity(low.float().flatten(), reference.flatten(), dim=0) > 0.99


def test_names_and_shapes_match_the_release_at_3b_sizes():
    rows = [line.split("\t") for line in PARAMS_TSV.read_text().splitlines()[1:] if line.strip()]
    official = {name: tuple(int(d) for d in shape.split("x")) for name, shape, _ in rows}
    theirs = {k: v for k, v in official.items() if k.startswith(("pixel_decoder.", "predictor."))}
    assert theirs, "the TSV lists no pixel_decoder./predictor. entries"
    with torch.device("meta"):
        pixel = PixelDecoder((128, 256, 512, 1024))
        decoder = MaskDecoder()
    ours = {f"pixel_decoder.{k}": tuple(v.shape) for k, v in pixel.state_dict().items()}
    ours |= {f"predictor.{k}": tuple(v.shape) for k, v in decoder.state_dict().items()}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert ours == theirs


def test_concat_path_changes_nothing_without_a_referring_embedding():
    """The release's concat path only adds the referring row: class and region prompts decode as before."""
    pixel, plain = build()
    _, concat = build()
    concat.enable_seg_concat()
    inputs = {k: v for k, v in prompts().items() if k != "refer_embeddings"}
    with torch.no_grad():
        mask_features, scales = pixel(features())
        a = plain(scales, mask_features, **inputs)
        b = concat(scales, mask_features, **inputs)
    assert torch.equal(a.pred_masks, b.pred_masks) and torch.equal(a.class_logits, b.class_logits)
    assert torch.equal(a.region_logits, b.region_logits)


def test_concat_path_lets_the_referring_embedding_look_at_the_image_and_trains_its_positions():
    """With the referring row in the decoder, its score depends on the pixels through the row itself: the
    same mask-query states scored against the raw embedding (the default path) differ, and the path's own
    positions (SEG_query_embed) get gradient, which they never do in the default path."""
    pixel, decoder = build()
    decoder.enable_seg_concat()
    assert torch.equal(decoder.SEG_query_embed.weight[1:], decoder.query_embed.weight)  # a gentle switch
    assert not decoder.SEG_query_embed.weight[0].any()
    decoder.train()
    inputs = prompts()
    mask_features, scales = pixel(features())
    out = decoder(scales, mask_features, **inputs)
    raw = torch.einsum("bqc,bkc->bqk", decoder.SEG_proj(out.query_states), inputs["refer_embeddings"])
    assert not torch.allclose(out.refer_logits, raw, atol=1e-3)  # scored against the updated embedding
    (out.refer_logits.sum() + out.pred_masks.mean()).backward()
    assert decoder.SEG_query_embed.weight.grad is not None and decoder.SEG_query_embed.weight.grad.abs().sum() > 0
    assert decoder.query_embed.weight.grad is None  # replaced by the concat path's positions
    with torch.no_grad():
        decoder.SEG_query_embed.weight.add_(1.0)  # as if trained
    trained = decoder.SEG_query_embed.weight.clone()
    decoder.enable_seg_concat()  # switching on again (a later run from these weights) keeps them
    assert torch.equal(decoder.SEG_query_embed.weight, trained)
