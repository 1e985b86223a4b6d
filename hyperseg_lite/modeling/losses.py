"""Training losses (paper Eq. 5-6): prompt-score BCE, point-sampled mask BCE + Dice, contrastive instance loss.

Prompt scores are trained as independent sigmoids: the matched query gets 1 on the prompt column its object
answers, every other (query, valid column) pair 0. So a class that is not in the image, or an expression that
matches nothing, is pushed to low scores on every query and comes back empty. That is LaSagnA's point: a
query that mixes present and absent classes (or a referring expression with no referent) must be able to
answer "nothing", which a softmax over the listed prompts cannot. The all-zero rows of unmatched queries are
many (Q - n of them), so they are down-weighted by ``eos_coef`` like Mask2Former's no-object class; otherwise
the easy "nothing here" answer would swamp the few positive cells.

Everything runs in float32 even under bf16 / fp16 autocast; masks are compared at sampled points, so targets
may have any resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .matcher import HungarianMatcher, no_autocast
from .point_sampling import point_sample, uncertain_point_coords

Indices = Sequence[tuple[torch.Tensor, torch.Tensor]]
AuxOutput = tuple[torch.Tensor, torch.Tensor] | Mapping[str, torch.Tensor]


@dataclass
class SegmentationTarget:
    """Ground truth for one prompt family of one image: one mask per object and the prompt column it answers."""

    masks: torch.Tensor  # (n, H, W) bool at the model input resolution (any size works: losses sample points)
    labels: torch.Tensor  # (n,) long: class index, 0 for a referring expression, region index
    instance_ids: torch.Tensor | None = None  # (n,) long, stable across video frames


def _zero_like_graph(*tensors: torch.Tensor) -> torch.Tensor:
    """A float32 0 that stays attached to the inputs' graph (sum of an empty slice), so backward() still works."""
    total = torch.zeros((), device=tensors[0].device)
    for tensor in tensors:
        total = total + tensor.reshape(-1)[:0].float().sum()
    return total


