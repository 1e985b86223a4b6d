"""What a batch of prompts holds, read once on the host, so the forward never waits for the GPU.

Filling placeholders and pooling prompt embeddings needs counts: how many image, FVP, mask-query and region
positions each row has, how many class names, which kind of target each row asks for. Reading those back
from a GPU inside the forward (``.item()``, ``.tolist()``, boolean indexing, ``if tensor.any()``) makes the
host wait until every queued kernel has run, once per read, and rules out CUDA graphs. The processor builds
the ids on the CPU anyway, so the batch is described once, for free, by :meth:`PromptLayout.of`, and the
model takes every shape and branch from that description (issue #7: no host-device syncs in the forward).
The same description checks malformed prompts with clear errors before anything runs on the device.

Given tensors that already live on a GPU, ``of`` copies each to the host once (up to three syncs, ids, class spans
and expression mask, instead of one per read inside the forward).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..constants import IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX, SEG_TOKEN_INDEX, TEMPORAL_TOKEN_INDEX

PROMPT_KINDS = ("refer", "class", "region")


@dataclass(frozen=True)
class PromptLayout:
    """Per-row counts of a batch of prompt ids (``B`` rows), all plain Python ints."""

    image_positions: tuple[int, ...]
    fvp_positions: tuple[int, ...]
    query_positions: tuple[int, ...]
    region_positions: tuple[int, ...]
    class_names: tuple[int, ...]  # class-name spans per row
    has_expression: tuple[bool, ...]  # a referring / reasoning expression (``refer_mask``) in the row

    @classmethod
    def of(
        cls, input_ids: torch.Tensor, class_spans: torch.Tensor | None = None, refer_mask: torch.Tensor | None = None
    ) -> PromptLayout:
        """Describe the batch (B, L); CPU tensors cost nothing, device tensors one copy to the host each."""
        ids = input_ids.detach().cpu()

        def per_row(token_id: int) -> tuple[int, ...]:
            return tuple((ids == token_id).sum(dim=1).tolist())

        rows = ids.shape[0]
        spans = class_spans.detach().cpu() if class_spans is not None else None
        refer = refer_mask.detach().cpu() if refer_mask is not None else None
        return cls(
            image_positions=per_row(IMAGE_TOKEN_INDEX),
            fvp_positions=per_row(TEMPORAL_TOKEN_INDEX),
            query_positions=per_row(SEG_TOKEN_INDEX),
            region_positions=per_row(REGION_TOKEN_INDEX),
            class_names=tuple(spans.amax(dim=1).clamp(min=0).tolist())
            if spans is not None and spans.numel()
            else (0,) * rows,
            has_expression=tuple(refer.any(dim=1).tolist()) if refer is not None and refer.numel() else (False,) * rows,
        )

    @property
    def batch_size(self) -> int:
        return len(self.image_positions)

    @property
    def max_class_names(self) -> int:
        return max(self.class_names, default=0)

    @property
    def max_regions(self) -> int:
        return max(self.region_positions, default=0)

    def kinds(self) -> list[str]:
        """Per row ``"refer"``, ``"class"`` or ``"region"``; an error unless each row asks for exactly one."""
        kinds = []
        for refer, classes, regions in zip(self.has_expression, self.class_names, self.region_positions):
            present = [kind for kind, there in zip(PROMPT_KINDS, (refer, classes > 0, regions > 0)) if there]
            if len(present) != 1:
                raise ValueError(
                    "each prompt must hold exactly one kind of target: an expression, class names or regions"
                )
            kinds.append(present[0])
        return kinds

    def check_filled(self, what: str, counts: tuple[int, ...], given: int, allow_none: bool = False) -> None:
        """Every row must hold ``given`` positions of one placeholder kind (or none, when ``allow_none``)."""
        if any(n != given and not (allow_none and n == 0) for n in counts):
            raise ValueError(
                f"the prompts hold {list(counts)} {what} positions per row but {given} {what} "
                f"embeddings per row were given"
            )
