"""Mask edges that follow the image's edges: a colour guided filter on the mask probabilities.

Why: the mask decoder draws at stride 4 of the model's input, so a mask's outline is a bilinear guess between
cells, off by a pixel or two all round; on a 30-pixel object that alone costs 10-15 points of IoU. The guided
filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010) makes the probability map locally a linear function
of the image's colour, so where the colour changes the mask can change, and where it does not the mask stays flat:
edges move onto the object's own outline. It is post-processing only (no weights), off in the release's settings
(``config.edge_refinement_size = 0``) and on for the embedded model, whose window and ``eps`` were picked on the
val split (``tools/edge_refinement.py``; docs/research/choices.md, "Mask edges on the image's edges").

kornia's ``guided_blur`` does the filtering: one guide (the image at the working size) for all of a prompt's masks,
which it takes as the channels of one input, so the guide's statistics are worked out once, and its fast form
(He and Sun 2015: the filter's coefficients at half the size) makes it five times cheaper for the same figures on
val (a panoptic answer refines every kept query's mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from kornia.filters import guided_blur

if TYPE_CHECKING:
    from .predictor import EncodedImage

# the guided filter's 3 x 3 solve grows with the masks given at once; chunks of this many keep it fast
MASKS_PER_CALL = 8
# the fast guided filter (He and Sun 2015): the filter's linear coefficients worked out at 1/SUBSAMPLE of the size
SUBSAMPLE = 2


def check_settings(size: int, eps: float) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"edge refinement needs an odd window size of at least 1 pixel, got {size!r}")
    if not eps > 0:
        raise ValueError(f"edge refinement needs a positive eps, got {eps!r}")


def refine_maps(maps: torch.Tensor, guide: torch.Tensor, size: int, eps: float) -> torch.Tensor:
    """(N, h, w) soft maps (mask probabilities, class evidence) and a (3, h, w) guide image in [0, 1] -> (N, h, w)
    maps whose edges follow the guide's. ``size``: the filter's window side in pixels (odd); ``eps``: how much colour
    contrast counts as an edge (smaller follows fainter edges). Soft maps, not binary masks: where a mask's
    probability falls off tells the filter how far its edge may move."""
    check_settings(size, eps)
    if maps.shape[0] == 0:
        return maps
    if guide.shape[-2:] != maps.shape[-2:]:
        raise ValueError("the guide image and the masks must have the same size")
    values = maps.float()[None]
    colour = guide.float()[None].to(values.device)
    # mirrored borders need an image larger than the window; a smaller one repeats its edge pixels instead
    border = "reflect" if min(maps.shape[-2:]) > size else "replicate"
    chunks = [
        guided_blur(colour, values[:, start : start + MASKS_PER_CALL], size, eps, border, SUBSAMPLE, separable=True)
        for start in range(0, values.shape[1], MASKS_PER_CALL)
    ]
    return torch.cat(chunks, dim=1)[0]


def refine_logits(logits: torch.Tensor, guide: torch.Tensor, size: int, eps: float) -> torch.Tensor:
    """As :func:`refine_maps` on ``sigmoid(logits)``, back as logits (> 0 where the refined probability is above
    one half): the callers keep working with logits, whose sign is the mask."""
    refined = refine_maps(logits.float().sigmoid(), guide, size, eps)
    return torch.logit(refined.clamp(0.0, 1.0), eps=1e-6)


@dataclass(frozen=True)
class EdgeRefinement:
    """The filter's settings, applied to the masks a pipeline returns (:mod:`.answers`, :mod:`.video`): ``size``
    is the window side in pixels of the model's input frame (the decoder's stride 4 is a fixed share of it), so on
    an image worked on at another size the window scales with it."""

    size: int
    eps: float

    def __post_init__(self) -> None:
        check_settings(self.size, self.eps)

    @classmethod
    def from_config(cls, config) -> EdgeRefinement | None:
        """A checkpoint's own settings (``edge_refinement_size`` / ``edge_refinement_eps``); None where its size is
        0 (the release's masks)."""
        size = int(config.edge_refinement_size)
        return cls(size, float(config.edge_refinement_eps)) if size else None

    def window(self, image: EncodedImage) -> int:
        """The window side at ``image``'s working size: ``size`` scaled from the model's input frame, odd."""
        scale = max(image.working_size) / max(image.prepared.resized_size)
        return 2 * max(0, round((self.size * scale - 1) / 2)) + 1

    def logits(self, logits: torch.Tensor, image: EncodedImage) -> torch.Tensor:
        """(N, h, w) mask logits at ``image``'s working size -> the same with refined edges."""
        return refine_logits(logits, image.working_guide(), self.window(image), self.eps)

    def maps(self, maps: torch.Tensor, image: EncodedImage) -> torch.Tensor:
        """(N, h, w) soft maps at ``image``'s working size -> the same with refined edges."""
        return refine_maps(maps, image.working_guide(), self.window(image), self.eps)
