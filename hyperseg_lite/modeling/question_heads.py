"""What the question heads share (``relation_scores.py``, ``ranking_scores.py``): each reads a gate ("does the
question ask this?") and a value from attention-pooled LLM states of the expression, scores the mask tokens by
their geometry and attribute heads, and mixes its answer with the referring probability by the gate."""

from __future__ import annotations

import torch
from torch import nn

MIN_AREA = 5e-4  # share of the mask grid a token must cover to count as an object (about 20 pixels at 256 px)


def mask_geometry(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask logits (B, Q, h, w) -> objectness (B, Q): the mean probability inside the mask, 0 for one under
    :data:`MIN_AREA`; and centres (B, Q, 2) as shares of the width / height."""
    probs = masks.float().sigmoid()
    inside = (probs > 0.5).float()
    area = inside.flatten(2).sum(-1)
    objectness = (probs * inside).flatten(2).sum(-1) / area.clamp(min=1)
    objectness = objectness * (area >= MIN_AREA * masks.shape[-1] * masks.shape[-2])
    h, w = masks.shape[-2:]
    ys = (torch.arange(h, device=masks.device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=masks.device, dtype=torch.float32) + 0.5) / w
    weight = inside / area.clamp(min=1)[..., None, None]
    centres = torch.stack([(weight.sum(-2) * xs).sum(-1), (weight.sum(-1) * ys).sum(-1)], -1)
    return objectness, centres


def pool_question(
    norm: nn.LayerNorm, attention: nn.Linear, hidden: torch.Tensor, expression_mask: torch.Tensor
) -> torch.Tensor:
    """LLM hidden states (B, L, D) of a prompt and its expression's tokens (B, L) -> (B, K, D): one attention-pooled
    summary of the expression per output of ``attention`` (what a question head reads: which tokens say the
    relation or ranking, which name its value)."""
    tokens = norm(hidden.to(attention.weight.dtype))
    scores = attention(tokens).float().masked_fill(~expression_mask.bool()[..., None], -1e4)  # (B, L, K)
    return torch.einsum("blk,blh->bkh", scores.softmax(1).to(tokens.dtype), tokens)


def mix(refer_logits: torch.Tensor, stated: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """The logits of (1 - stated) x sigmoid(``refer_logits``) + stated x ``answer`` (probabilities, (B, Q, R))."""
    probability = (1 - stated) * refer_logits.float().sigmoid() + stated * answer
    return torch.logit(probability.clamp(1e-6, 1 - 1e-6)).to(refer_logits.dtype)


def closed_gate(text_dim: int, closed_bias: float) -> nn.Linear:
    """A gate (closed, open) at zero but for its "closed" bias: added to trained weights, it reads every text as
    closed until it is trained."""
    gate = nn.Linear(text_dim, 2)
    nn.init.zeros_(gate.weight)
    nn.init.zeros_(gate.bias)
    with torch.no_grad():
        gate.bias[0] = closed_bias
    return gate


def gated_heads(text_dim: int, num_values: int, closed_bias: float) -> tuple[nn.Linear, nn.Linear]:
    """The gate (closed, open) and value heads, at zero but for the gate's "closed" bias: added to trained weights,
    a head changes no answer until it is trained."""
    gate, values = closed_gate(text_dim, closed_bias), nn.Linear(text_dim, num_values)
    nn.init.zeros_(values.weight)
    nn.init.zeros_(values.bias)
    return gate, values


def split_gate(text_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, R, 2 + values) -> gate logits (B, R, 2), value logits (B, R, values)."""
    return text_logits[..., :2], text_logits[..., 2:]
