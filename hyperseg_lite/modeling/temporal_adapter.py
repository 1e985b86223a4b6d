"""Temporal adapter (paper Sec. 3.5): video is segmented frame by frame, with state carried explicitly.

* Global prompt aggregation: the prompt embeddings used for frame t are the mean of those of frames
  0..t, ``E_P = AvgPool([E_P^0, ..., E_P^t])``, so a referring expression or a first-frame visual prompt
  keeps a stable meaning over the clip.
* Local space-time injection: the LLM outputs at the FVP positions of frame t-1, mapped back to the
  perceiver width (``G_l``), are the FVP latents of frame t: ``P_t = G_l[F_LLM(P_{t-1})]``.

Nothing is hidden in the model: :class:`TemporalState` goes in with frame t and the next state comes out,
so several videos (or users) never share anything, and memory does not grow with the clip length.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch


@dataclass
class TemporalState:
    """What frame t hands to frame t+1. Build the first one with ``TemporalState()``."""

    latents: torch.Tensor | None = None  # (B, num_latents, perceiver_dim): next frame's FVP latents
    prompt_sums: dict[str, torch.Tensor] = field(default_factory=dict)  # per prompt kind, running sums
    num_frames: int = 0

    def detach(self) -> TemporalState:
        """Cut the autograd graph (truncated back-propagation through time in training; always at inference)."""
        return replace(
            self,
            latents=None if self.latents is None else self.latents.detach(),
            prompt_sums={k: v.detach() for k, v in self.prompt_sums.items()},
        )


def aggregate_prompts(
    previous_sum: torch.Tensor | None, num_previous: int, embeddings: torch.Tensor, enabled: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global prompt aggregation: running mean of one kind of prompt embedding over the frames so far.

    Returns (embeddings to use for this frame, new running sum). With ``enabled=False``, no previous frame,
    or a prompt set whose shape changed, the current embeddings are used unchanged and the sum restarts.
    """
    if not enabled or previous_sum is None or num_previous == 0 or previous_sum.shape != embeddings.shape:
        return embeddings, embeddings
    total = previous_sum.to(embeddings.dtype) + embeddings
    return total / (num_previous + 1), total
