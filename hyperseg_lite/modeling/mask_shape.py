"""Mask-shape embedding: what a mask token's own mask looks like, added to the state its prompt scores read.

Not in HyperSeg (an improvement, ``decoder_config.mask_shape_embedding``, off by default and in every converted
checkpoint). Why: a mask token's class / referring / region scores read only its decoder state, which pools
features *inside* its mask (masked attention). HyperSeg's pretrained backbones put the object's identity into
those features; the from-scratch ``lite`` backbone did not learn shape (``research/tools/shape_probe.py``: chance in
every
stage) although its masks have the right outlines. This reads the outline directly: each mask (detached: the
scores must not reshape the masks) is cropped to its bounding box, resampled to a fixed grid (so the encoding
does not depend on size or position) and encoded by a small CNN into the decoder width. The last layer starts
at zero, so enabling it on trained weights changes no output until it is trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mask_boxes(binary: torch.Tensor) -> torch.Tensor:
    """(N, h, w) bool -> (N, 4) float (x0, y0, x1, y1) in pixels, edges inclusive-exclusive; empty -> whole map.

    First / last true row and column by argmax (no ``nonzero``: shapes stay static, nothing syncs).
    """
    height, width = binary.shape[-2:]
    rows, cols = binary.any(-1), binary.any(-2)  # (N, h), (N, w)
    y0 = rows.to(torch.uint8).argmax(-1)
    y1 = height - rows.flip(-1).to(torch.uint8).argmax(-1)
    x0 = cols.to(torch.uint8).argmax(-1)
    x1 = width - cols.flip(-1).to(torch.uint8).argmax(-1)
    boxes = torch.stack([x0, y0, x1, y1], -1).to(torch.float32)
    whole = torch.zeros_like(boxes)  # written by fill kernels: no host-to-device copy inside the forward
    whole[:, 2], whole[:, 3] = width, height
    return torch.where(rows.any(-1, keepdim=True), boxes, whole)


def crop_to_grid(probs: torch.Tensor, boxes: torch.Tensor, grid: int) -> torch.Tensor:
    """(N, h, w) maps, (N, 4) pixel boxes -> (N, grid, grid) bilinear samples at the box's cell centres."""
    height, width = probs.shape[-2:]
    steps = (torch.arange(grid, device=probs.device, dtype=torch.float32) + 0.5) / grid  # (G,)
    xs = boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * steps  # (N, G) pixel coordinates
    ys = boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * steps
    gx = (2 * xs / width - 1)[:, None, :].expand(-1, grid, -1)  # align_corners=False: pixel edges at -1 / 1
    gy = (2 * ys / height - 1)[:, :, None].expand(-1, -1, grid)
    sample_grid = torch.stack([gx, gy], -1)  # (N, G, G, 2) as (x, y)
    return F.grid_sample(probs[:, None].float(), sample_grid, mode="bilinear", align_corners=False)[:, 0]


class MaskShapeEncoder(nn.Module):
    """(B, Q, h, w) mask logits -> (B, Q, dim) shape embeddings."""

    def __init__(self, dim: int, grid: int = 16, channels: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        if grid % 4:
            raise ValueError(f"grid must be a multiple of 4, got {grid}")
        self.grid = grid
        c1, c2, c3 = channels
        self.convs = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1),
            nn.GELU(),
        )
        self.out = nn.Linear(c3 * (grid // 4) ** 2, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, mask_logits: torch.Tensor) -> torch.Tensor:
        batch, queries = mask_logits.shape[:2]
        probs = mask_logits.detach().flatten(0, 1).float().sigmoid()  # (N, h, w)
        crops = crop_to_grid(probs, mask_boxes(probs > 0.5), self.grid)
        features = self.convs(crops[:, None].to(self.out.weight.dtype)).flatten(1)
        return self.out(features).view(batch, queries, -1)
