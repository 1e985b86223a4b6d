"""Hungarian matching between mask queries and target objects (Mask2Former), with prompt scores as the class cost.

Cost of giving object ``t`` to query ``q`` =
``cost_class * -sigmoid(prompt_logits[q, label_t]) + cost_mask * BCE(q, t) + cost_dice * Dice(q, t)``,
the mask terms read at the same random points in prediction and target.

The class term is the plain negative sigmoid probability, the sigmoid analogue of Mask2Former's
``-softmax`` cost: prompt scores are trained as independent binary decisions (BCE, not focal), so a
query's probability on the object's prompt column is the natural "how much does it claim this object"
and it is bounded, which keeps it on the same scale as the mask costs. A target whose column is padding
(``prompt_valid`` false) gets no class cost, only mask costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from .point_sampling import point_sample

_LARGE_COST = 1e6  # stands in for NaN / inf so the assignment stays solvable


def batch_bce_cost(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(Q, P) logits vs (T, P) targets in [0, 1] -> (Q, T) mean binary cross-entropy of every pair."""
    points = max(pred.shape[1], 1)
    positive = F.softplus(-pred)  # -log sigmoid(x): cost where the target is 1
    negative = F.softplus(pred)  # -log(1 - sigmoid(x)): cost where the target is 0
    return (positive @ target.T + negative @ (1 - target).T) / points


def batch_dice_cost(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(Q, P) logits vs (T, P) targets in [0, 1] -> (Q, T) soft Dice cost (1 - Dice, +1 smoothing)."""
    prob = pred.sigmoid()
    numerator = 2 * prob @ target.T
    denominator = prob.sum(-1)[:, None] + target.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


def no_autocast(device: torch.device):
    """Losses and costs run in float32 even inside a bf16 / fp16 autocast region."""
    if device.type in ("cpu", "cuda", "xpu", "mps", "hpu"):
        return torch.autocast(device_type=device.type, enabled=False)
    return nullcontext()


def _empty_match(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    empty = torch.zeros(0, dtype=torch.long, device=device)
    return empty, empty.clone()


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to objects per batch item; see the module docstring for the cost.

    Holds no parameters (an ``nn.Module`` only so it nests in the criterion); every call runs without grad.
    """

    def __init__(
        self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0, num_points: int = 12544
    ) -> None:
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("all matching costs are 0")
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points

    def extra_repr(self) -> str:
        return (
            f"cost_class={self.cost_class}, cost_mask={self.cost_mask}, cost_dice={self.cost_dice}, "
            f"num_points={self.num_points}"
        )

    @torch.no_grad()
    def cost_matrices(
        self,
        pred_masks: torch.Tensor,
        prompt_logits: torch.Tensor,
        prompt_valid: torch.Tensor | None,
        targets: Sequence,
    ) -> list[torch.Tensor]:
        """Per batch item a (Q, n_b) float32 cost matrix (NaN / inf replaced), on the predictions' device."""
        batch, queries = pred_masks.shape[:2]
        if len(targets) != batch:
            raise ValueError(f"got {len(targets)} targets for a batch of {batch}")
        device = pred_masks.device
        num_prompts = prompt_logits.shape[-1]
        if prompt_valid is None:
            prompt_valid = torch.ones(batch, num_prompts, dtype=torch.bool, device=device)
        prompt_valid = prompt_valid.to(device=device, dtype=torch.bool)
        with no_autocast(device):
            # one shared set of points per batch item; all Q predictions of an item read in one grid_sample
            coords = torch.rand(batch, self.num_points, 2, device=device)
            pred_points = point_sample(pred_masks.float(), coords)  # (B, Q, P)
            scores = prompt_logits.float().sigmoid()  # (B, Q, K)
            costs = []
            for row, target in enumerate(targets):
                labels = target.labels.to(device=device, dtype=torch.long)
                if labels.numel() == 0:
                    costs.append(torch.zeros(queries, 0, device=device))
                    continue
                if int(labels.min()) < 0 or int(labels.max()) >= num_prompts:
                    raise ValueError(f"target labels {labels.tolist()} outside the {num_prompts} prompt columns")
                class_cost = -scores[row][:, labels] * prompt_valid[row, labels].to(scores.dtype)  # (Q, n)
                target_points = point_sample(target.masks.to(device)[None].float(), coords[row : row + 1])[0]  # (n, P)
                cost = (
                    self.cost_class * class_cost
                    + self.cost_mask * batch_bce_cost(pred_points[row], target_points)
                    + self.cost_dice * batch_dice_cost(pred_points[row], target_points)
                )
                costs.append(torch.nan_to_num(cost, nan=_LARGE_COST, posinf=_LARGE_COST, neginf=-_LARGE_COST))
        return costs

    @torch.no_grad()
    def forward(
        self,
        pred_masks: torch.Tensor,
        prompt_logits: torch.Tensor,
        prompt_valid: torch.Tensor | None,
        targets: Sequence,
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``pred_masks`` (B, Q, h, w) logits, ``prompt_logits`` (B, Q, K), ``prompt_valid`` (B, K) bool,
        ``targets`` B objects with ``masks`` (n, H, W) and ``labels`` (n,) -> per item (query indices,
        target indices), both long, sorted by query, ``min(Q, n)`` long; empty when ``n == 0``.
        """
        device = pred_masks.device
        indices = []
        for cost in self.cost_matrices(pred_masks, prompt_logits, prompt_valid, targets):
            if cost.shape[1] == 0 or cost.shape[0] == 0:
                indices.append(_empty_match(device))
                continue
            query_idx, target_idx = linear_sum_assignment(cost.cpu().double().numpy())
            indices.append(
                (
                    torch.as_tensor(query_idx, dtype=torch.long, device=device),
                    torch.as_tensor(target_idx, dtype=torch.long, device=device),
                )
            )
        return indices
