"""Training losses (paper Eq. 5-6): prompt-score BCE, point-sampled mask BCE + Dice, contrastive instance loss.

Scores are trained as independent sigmoids: the matched query gets 1 on the prompt its object answers,
every other (query, prompt) pair 0. So a class that is not in the image, or an expression that matches
nothing, gets low scores everywhere and comes back empty (LaSagnA's point: complex queries mix present and
absent classes). The all-zero rows of unmatched queries are down-weighted by ``eos_coef``, like
Mask2Former's no-object class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .matcher import HungarianMatcher
from .point_sampling import point_sample, uncertain_point_coords


@dataclass
class SegmentationTarget:
    """Ground truth for one prompt: one mask per object and the prompt column it answers."""

    masks: torch.Tensor  # (n, H, W) bool at the model input resolution (any size works: losses sample points)
    labels: torch.Tensor  # (n,) long: class index, 0 for a referring expression, region index
    instance_ids: Optional[torch.Tensor] = None  # (n,) long, stable across video frames


def prompt_score_loss(prompt_logits: torch.Tensor, prompt_valid: torch.Tensor, targets: Sequence[SegmentationTarget],
                      indices: Sequence[tuple[torch.Tensor, torch.Tensor]], eos_coef: float) -> torch.Tensor:
    logits = prompt_logits.float()
    goal = torch.zeros_like(logits)
    matched = torch.zeros(logits.shape[:2], dtype=torch.bool, device=logits.device)
    for row, ((queries, objects), target) in enumerate(zip(indices, targets)):
        if queries.numel():
            goal[row, queries, target.labels.to(logits.device)[objects]] = 1.0
            matched[row, queries] = True
    weight = torch.where(matched, 1.0, eos_coef)[:, :, None] * prompt_valid[:, None, :].float()
    loss = F.binary_cross_entropy_with_logits(logits, goal, reduction="none") * weight
    return loss.sum() / weight.sum().clamp(min=1.0)


def mask_losses(pred_masks: torch.Tensor, targets: Sequence[SegmentationTarget],
                indices: Sequence[tuple[torch.Tensor, torch.Tensor]], num_points: int, oversample_ratio: float,
                importance_sample_ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Point-sampled BCE and Dice over matched (query, object) pairs, normalised by the number of objects."""
    preds = [pred_masks[row, queries] for row, (queries, _) in enumerate(indices)]
    gts = [target.masks.to(pred_masks.device)[objects] for (_, objects), target in zip(indices, targets)]
    if sum(p.shape[0] for p in preds) == 0:
        zero = pred_masks.sum() * 0.0
        return zero, zero
    # targets may differ in size between prompts: sample each separately, at shared uncertain coordinates
    pred_points, target_points = [], []
    for pred, gt in zip(preds, gts):
        if pred.shape[0] == 0:
            continue
        pred = pred.float()[:, None]
        with torch.no_grad():
            coords = uncertain_point_coords(pred, num_points, oversample_ratio, importance_sample_ratio)
            target_points.append(point_sample(gt.float()[:, None], coords)[:, 0])
        pred_points.append(point_sample(pred, coords)[:, 0])
    pred_points = torch.cat(pred_points)
    target_points = torch.cat(target_points)
    count = max(pred_points.shape[0], 1)
    bce = F.binary_cross_entropy_with_logits(pred_points, target_points, reduction="none").mean(1).sum() / count
    prob = pred_points.sigmoid()
    dice = 1 - (2 * (prob * target_points).sum(-1) + 1) / (prob.sum(-1) + target_points.sum(-1) + 1)
    return bce, dice.sum() / count


def instance_contrastive_loss(emb_a: torch.Tensor, ids_a: torch.Tensor, emb_b: torch.Tensor, ids_b: torch.Tensor,
                              temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE across two frames: each instance in frame b should be nearest to the same instance in frame a."""
    if emb_a.shape[0] == 0 or emb_b.shape[0] == 0:
        return (emb_a.sum() + emb_b.sum()) * 0.0
    a = F.normalize(emb_a.float(), dim=-1)
    b = F.normalize(emb_b.float(), dim=-1)
    same = ids_b[:, None].to(ids_a.device) == ids_a[None, :]
    has_partner = same.any(dim=1)
    if not has_partner.any():
        return (emb_a.sum() + emb_b.sum()) * 0.0
    logits = b @ a.T / temperature
    log_prob = logits.log_softmax(dim=1)
    positive = (log_prob * same).sum(1) / same.sum(1).clamp(min=1)
    return -positive[has_partner].mean()


class HyperSegCriterion(nn.Module):
    """Matches each decoder layer's predictions to the targets and sums the weighted losses."""

    def __init__(self, matcher: HungarianMatcher | None = None, class_weight: float = 2.0, mask_weight: float = 5.0,
                 dice_weight: float = 5.0, instance_weight: float = 1.0, num_points: int = 12544,
                 oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75, eos_coef: float = 0.1) -> None:
        super().__init__()
        self.matcher = matcher or HungarianMatcher(class_weight, mask_weight, dice_weight, num_points)
        self.class_weight = class_weight
        self.mask_weight = mask_weight
        self.dice_weight = dice_weight
        self.instance_weight = instance_weight
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.eos_coef = eos_coef

    def _layer(self, pred_masks, prompt_logits, prompt_valid, targets, suffix: str):
        indices = self.matcher(pred_masks, prompt_logits, prompt_valid, targets)
        bce, dice = mask_losses(pred_masks, targets, indices, self.num_points, self.oversample_ratio,
                                self.importance_sample_ratio)
        losses = {
            f"loss_cls{suffix}": self.class_weight * prompt_score_loss(prompt_logits, prompt_valid, targets, indices,
                                                                       self.eos_coef),
            f"loss_mask{suffix}": self.mask_weight * bce,
            f"loss_dice{suffix}": self.dice_weight * dice,
        }
        return losses, indices

    def forward(self, pred_masks: torch.Tensor, prompt_logits: torch.Tensor, prompt_valid: torch.Tensor,
                targets: Sequence[SegmentationTarget],
                aux_outputs: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None):
        losses, indices = self._layer(pred_masks, prompt_logits, prompt_valid, targets, "")
        for i, (aux_masks, aux_logits) in enumerate(aux_outputs or []):
            aux_losses, _ = self._layer(aux_masks, aux_logits, prompt_valid, targets, f"_{i}")
            losses.update(aux_losses)
        return losses, indices
