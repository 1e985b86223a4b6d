"""Hungarian matching between mask queries and target objects (Mask2Former), with prompt scores as the class cost."""

from __future__ import annotations

from typing import Sequence

import torch
from scipy.optimize import linear_sum_assignment

from .point_sampling import point_sample


def batch_dice_cost(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(Q, P) logits vs (T, P) binary -> (Q, T) dice cost."""
    prob = pred.sigmoid()
    numerator = 2 * prob @ target.T
    denominator = prob.sum(-1)[:, None] + target.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def batch_bce_cost(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(Q, P) logits vs (T, P) binary -> (Q, T) mean binary cross-entropy."""
    points = pred.shape[1]
    pos = torch.nn.functional.binary_cross_entropy_with_logits(pred, torch.ones_like(pred), reduction="none")
    neg = torch.nn.functional.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred), reduction="none")
    return (pos @ target.T + neg @ (1 - target).T) / points


class HungarianMatcher:
    """Cost = ``cost_class`` * (-sigmoid score on the target's prompt) + ``cost_mask`` * BCE + ``cost_dice`` * dice.

    The class cost uses the sigmoid score because prompt scores are trained as independent binary
    decisions (a query may answer none of the prompts).
    """

    def __init__(self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0,
                 num_points: int = 12544) -> None:
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def __call__(self, pred_masks: torch.Tensor, prompt_logits: torch.Tensor, prompt_valid: torch.Tensor,
                 targets: Sequence) -> list[tuple[torch.Tensor, torch.Tensor]]:
        indices = []
        for row, target in enumerate(targets):
            device = pred_masks.device
            if target.masks.shape[0] == 0:
                empty = torch.zeros(0, dtype=torch.long, device=device)
                indices.append((empty, empty))
                continue
            labels = target.labels.to(device)
            class_cost = -prompt_logits[row].float().sigmoid()[:, labels]  # (Q, T)
            coords = torch.rand(1, self.num_points, 2, device=device)
            pred = point_sample(pred_masks[row].float()[:, None], coords.expand(pred_masks.shape[1], -1, -1))[:, 0]
            tgt = point_sample(target.masks.to(device).float()[:, None], coords.expand(target.masks.shape[0], -1, -1))[:, 0]
            cost = (self.cost_class * class_cost + self.cost_mask * batch_bce_cost(pred, tgt)
                    + self.cost_dice * batch_dice_cost(pred, tgt))
            cost = torch.nan_to_num(cost, nan=1e6, posinf=1e6, neginf=-1e6).cpu().numpy()
            query_idx, target_idx = linear_sum_assignment(cost)
            indices.append((torch.as_tensor(query_idx, dtype=torch.long, device=device),
                            torch.as_tensor(target_idx, dtype=torch.long, device=device)))
        return indices
