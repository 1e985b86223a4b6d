"""From mask logits and prompt scores to answers: the inference rules of HyperSeg and Mask2Former.

All functions take one prompt's outputs at the working resolution: ``mask_logits`` (Q, h, w) and
``probs`` (Q, K) = sigmoid of the prompt logits. They return indices and scores, never touch the model.
``refine`` (class modes): a function applied to the soft maps each rule reads its masks from (mask probabilities,
class evidence), (N, h, w) -> (N, h, w): the pipeline's edge refinement (``edge_refinement.py``); None = the
release's rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


def mask_quality(mask_logits: torch.Tensor) -> torch.Tensor:
    """Mean foreground probability inside each binary mask (the release's ``mask_scores_per_image``)."""
    probs = mask_logits.sigmoid().flatten(1)
    binary = (mask_logits > 0).flatten(1).float()
    return (probs * binary).sum(1) / (binary.sum(1) + 1e-6)


def overlap(binary: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(Q, h, w) bool candidate masks vs one (h, w) bool mask -> (Q,) IoU (0 where both are empty)."""
    inter = (binary & mask).flatten(1).sum(1).float()
    union = (binary | mask).flatten(1).sum(1).float()
    return inter / union.clamp(min=1.0)


def referring_choice(
    mask_logits: torch.Tensor, probs: torch.Tensor, previous: torch.Tensor | None = None, previous_weight: float = 0.0
) -> tuple[int, float]:
    """HyperSeg's referring rule: score = sigmoid(score) x mask quality; the best query answers. In a video,
    ``previous_weight`` x the IoU with the mask answered on the frame before (``previous``) is added to the
    ranking, not to the score the threshold reads (as :func:`region_choice`)."""
    scores = probs[:, 0] * mask_quality(mask_logits)
    ranking = scores
    if previous is not None and previous_weight > 0:
        ranking = scores + previous_weight * overlap(mask_logits > 0, previous.to(mask_logits.device))
    best = int(ranking.argmax())
    return best, float(scores[best])


def referring_union(mask_logits: torch.Tensor, probs: torch.Tensor, best: int, threshold: float) -> list[int]:
    """The queries whose masks make up the answer: ``best`` and every other query scoring at least ``threshold``
    (score as :func:`referring_choice`). An expression such as "all red objects" names several objects, which the
    decoder proposes one per query; HyperSeg answers with the best query alone (``threshold`` <= 0 or above
    every other score), which then has to draw them all in one mask."""
    if threshold <= 0:
        return [best]
    scores = probs[:, 0] * mask_quality(mask_logits)
    others = [q for q in torch.nonzero(scores >= threshold).flatten().tolist() if q != best]
    return [best, *others]


@dataclass
class Segment:
    query: int
    label: int
    score: float
    mask: torch.Tensor  # (h, w) bool at the working resolution


Refine = Callable[[torch.Tensor], torch.Tensor]


def instance_inference(
    mask_logits: torch.Tensor,
    probs: torch.Tensor,
    threshold: float,
    max_instances: int = 100,
    refine: Refine | None = None,
) -> list[Segment]:
    """Mask2Former instance inference with sigmoid scores: top (query, class) pairs above ``threshold``."""
    num_queries, num_classes = probs.shape
    quality = mask_quality(mask_logits)
    flat = (probs * quality[:, None]).flatten()
    order = flat.argsort(descending=True)[:max_instances]
    segments = []
    used = set()
    for index in order.tolist():
        score = float(flat[index])
        if score < threshold:
            break
        query, label = divmod(index, num_classes)
        if query in used:
            continue  # one segment per query: its best class
        mask = mask_logits[query] > 0
        if mask.any():
            used.add(query)
            segments.append(Segment(query, label, score, mask))
    if refine is not None and segments:
        refined = refine(mask_logits[[s.query for s in segments]].sigmoid()) >= 0.5
        for segment, mask in zip(segments, refined):
            segment.mask = mask
        segments = [s for s in segments if s.mask.any()]
    return segments


def semantic_inference(
    mask_logits: torch.Tensor, probs: torch.Tensor, threshold: float, refine: Refine | None = None
) -> torch.Tensor:
    """Per-pixel class = argmax_k sum_q p(k | q) * p(pixel | q); -1 where the best evidence < ``threshold``."""
    evidence = torch.einsum("qk,qhw->khw", probs, mask_logits.sigmoid())
    if refine is not None:  # only classes that reach the threshold somewhere can label a pixel
        live = evidence.flatten(1).amax(dim=1) >= threshold
        if live.any():
            evidence[live] = refine(evidence[live])
    best, label = evidence.max(dim=0)
    label[best < threshold] = -1
    return label


def panoptic_inference(
    mask_logits: torch.Tensor,
    probs: torch.Tensor,
    is_stuff: list[bool],
    threshold: float,
    overlap_threshold: float = 0.8,
    refine: Refine | None = None,
) -> list[Segment]:
    """Mask2Former panoptic inference: each pixel goes to the most confident kept query; stuff merged per class."""
    scores, labels = probs.max(dim=1)
    keep = scores > threshold
    if not keep.any():
        return []
    kept_queries = torch.nonzero(keep).flatten()
    mask_probs = mask_logits[kept_queries].sigmoid()
    if refine is not None:
        mask_probs = refine(mask_probs)
    owner = (scores[kept_queries, None, None] * mask_probs).argmax(dim=0)
    segments: list[Segment] = []
    stuff_index: dict[int, int] = {}
    for k, query in enumerate(kept_queries.tolist()):
        label = int(labels[query])
        visible = (owner == k) & (mask_probs[k] >= 0.5)
        original = (mask_probs[k] >= 0.5).sum()
        area = visible.sum()
        if area == 0 or original == 0 or area / original < overlap_threshold:
            continue
        if is_stuff[label] and label in stuff_index:
            merged = segments[stuff_index[label]]
            merged.mask = merged.mask | visible
            merged.score = max(merged.score, float(scores[query]))
            continue
        if is_stuff[label]:
            stuff_index[label] = len(segments)
        segments.append(Segment(query, label, float(scores[query]), visible))
    return segments


def region_choice(
    mask_logits: torch.Tensor,
    probs: torch.Tensor,
    region: int,
    negatives: np.ndarray,
    positives: np.ndarray,
    previous: torch.Tensor | None = None,
    previous_weight: float = 0.0,
) -> tuple[int, float]:
    """Best query for one visual prompt.

    The release takes the highest region score. With clicks we also use what the user said: candidates whose
    mask covers a negative click are dropped (unless all do), and covering the positive clicks breaks ties.
    ``negatives`` / ``positives`` are (n, 2) (x, y) at the working resolution. ``previous`` is a mask the
    object is already known to have (working resolution): the box or mask drawn as the prompt, or, when
    tracking, the mask chosen on the frame before. ``previous_weight`` x its IoU with each candidate is added
    to the ranking: a box says where the object is and how large, and objects move little between frames, so
    the candidate that fills the box or continues the track is usually right even when another token scores
    higher. The returned score is the candidate's own (thresholds read it), not its ranking.
    """
    scores = probs[:, region] * mask_quality(mask_logits)
    binary = mask_logits > 0
    height, width = binary.shape[-2:]

    def covered(points: np.ndarray) -> torch.Tensor:
        if len(points) == 0:
            return torch.zeros((binary.shape[0], 0), dtype=torch.bool, device=binary.device)
        xs = np.clip(np.round(points[:, 0]).astype(int), 0, width - 1)
        ys = np.clip(np.round(points[:, 1]).astype(int), 0, height - 1)
        return binary[:, ys, xs]

    bad = covered(negatives).any(dim=1)
    hits = (
        covered(positives).float().mean(dim=1) if len(positives) else torch.zeros(binary.shape[0], device=scores.device)
    )
    ranking = scores + hits  # hits in [0, 1]: covering every click outranks any score difference below 1
    if previous is not None and previous_weight > 0:
        ranking = ranking + previous_weight * overlap(binary, previous.to(binary.device))
    if (~bad).any():
        ranking = torch.where(bad, torch.full_like(ranking, -1.0), ranking)
    best = int(ranking.argmax())
    return best, float(scores[best])
