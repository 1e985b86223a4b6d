"""A gradient reversal (Ganin & Lempitsky, 2015): what an adversary reads is pushed to hold nothing it can use."""

from __future__ import annotations

import torch


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times ``-weight`` backward."""

    @staticmethod
    def forward(ctx, x, weight: float):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None
