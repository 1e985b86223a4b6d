"""From a predictor's :class:`Candidates` to the :class:`SegmentationResult` a task returns.

Shared by the image tasks (``pipeline.py``) and the video tasks (``video.py``): the choice among mask tokens
(``postprocess``) plus the mapping back to the image's own resolution. Nothing here runs the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..visual_prompts import box_mask
from . import postprocess as post
from .edge_refinement import EdgeRefinement
from .inputs import Region
from .predictor import Candidates, EncodedImage
from .prompted_parts import keep_prompted_parts
from .results import SegmentationResult

# Visual prompts and tracking choose among the mask tokens by region score x mask quality (the release) plus a
# weight x the candidate's IoU with what is already known of the object: the mask chosen on the frame before
# when tracking, the box or mask drawn as the prompt otherwise. 0 = the release's choice; both picked on the val
# split (model card, "Choosing the mask of a visual prompt")
TRACKING_OVERLAP_WEIGHT = 2.0
PROMPT_OVERLAP_WEIGHT = 10.0
SEVERAL = 0.5  # p(several objects) from which an expression is answered with the union of its tokens
# Referring video: a frame's mask that continues the last answer (IoU at least this) answers below the no-match
# threshold, so the no-match decision is made where the object is found, not again on every frame
TRACK_HOLD_IOU = 0.5


def class_segments(
    candidates: Candidates, mode: str, stuff: set[str], threshold: float, edges: EdgeRefinement | None = None
) -> list[post.Segment]:
    """Candidates of a class prompt -> the segments of ``mode`` (semantic / instance / panoptic); ``edges``: their
    masks' edges moved onto the image's."""
    logits, probs, names = candidates.mask_logits, candidates.scores, candidates.prompts
    refine = None
    if edges is not None:

        def refine(maps: torch.Tensor) -> torch.Tensor:
            return edges.maps(maps, candidates.image)

    if mode == "semantic":
        label_map = post.semantic_inference(logits, probs, threshold, refine)
        quality = post.mask_quality(logits)
        return [
            post.Segment(-1, k, float((probs[:, k] * quality).max()), label_map == k)
            for k in range(len(names))
            if (label_map == k).any()
        ]
    if mode == "instance":
        return post.instance_inference(logits, probs, threshold, refine=refine)
    return post.panoptic_inference(logits, probs, [n in stuff for n in names], threshold, refine=refine)


def segment_masks(segments: Sequence[post.Segment], candidates: Candidates) -> np.ndarray:
    """The segments' masks at the original image size, (N, H, W) bool."""
    working = (
        torch.stack([s.mask for s in segments])
        if segments
        else torch.zeros((0, *candidates.mask_logits.shape[-2:]), dtype=torch.bool)
    )
    return candidates.to_original(working)


def class_answer(
    candidates: Candidates,
    mode: str,
    stuff: set[str],
    threshold: float,
    answer: str | None = None,
    frame_index: int | None = None,
    edges: EdgeRefinement | None = None,
) -> SegmentationResult:
    """Candidate masks + scores -> the requested kind of class segmentation; names found nowhere -> ``absent``."""
    names = candidates.prompts
    segments = class_segments(candidates, mode, stuff, threshold, edges)
    masks = segment_masks(segments, candidates)
    keep = [i for i in range(len(segments)) if masks[i].any()]
    segments = [segments[i] for i in keep]
    found = {s.label for s in segments}
    return SegmentationResult(
        mode,
        ", ".join(names),
        masks[keep],
        [names[s.label] for s in segments],
        np.array([s.score for s in segments], dtype=np.float32),
        np.arange(1, len(segments) + 1),
        answer=answer,
        absent=[n for k, n in enumerate(names) if k not in found],
        notices=candidates.image.notices,
        frame_index=frame_index,
    )


