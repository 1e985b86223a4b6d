"""Matching and losses: permutation recovery, empty targets, score semantics, contrastive association."""

from __future__ import annotations

import torch

from hyperseg_lite.modeling.losses import HyperSegCriterion, SegmentationTarget, instance_contrastive_loss
from hyperseg_lite.modeling.matcher import HungarianMatcher


def blobs(n, size=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        y, x = torch.randint(0, size - 10, (2,), generator=gen)
        masks[i, y:y + 10, x:x + 10] = True
    return masks


def test_matcher_recovers_a_permutation():
    torch.manual_seed(0)
    masks = blobs(3)
    perm = torch.tensor([4, 0, 2])  # object i is predicted by query perm[i]
    pred = torch.full((1, 6, 32, 32), -20.0)
    pred[0, perm] = torch.where(masks, 20.0, -20.0)
    logits = torch.full((1, 6, 3), -5.0)
    logits[0, perm, torch.arange(3)] = 5.0
    target = SegmentationTarget(masks=masks, labels=torch.arange(3))
    (queries, objects), = HungarianMatcher(num_points=512)(pred, logits, torch.ones(1, 3, dtype=torch.bool), [target])
    assert dict(zip(objects.tolist(), queries.tolist())) == {0: 4, 1: 0, 2: 2}


def test_empty_targets_match_nothing_and_push_scores_down():
    criterion = HyperSegCriterion(num_points=256)
    pred = torch.randn(2, 5, 8, 8, requires_grad=True)
    logits = torch.zeros(2, 5, 1, requires_grad=True)
    empty = SegmentationTarget(masks=torch.zeros(0, 32, 32, dtype=torch.bool), labels=torch.zeros(0, dtype=torch.long))
    losses, indices = criterion(pred, logits, torch.ones(2, 1, dtype=torch.bool), [empty, empty])
    assert all(q.numel() == 0 for q, _ in indices)
    assert losses["loss_mask"] == 0 and losses["loss_dice"] == 0
    losses["loss_cls"].backward()
    assert (logits.grad > 0).all()  # gradient descent lowers every score


def test_perfect_predictions_cost_less_and_training_converges():
    torch.manual_seed(0)
    masks = blobs(2, seed=1)
    target = SegmentationTarget(masks=masks, labels=torch.tensor([0, 1]))
    valid = torch.ones(1, 2, dtype=torch.bool)
    criterion = HyperSegCriterion(num_points=512)
    perfect = torch.full((1, 4, 32, 32), -20.0)
    perfect[0, :2] = torch.where(masks, 20.0, -20.0)
    good_logits = torch.full((1, 4, 2), -8.0)
    good_logits[0, 0, 0] = good_logits[0, 1, 1] = 8.0
    good, _ = criterion(perfect, good_logits, valid, [target])
    bad, _ = criterion(-perfect, -good_logits, valid, [target])
    # uncertain-point sampling puts most points on boundaries, so even a perfect mask keeps a small loss
    assert sum(good.values()) < 0.1 * sum(bad.values())

    pred = torch.zeros(1, 4, 32, 32, requires_grad=True)
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


def test_invalid_prompt_columns_do_not_count():
    torch.manual_seed(0)
    target = SegmentationTarget(masks=blobs(1), labels=torch.tensor([0]))
    valid = torch.tensor([[True, False]])
    criterion = HyperSegCriterion(num_points=256)
    pred = torch.randn(1, 3, 8, 8)
    logits = torch.randn(1, 3, 2)
    torch.manual_seed(1)
    a, _ = criterion(pred, logits, valid, [target])
    changed = logits.clone()
    changed[..., 1] = 100.0
    torch.manual_seed(1)
    b, _ = criterion(pred, changed, valid, [target])
    assert torch.isclose(a["loss_cls"], b["loss_cls"])


def test_aux_layers_add_their_own_losses():
    target = SegmentationTarget(masks=blobs(1), labels=torch.tensor([0]))
    pred, logits = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 1)
    losses, _ = HyperSegCriterion(num_points=128)(pred, logits, torch.ones(1, 1, dtype=torch.bool), [target],
                                                  aux_outputs=[(pred, logits), (pred, logits)])
    assert {"loss_cls_0", "loss_mask_1", "loss_dice_1"} <= set(losses)


def test_contrastive_loss_prefers_matching_identities():
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(4, 16, generator=gen)
    ids = torch.arange(4)
    same = instance_contrastive_loss(emb, ids, emb + 0.01 * torch.randn(4, 16, generator=gen), ids)
    shuffled = instance_contrastive_loss(emb, ids, emb[torch.tensor([1, 2, 3, 0])], ids)
    assert same < shuffled
    lonely = torch.randn(2, 16, requires_grad=True)
    zero = instance_contrastive_loss(lonely, torch.tensor([7, 8]), lonely, torch.tensor([1, 2]))
    assert zero.item() == 0 and zero.requires_grad
