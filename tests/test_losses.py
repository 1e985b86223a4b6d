"""Point sampling, matching and losses: permutation recovery, empty targets, score semantics, association."""

from __future__ import annotations

import pytest
import torch

from hyperseg_lite.modeling.losses import (
    HyperSegCriterion,
    SegmentationTarget,
    instance_contrastive_loss,
    prompt_presence_loss,
    prompt_score_loss,
    sigmoid_bce_dice_mask_loss,
)
from hyperseg_lite.modeling.matcher import HungarianMatcher
from hyperseg_lite.modeling.point_sampling import point_sample, uncertain_point_coords


def blobs(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """n square masks (side size/3) at random places."""
    gen = torch.Generator().manual_seed(seed)
    side = size // 3
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        y, x = torch.randint(0, size - side, (2,), generator=gen)
        masks[i, y : y + side, x : x + side] = True
    return masks


def confident(masks: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Mask logits of +-20 that reproduce ``masks`` (optionally downsampled to ``size``)."""
    logits = torch.where(masks, 20.0, -20.0)
    if size is not None:
        logits = torch.nn.functional.interpolate(logits[None], size=(size, size), mode="area")[0]
    return logits


def empty_target(size: int = 32) -> SegmentationTarget:
    return SegmentationTarget(
        masks=torch.zeros(0, size, size, dtype=torch.bool), labels=torch.zeros(0, dtype=torch.long)
    )


# ---------------------------------------------------------------- point sampling
def test_point_sample_reads_pixel_centres_at_any_resolution():
    values = torch.arange(16.0).reshape(1, 1, 4, 4)
    ys, xs = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    centres = torch.stack([(xs.flatten() + 0.5) / 4, (ys.flatten() + 0.5) / 4], dim=-1)[None]
    assert torch.allclose(point_sample(values, centres), values.flatten()[None, None])
    assert point_sample(values[:, 0], centres).shape == (1, 16)
    # a 4x4 mask and its nearest 16x16 upsampling agree wherever a point is not on a block edge
    mask = blobs(1, size=4, seed=3).float()
    big = torch.nn.functional.interpolate(mask[None], scale_factor=4, mode="nearest")[0]
    assert torch.allclose(point_sample(mask, centres), point_sample(big, centres))
    assert point_sample(torch.zeros(0, 1, 4, 4), torch.zeros(0, 5, 2)).shape == (0, 1, 5)


def test_uncertain_points_gather_at_the_boundary():
    torch.manual_seed(0)
    xs = torch.linspace(0, 1, 64)
    logits = ((xs - 0.5) * 40).expand(64, 64)[None, None].repeat(2, 1, 1, 1)  # boundary at x = 0.5
    coords = uncertain_point_coords(logits, num_points=400, oversample_ratio=3.0, importance_sample_ratio=0.75)
    assert coords.shape == (2, 400, 2) and coords.min() >= 0 and coords.max() <= 1
    near = ((coords[..., 0] - 0.5).abs() < 0.15).float()
    assert near[:, :300].mean() > 0.9  # the importance share sits on the boundary
    assert near[:, 300:].mean() < 0.6  # the random share does not


# ---------------------------------------------------------------- matcher
def test_matcher_recovers_a_permutation_with_targets_at_higher_resolution():
    torch.manual_seed(0)
    masks = blobs(3, size=64)
    perm = torch.tensor([4, 0, 2])  # object i is predicted by query perm[i]
    pred = torch.full((1, 6, 16, 16), -20.0)
    pred[0, perm] = confident(masks, size=16)
    logits = torch.full((1, 6, 3), -5.0)
    logits[0, perm, torch.arange(3)] = 5.0
    target = SegmentationTarget(masks=masks, labels=torch.arange(3))
    ((queries, objects),) = HungarianMatcher(num_points=512)(pred, logits, torch.ones(1, 3, dtype=torch.bool), [target])
    assert queries.dtype == objects.dtype == torch.long
    assert queries.tolist() == sorted(queries.tolist())
    assert dict(zip(objects.tolist(), queries.tolist())) == {0: 4, 1: 0, 2: 2}


def test_matcher_handles_empty_targets_more_objects_than_queries_and_nans():
    torch.manual_seed(0)
    matcher = HungarianMatcher(num_points=256)
    pred = torch.randn(3, 2, 8, 8)
    pred[2, 0] = float("nan")
    logits = torch.randn(3, 2, 4)
    logits[2, 1, 0] = float("nan")
    valid = torch.tensor([[True] * 4, [True, True, False, False], [True] * 4])
    many = SegmentationTarget(masks=blobs(4), labels=torch.tensor([0, 1, 2, 3]))
    padded = SegmentationTarget(masks=blobs(1), labels=torch.tensor([3]))  # label on a padded column
    (q0, t0), (q1, t1), (q2, t2) = matcher(pred, logits, valid, [empty_target(), padded, many])
    assert q0.numel() == t0.numel() == 0 and q0.dtype == t0.dtype == torch.long
    assert q1.numel() == t1.numel() == 1
    assert sorted(q2.tolist()) == [0, 1] and len(set(t2.tolist())) == 2  # min(Q, n) pairs, one-to-one


# ---------------------------------------------------------------- criterion
def test_perfect_predictions_cost_little_and_training_converges():
    torch.manual_seed(0)
    masks = blobs(2, seed=1)
    target = SegmentationTarget(masks=masks, labels=torch.tensor([0, 1]))
    valid = torch.ones(1, 2, dtype=torch.bool)
    criterion = HyperSegCriterion(num_points=512)
    perfect = torch.full((1, 4, 8, 8), -20.0)
    perfect[0, :2] = confident(masks, size=8)  # predictions at 1/4 of the target resolution
    good_logits = torch.full((1, 4, 2), -8.0)
    good_logits[0, 0, 0] = good_logits[0, 1, 1] = 8.0
    good, _ = criterion(perfect, good_logits, valid, [target])
    bad, _ = criterion(-perfect, -good_logits, valid, [target])
    assert set(good) == {"loss_cls", "loss_mask", "loss_dice"}
    # uncertain points sit on mask edges, where bilinear reads of +-20 logits and of the 0/1 target differ:
    # a perfect mask keeps a small loss there (~1% of the wrong prediction's)
    assert sum(good.values()) < 0.05 * sum(bad.values())
    assert good["loss_cls"] < 1e-2

    pred = torch.zeros(1, 4, 8, 8, requires_grad=True)
    logits = torch.zeros(1, 4, 2, requires_grad=True)
    optimizer = torch.optim.Adam([pred, logits], lr=0.2)
    history = []
    for _ in range(30):
        losses, _ = criterion(pred, logits, valid, [target])
        total = sum(losses.values())
        history.append(total.item())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert history[-1] < 0.5 * history[0]


def test_no_target_pushes_every_score_down_and_has_no_mask_loss():
    criterion = HyperSegCriterion(num_points=256)
    pred = torch.randn(2, 5, 8, 8, requires_grad=True)
    logits = torch.zeros(2, 5, 1, requires_grad=True)
    losses, indices = criterion(pred, logits, torch.ones(2, 1, dtype=torch.bool), [empty_target(), empty_target()])
    assert all(q.numel() == 0 and t.numel() == 0 for q, t in indices)
    assert losses["loss_mask"] == 0 and losses["loss_dice"] == 0 and losses["loss_cls"] > 0
    sum(losses.values()).backward()
    assert (logits.grad > 0).all()  # gradient descent lowers every score
    assert pred.grad is not None and (pred.grad == 0).all()


def test_unmatched_rows_are_down_weighted_by_eos_coef():
    logits = torch.zeros(1, 4, 2)
    target = SegmentationTarget(masks=blobs(1), labels=torch.tensor([1]))
    indices = [(torch.tensor([2]), torch.tensor([0]))]
    valid = torch.ones(1, 2, dtype=torch.bool)
    # at logit 0 every cell costs log 2, whatever the weights
    assert torch.isclose(
        prompt_score_loss(logits, valid, [target], indices, eos_coef=0.1), torch.tensor(0.6931), atol=1e-4
    )
    logits[0, 2, 1] = 10.0  # the positive cell becomes right: only the other cells remain
    low = prompt_score_loss(logits, valid, [target], indices, eos_coef=0.1)
    high = prompt_score_loss(logits, valid, [target], indices, eos_coef=1.0)
    assert low < high


def test_invalid_prompt_columns_do_not_count():
    torch.manual_seed(0)
    target = SegmentationTarget(masks=blobs(1), labels=torch.tensor([0]))
    valid = torch.tensor([[True, False]])
    criterion = HyperSegCriterion(num_points=256)
    pred = torch.randn(1, 3, 8, 8)
    logits = torch.randn(1, 3, 2)
    torch.manual_seed(1)
    a, ia = criterion(pred, logits, valid, [target])
    changed = logits.clone()
    changed[..., 1] = 100.0
    torch.manual_seed(1)
    b, ib = criterion(pred, changed, valid, [target])
    assert torch.equal(ia[0][0], ib[0][0])
    for key in a:
        assert torch.isclose(a[key], b[key]), key


def test_aux_layers_are_matched_separately_and_add_their_own_losses():
    torch.manual_seed(0)
    masks = blobs(2, seed=2)
    target = SegmentationTarget(masks=masks, labels=torch.tensor([0, 1]))
    valid = torch.ones(1, 2, dtype=torch.bool)

    def perfect(perm):
        pred = torch.full((1, 4, 32, 32), -20.0)
        pred[0, perm] = confident(masks)
        logits = torch.full((1, 4, 2), -8.0)
        logits[0, perm, torch.arange(2)] = 8.0
        return pred, logits

    final, aux_a, aux_b = perfect(torch.tensor([0, 1])), perfect(torch.tensor([3, 2])), perfect(torch.tensor([1, 3]))
    losses, indices = HyperSegCriterion(num_points=256)(
        *final, valid, [target], aux_outputs=[aux_a, {"pred_masks": aux_b[0], "prompt_logits": aux_b[1]}]
    )
    expected = {f"loss_{kind}{suffix}" for kind in ("cls", "mask", "dice") for suffix in ("", "_0", "_1")}
    assert set(losses) == expected
    for suffix in ("", "_0", "_1"):  # each layer found its own permutation (a wrong one costs ~80)
        assert sum(losses[f"loss_{kind}{suffix}"] for kind in ("cls", "mask", "dice")) < 5.0
    assert dict(zip(indices[0][1].tolist(), indices[0][0].tolist())) == {0: 0, 1: 1}  # final layer's matching


def test_losses_are_float32_under_bf16_autocast():
    torch.manual_seed(0)
    target = SegmentationTarget(masks=blobs(2), labels=torch.tensor([0, 1]))
    pred = torch.randn(1, 4, 8, 8, requires_grad=True)
    logits = torch.randn(1, 4, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses, _ = HyperSegCriterion(num_points=256)(
            pred.bfloat16(), logits.bfloat16(), torch.ones(1, 3, dtype=torch.bool), [target]
        )
        total = sum(losses.values())
    assert all(value.dtype == torch.float32 and torch.isfinite(value) for value in losses.values())
    total.backward()
    assert pred.grad.abs().sum() > 0 and logits.grad.abs().sum() > 0


def test_mask_loss_normalises_by_target_count():
    torch.manual_seed(0)
    target = SegmentationTarget(masks=blobs(2), labels=torch.tensor([0, 0]))
    pred = torch.zeros(1, 2, 8, 8)
    indices = [(torch.tensor([0, 1]), torch.tensor([0, 1]))]
    bce, dice = sigmoid_bce_dice_mask_loss(pred, [target], indices, num_points=64)
    torch.manual_seed(0)
    bce_2, dice_2 = sigmoid_bce_dice_mask_loss(pred, [target], indices, num_masks=4, num_points=64)
    assert torch.isclose(bce, torch.tensor(0.6931), atol=1e-4)  # logit 0 -> log 2 per point, mean per mask
    assert torch.isclose(bce_2, bce / 2) and torch.isclose(dice_2, dice / 2)


# ---------------------------------------------------------------- association
def test_contrastive_loss_prefers_matching_identities():
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(4, 16, generator=gen)
    ids = torch.arange(4)
    same = instance_contrastive_loss(emb, ids, emb + 0.01 * torch.randn(4, 16, generator=gen), ids)
    shuffled = instance_contrastive_loss(emb, ids, emb[torch.tensor([1, 2, 3, 0])], ids)
    assert same < shuffled
    # a newcomer in frame b (no partner in a) is skipped
    extra = torch.cat([emb, torch.randn(1, 16, generator=gen)])
    assert torch.isclose(
        instance_contrastive_loss(emb, ids, extra, torch.tensor([0, 1, 2, 3, 9])),
        instance_contrastive_loss(emb, ids, emb, ids),
    )
    lonely = torch.randn(2, 16, requires_grad=True)
    zero = instance_contrastive_loss(lonely, torch.tensor([7, 8]), lonely, torch.tensor([1, 2]))
    assert zero.item() == 0 and zero.requires_grad
    zero.backward()
    assert lonely.grad is not None and (lonely.grad == 0).all()


def test_presence_loss_reads_each_prompts_best_query_and_pushes_a_refusal_down():
    """A no-target sample (no labels) has its best wrong query pushed down, a present prompt its best query up."""
    # 1 image, 3 queries, 2 prompt columns
    logits = torch.tensor([[[3.0, -2.0], [-1.0, 4.0], [0.5, 0.0]]], requires_grad=True)
    absent = SegmentationTarget(masks=blobs(0), labels=torch.zeros(0, dtype=torch.long))
    loss = prompt_presence_loss(logits, torch.tensor([[True, False]]), [absent])
    assert torch.isclose(loss, torch.nn.functional.softplus(torch.tensor(3.0)))  # -log(1 - sigmoid(3))
    loss.backward()
    assert logits.grad[0, 0, 0] > 0 and (logits.grad[0, 1:, 0] == 0).all()  # only the best query moves
    assert (logits.grad[..., 1] == 0).all()  # the padded column does not count
    present = SegmentationTarget(masks=blobs(1), labels=torch.tensor([1]))
    up = prompt_presence_loss(logits.detach(), None, [present])
    softplus = torch.nn.functional.softplus
    assert torch.isclose(up, (softplus(torch.tensor(3.0)) + softplus(torch.tensor(-4.0))) / 2)  # 0 wrong, 1 right


def test_matched_presence_loss_pushes_the_matched_query_up_and_the_best_wrong_one_down():
    """With the matching, a present prompt whose best query is a wrong object has that query pushed down."""
    softplus = torch.nn.functional.softplus
    # 1 image, 3 queries, 1 prompt: query 0 scores highest but the target is matched to query 1
    logits = torch.tensor([[[3.0], [1.0], [-2.0]]], requires_grad=True)
    present = SegmentationTarget(masks=blobs(1), labels=torch.tensor([0]))
    matching = [(torch.tensor([1]), torch.tensor([0]))]
    loss = prompt_presence_loss(logits, None, [present], matching)
    assert torch.isclose(loss, (softplus(torch.tensor(3.0)) + softplus(torch.tensor(-1.0))) / 2)
    loss.backward()
    assert logits.grad[0, 0, 0] > 0 and logits.grad[0, 1, 0] < 0 and logits.grad[0, 2, 0] == 0
    best = prompt_presence_loss(logits.detach(), None, [present])  # the best query, a wrong object, goes up
    assert torch.isclose(best, softplus(torch.tensor(-3.0)))
    # an absent prompt reads its best query either way
    absent = SegmentationTarget(masks=blobs(0), labels=torch.zeros(0, dtype=torch.long))
    empty = [(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))]
    assert torch.isclose(
        prompt_presence_loss(logits.detach(), None, [absent], empty),
        prompt_presence_loss(logits.detach(), None, [absent]),
    )


def test_criterion_reads_the_matching_for_the_matched_presence_loss():
    torch.manual_seed(0)
    target = SegmentationTarget(masks=blobs(1), labels=torch.tensor([0]))
    pred, logits = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 1)
    losses, indices = HyperSegCriterion(num_points=256, presence_weight=1.0, presence_query="matched")(
        pred, logits, None, [target]
    )
    assert torch.isclose(losses["loss_presence"], prompt_presence_loss(logits, None, [target], indices))
    with pytest.raises(ValueError, match="presence_query"):
        HyperSegCriterion(presence_query="first")


def test_presence_loss_is_off_unless_weighted():
    torch.manual_seed(0)
    target = SegmentationTarget(masks=blobs(1), labels=torch.tensor([0]))
    pred, logits = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 1)
    torch.manual_seed(0)
    off, _ = HyperSegCriterion(num_points=256)(pred, logits, None, [target])
    torch.manual_seed(0)  # the same sampled points, so the same matching
    on, _ = HyperSegCriterion(num_points=256, presence_weight=2.0)(pred, logits, None, [target])
    assert "loss_presence" not in off
    expected = 2.0 * prompt_presence_loss(logits, None, [target])
    assert torch.isclose(on["loss_presence"], expected)
    assert torch.isclose(on["loss_cls"], off["loss_cls"])