def referring_answer(
    candidates: Candidates,
    task: str,
    threshold: float,
    answer: str | None = None,
    frame_index: int | None = None,
    previous: torch.Tensor | None = None,
    previous_weight: float = 0.0,
    hold_iou: float | None = None,
    edges: EdgeRefinement | None = None,
    union_threshold: float = 0.0,
) -> tuple[SegmentationResult, torch.Tensor | None]:
    """The result, and its mask at the working resolution (None when nothing answers), which a video's next
    frame continues; ``previous``: in a video, that mask from the frame before, if any. ``hold_iou``: a mask
    that continues it (IoU at least this) answers even below ``threshold``: the clip's object was found
    already, and a frame whose score dips does not drop it (None: every frame decides alone). ``edges``: the
    mask's edges moved onto the image's. ``union_threshold``: every other query scoring at least this joins the
    answer's mask (``post.referring_union``; 0: the best query alone, as the release); the score stays the
    best query's. A model with the plurality head unions only where it reads the expression as naming several
    objects (``candidates.several`` at least one half; ``modeling/plurality_scores.py``)."""
    image, text = candidates.image, candidates.prompts[0]
    if candidates.several is not None and candidates.several < SEVERAL:
        union_threshold = 0.0
    best, score = post.referring_choice(candidates.mask_logits, candidates.scores[:, :1], previous, previous_weight)
    queries = post.referring_union(candidates.mask_logits, candidates.scores[:, :1], best, union_threshold)
    chosen = candidates.mask_logits[queries].amax(dim=0, keepdim=True)
    if edges is not None:
        chosen = edges.logits(chosen, image)
    mask = chosen > 0
    # the overlap is only worked out for a score under the threshold, the one case the hold decides
    refused = score < threshold and not (
        hold_iou is not None
        and previous is not None
        and float(post.overlap(mask, previous.to(mask.device))[0]) >= hold_iou
    )
    if refused or not mask.any():
        return SegmentationResult.empty(
            task, text, image.size, answer=answer, notices=image.notices, frame_index=frame_index
        ), None
    return SegmentationResult(
        task,
        text,
        image.to_original(chosen),
        [text],
        np.array([score], dtype=np.float32),
        np.array([1]),
        answer=answer,
        notices=image.notices,
        frame_index=frame_index,
    ), mask[0]


def prompt_extent(region: Region, image: EncodedImage) -> torch.Tensor | None:
    """What a prompt says of the object's extent, at the working resolution: a box or a mask is one; a click or
    a scribble says where the object is, not how large (None)."""
    if region.mask is not None:
        return image.working_mask(np.asarray(region.mask).astype(bool))
    if region.box is not None:
        return image.working_mask(box_mask(image.size, region.box))
    return None


def region_choices(
    candidates: Candidates,
    regions: Sequence[Region],
    priors: Sequence[torch.Tensor | None],
    weights: Sequence[float],
    columns: Sequence[int] | None = None,
) -> tuple[list[int], list[float]]:
    """For each region, the candidate that answers it and its score (``post.region_choice``): its clicks
    (positive and negative) and a prior mask (the prompt's extent, or the mask chosen on the frame before)
    weighted by ``weights``. ``columns``: the region's column among the candidates' prompts (its position)."""
    image = candidates.image
    chosen, scores = [], []
    for r, region in enumerate(regions):
        column = r if columns is None else columns[r]
        positives = image.working_points(region.positive_points)
        negatives = image.working_points(region.negative_points)
        best, score = post.region_choice(
            candidates.mask_logits, candidates.scores, column, negatives, positives, priors[r], weights[r]
        )
        chosen.append(best)
        scores.append(score)
    return chosen, scores


def prompted_masks(
    candidates: Candidates,
    chosen: Sequence[int],
    regions: Sequence[Region | None],
    previous: Sequence[torch.Tensor | None],
    keep_parts: bool,
    edges: EdgeRefinement | None,
) -> torch.Tensor:
    """The chosen candidates' logits (R, h, w), each keeping the parts its prompt points at (``keep_parts``: its
    ``regions[r]``, or on a tracked frame the parts touching ``previous[r]``, the mask on the frame before), then
    with edges on the image's (``edges``)."""
    logits = candidates.mask_logits[chosen]
    if keep_parts:
        logits = torch.stack(
            [keep_prompted_parts(m, r, candidates.image, previous=p) for m, r, p in zip(logits, regions, previous)]
        )
    if edges is not None:
        logits = edges.logits(logits, candidates.image)
    return logits


def region_answer(
    candidates: Candidates,
    regions: Sequence[Region],
    prompt_overlap_weight: float,
    task: str = "interactive",
    frame_index: int | None = None,
    keep_parts: bool = True,
    edges: EdgeRefinement | None = None,
) -> SegmentationResult:
    """One mask per visual prompt; a box or mask prompt prefers the candidate that fills it
    (``prompt_overlap_weight``; 0 = by score alone, as the release); ``keep_parts``: each mask keeps only the
    parts its prompt points at (``prompted_parts``; False = the release); ``edges``: then its edges move onto the
    image's."""
    priors = [prompt_extent(region, candidates.image) for region in regions]
    chosen, scores = region_choices(candidates, regions, priors, [prompt_overlap_weight] * len(regions))
    logits = prompted_masks(candidates, chosen, regions, [None] * len(regions), keep_parts, edges)
    masks = candidates.to_original(logits)
    labels = [f"region {r + 1}" for r in range(len(regions))]
    return SegmentationResult(
        task,
        f"{len(regions)} visual prompt(s)",
        masks,
        labels,
        np.array(scores, dtype=np.float32),
        np.arange(1, len(regions) + 1),
        notices=candidates.image.notices,
        frame_index=frame_index,
    )