def _flat_matches(
    targets: Sequence[SegmentationTarget], indices: Indices, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate the per-item matches into (batch index, query index, object index) long vectors."""
    rows, queries, objects = [], [], []
    for row, (query_idx, object_idx) in enumerate(indices):
        query_idx, object_idx = query_idx.to(device), object_idx.to(device)
        rows.append(torch.full_like(query_idx, row))
        queries.append(query_idx)
        objects.append(object_idx)
    empty = torch.zeros(0, dtype=torch.long, device=device)
    return (
        torch.cat(rows) if rows else empty,
        torch.cat(queries) if queries else empty,
        torch.cat(objects) if objects else empty,
    )


def prompt_score_loss(
    prompt_logits: torch.Tensor,
    prompt_valid: torch.Tensor | None,
    targets: Sequence[SegmentationTarget],
    indices: Indices,
    eos_coef: float = 0.1,
) -> torch.Tensor:
    """Weighted-mean BCE over every query and every valid prompt column.

    Goal: 1 at (matched query, its object's label), 0 everywhere else. Rows of matched queries weigh 1, the
    all-zero rows of unmatched queries weigh ``eos_coef``; padded columns (``prompt_valid`` false) weigh 0,
    so whatever the model puts there does not change the loss.
    """
    logits = prompt_logits.float()
    batch, queries, num_prompts = logits.shape
    device = logits.device
    if prompt_valid is None:
        prompt_valid = torch.ones(batch, num_prompts, dtype=torch.bool, device=device)
    rows, query_idx, object_idx = _flat_matches(targets, indices, device)
    labels = (
        torch.cat(
            [
                target.labels.to(device=device, dtype=torch.long)[obj.to(device)]
                for target, (_, obj) in zip(targets, indices)
            ]
        )
        if len(indices)
        else object_idx
    )
    goal = torch.zeros_like(logits)
    goal[rows, query_idx, labels] = 1.0
    row_weight = torch.full((batch, queries), float(eos_coef), device=device)
    row_weight[rows, query_idx] = 1.0
    weight = row_weight[:, :, None] * prompt_valid.to(device=device, dtype=logits.dtype)[:, None, :]
    loss = F.binary_cross_entropy_with_logits(logits, goal, weight=weight, reduction="sum")
    return loss / weight.sum().clamp(min=1.0)


def prompt_presence_loss(
    prompt_logits: torch.Tensor,
    prompt_valid: torch.Tensor | None,
    targets: Sequence[SegmentationTarget],
    indices: Indices | None = None,
) -> torch.Tensor:
    """Mean BCE of each valid prompt column's score against "something here answers it".

    Not part of HyperSeg. Inference answers a referring prompt with its best query and refuses below a score
    threshold, but the per-query loss above gives the best wrong query of a no-target sample one row of
    ``eos_coef`` weight among all queries of the batch (about 1% of the loss): the model learns to find targets
    and barely learns to refuse. This loss trains the very score the threshold reads, one term per prompt.

    Without ``indices`` every column is scored by its best query (pushed up when present, down when absent).
    With the matching (``indices``), a present column is scored by the queries matched to its objects (up) and
    by its best unmatched query (down): the best query of a present target may be a wrong object, and pushing
    it up teaches the very confusion referring suffers from. An absent column is scored by its best query.
    """
    logits = prompt_logits.float()
    batch, num_queries, num_prompts = logits.shape
    device = logits.device
    if prompt_valid is None:
        prompt_valid = torch.ones(batch, num_prompts, dtype=torch.bool, device=device)
    goal = torch.zeros(batch, num_prompts, device=device)
    for row, target in enumerate(targets):
        labels = target.labels.to(device=device, dtype=torch.long)
        goal[row, labels[labels < num_prompts]] = 1.0
    valid = prompt_valid.to(device=device, dtype=logits.dtype)
    if indices is None:
        best = logits.max(dim=1).values
        loss = F.binary_cross_entropy_with_logits(best, goal, weight=valid, reduction="sum")
        return loss / valid.sum().clamp(min=1.0)
    matched = torch.zeros(batch, num_queries, num_prompts, dtype=torch.bool, device=device)
    for row, (target, (query_idx, object_idx)) in enumerate(zip(targets, indices)):
        labels = target.labels.to(device=device, dtype=torch.long)[object_idx.to(device)]
        keep = labels < num_prompts
        matched[row, query_idx.to(device)[keep], labels[keep]] = True
    present = goal.bool() & prompt_valid.to(device)
    # absent columns: their best query down; present columns: their best query that answers nothing down
    best_unmatched = logits.masked_fill(matched, float("-inf")).max(dim=1).values
    down = torch.where(present, best_unmatched, logits.max(dim=1).values)
    down_weight = valid * torch.isfinite(down).to(logits.dtype)
    down = torch.where(torch.isfinite(down), down, torch.zeros_like(down))
    loss = F.binary_cross_entropy_with_logits(down, torch.zeros_like(down), weight=down_weight, reduction="sum")
    # present columns: each matched query up, averaged within its column
    up_weight = matched.to(logits.dtype) / matched.sum(dim=1, keepdim=True).clamp(min=1).to(logits.dtype)
    up_weight = up_weight * valid[:, None, :]
    loss = loss + F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), weight=up_weight, reduction="sum")
    return loss / (down_weight.sum() + (up_weight.sum(dim=1) > 0).sum()).clamp(min=1.0)


def point_bce_loss(pred_points: torch.Tensor, target_points: torch.Tensor) -> torch.Tensor:
    """(M, P) logits vs (M, P) targets in [0, 1] -> (M,) mean BCE per mask."""
    return F.binary_cross_entropy_with_logits(pred_points, target_points, reduction="none").mean(-1)


def point_dice_loss(pred_points: torch.Tensor, target_points: torch.Tensor) -> torch.Tensor:
    """(M, P) logits vs (M, P) targets in [0, 1] -> (M,) soft Dice loss per mask (+1 smoothing)."""
    prob = pred_points.sigmoid()
    numerator = 2 * (prob * target_points).sum(-1)
    denominator = prob.sum(-1) + target_points.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def sigmoid_bce_dice_mask_loss(
    pred_masks: torch.Tensor,
    targets: Sequence[SegmentationTarget],
    indices: Indices,
    num_masks: float | None = None,
    num_points: int = 12544,
    oversample_ratio: float = 3.0,
    importance_sample_ratio: float = 0.75,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Point-sampled BCE and Dice over the matched (query, object) pairs, each summed and divided by ``num_masks``.

    Points are chosen per matched prediction by uncertainty (PointRend); the target is read as float at the
    same coordinates, so its resolution does not matter. ``num_masks`` defaults to the number of target
    objects in the batch (at least 1), as in Mask2Former. No pairs -> two graph-attached zeros.
    """
    device = pred_masks.device
    rows, query_idx, _ = _flat_matches(targets, indices, device)
    if rows.numel() == 0:
        zero = _zero_like_graph(pred_masks)
        return zero, zero.clone()
    if num_masks is None:
        num_masks = sum(int(target.labels.numel()) for target in targets)
    num_masks = max(float(num_masks), 1.0)
    matched = pred_masks[rows, query_idx].float()  # (M, h, w)
    coords = uncertain_point_coords(matched, num_points, oversample_ratio, importance_sample_ratio)  # (M, P, 2)
    pred_points = point_sample(matched, coords)  # (M, P)
    with torch.no_grad():
        # targets can differ in size between batch items: read each item's objects at its own slice of coords
        target_points, start = [], 0
        for target, (_, object_idx) in zip(targets, indices):
            count = object_idx.numel()
            if count:
                masks = target.masks.to(device)[object_idx.to(device)]
                target_points.append(point_sample(masks.float(), coords[start : start + count]))
            start += count
        target_points = torch.cat(target_points)
    bce = point_bce_loss(pred_points, target_points).sum() / num_masks
    dice = point_dice_loss(pred_points, target_points).sum() / num_masks
    return bce, dice


def instance_contrastive_loss(
    emb_a: torch.Tensor, ids_a: torch.Tensor, emb_b: torch.Tensor, ids_b: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """InfoNCE association across two frames (paper's L_ins).

    Each embedding of frame b is a query over all embeddings of frame a (cosine similarity / ``temperature``);
    its positives are the a-embeddings with the same instance id. Loss = mean over b-rows that have a partner
    of -log(softmax mass on the positives). Ids without a partner are skipped; with no pairs at all the
    result is a graph-attached 0.
    """
    if emb_a.shape[0] == 0 or emb_b.shape[0] == 0:
        return _zero_like_graph(emb_a, emb_b)
    with no_autocast(emb_a.device):
        a = F.normalize(emb_a.float(), dim=-1)
        b = F.normalize(emb_b.float(), dim=-1)
        positive = ids_b.to(a.device)[:, None] == ids_a.to(a.device)[None, :]  # (Nb, Na)
        has_partner = positive.any(dim=1)
        if not bool(has_partner.any()):
            return _zero_like_graph(emb_a, emb_b)
        logits = (b @ a.T) / temperature
        positive_mass = logits.masked_fill(~positive, float("-inf")).logsumexp(dim=1)
        log_prob = positive_mass - logits.logsumexp(dim=1)
        return -log_prob[has_partner].mean()


class HyperSegCriterion(nn.Module):
    """Matches each decoder layer's predictions to the targets (separately, as Mask2Former) and weights the losses.

    Returns ``loss_cls``, ``loss_mask``, ``loss_dice`` for the last layer and ``loss_*_{i}`` for aux layer
    ``i``, all already multiplied by their weights, plus the last layer's matching (used for the video
    association loss). Summing them is the caller's job.
    """

    def __init__(
        self,
        matcher: HungarianMatcher | None = None,
        class_weight: float = 2.0,
        mask_weight: float = 5.0,
        dice_weight: float = 5.0,
        instance_weight: float = 1.0,
        num_points: int = 12544,
        oversample_ratio: float = 3.0,
        importance_sample_ratio: float = 0.75,
        eos_coef: float = 0.1,
        presence_weight: float = 0.0,
        presence_query: str = "best",
    ) -> None:
        super().__init__()
        self.matcher = (
            matcher if matcher is not None else HungarianMatcher(class_weight, mask_weight, dice_weight, num_points)
        )
        self.class_weight = class_weight
        self.mask_weight = mask_weight
        self.dice_weight = dice_weight
        self.instance_weight = instance_weight
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.eos_coef = eos_coef
        self.presence_weight = presence_weight
        if presence_query not in ("best", "matched"):
            raise ValueError(f"presence_query must be 'best' or 'matched', got {presence_query!r}")
        self.presence_query = presence_query

    def layer_losses(
        self,
        pred_masks: torch.Tensor,
        prompt_logits: torch.Tensor,
        prompt_valid: torch.Tensor | None,
        targets: Sequence[SegmentationTarget],
        num_masks: float,
        suffix: str = "",
    ) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
        """Match one layer's outputs and return its weighted losses (keys end in ``suffix``) and the matching."""
        indices = self.matcher(pred_masks, prompt_logits, prompt_valid, targets)
        bce, dice = sigmoid_bce_dice_mask_loss(
            pred_masks,
            targets,
            indices,
            num_masks,
            self.num_points,
            self.oversample_ratio,
            self.importance_sample_ratio,
        )
        score = prompt_score_loss(prompt_logits, prompt_valid, targets, indices, self.eos_coef)
        losses = {
            f"loss_cls{suffix}": self.class_weight * score,
            f"loss_mask{suffix}": self.mask_weight * bce,
            f"loss_dice{suffix}": self.dice_weight * dice,
        }
        if self.presence_weight > 0:
            matching = indices if self.presence_query == "matched" else None
            presence = prompt_presence_loss(prompt_logits, prompt_valid, targets, matching)
            losses[f"loss_presence{suffix}"] = self.presence_weight * presence
        return losses, indices

    def forward(
        self,
        pred_masks: torch.Tensor,
        prompt_logits: torch.Tensor,
        prompt_valid: torch.Tensor | None,
        targets: Sequence[SegmentationTarget],
        aux_outputs: Sequence[AuxOutput] | None = None,
    ) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
        """``aux_outputs``: per earlier decoder layer ``(pred_masks, prompt_logits)`` or a dict with those keys."""
        targets = list(targets)
        if len(targets) != pred_masks.shape[0]:
            raise ValueError(f"got {len(targets)} targets for a batch of {pred_masks.shape[0]}")
        num_masks = max(sum(int(target.labels.numel()) for target in targets), 1)
        with no_autocast(pred_masks.device):
            losses, indices = self.layer_losses(pred_masks, prompt_logits, prompt_valid, targets, num_masks)
            for i, aux in enumerate(aux_outputs or []):
                if isinstance(aux, Mapping):
                    aux = (aux["pred_masks"], aux["prompt_logits"])
                aux_losses, _ = self.layer_losses(aux[0], aux[1], prompt_valid, targets, num_masks, f"_{i}")
                losses.update(aux_losses)
        return losses, indices

    def association_loss(
        self,
        emb_a: torch.Tensor,
        ids_a: torch.Tensor,
        emb_b: torch.Tensor,
        ids_b: torch.Tensor,
        temperature: float = 0.1,
    ) -> torch.Tensor:
        """``instance_weight`` * :func:`instance_contrastive_loss` (frame a -> frame b)."""
        return self.instance_weight * instance_contrastive_loss(emb_a, ids_a, emb_b, ids_b, temperature)
