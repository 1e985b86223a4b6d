"""Video tasks: object tracking from first-frame prompts, referring / reasoning video segmentation, and
video instance segmentation. Frames are processed one by one through the temporal adapter; every task has a
streaming (generator) form whose memory does not depend on the clip length (only a ``TemporalState`` and,
for instances, one embedding per live track are kept).
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from .. import prompts as P
from ..modeling.temporal_adapter import TemporalState
from .inputs import Region, check_class_names, iter_video, load_video
from .results import SegmentationResult

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import HyperSegPipeline

MAX_VIDEO_CLASSES = 100  # a video class list is one prompt (the temporal state is per prompt)


class VideoMethods:
    """Mixed into :class:`HyperSegPipeline`; uses its private image helpers."""

    # ------------------------------------------------------------------ object tracking (VOS)
    def track_stream(self: "HyperSegPipeline", video, regions: Sequence[Region] | Region) -> Iterator[SegmentationResult]:
        """First-frame visual prompts (clicks, boxes, scribbles, masks) -> one result per frame, lazily.

        The prompts are pooled once on the first frame and reused on every frame (as the release's VOS path
        uses the reference frame's features); the temporal adapter carries the rest. From the second frame on,
        each region also prefers the candidate that overlaps its mask on the frame before
        (``tracking_overlap_weight``), and on the first frame a box or mask prompt itself
        (``prompt_overlap_weight``); 0 picks by the region score alone, as the release.
        """
        regions = [regions] if isinstance(regions, Region) else list(regions)
        if not regions:
            raise ValueError("give at least one first-frame region to track")
        frames = iter_video(video)
        first = self._frame(next(frames))
        masks = self._region_masks(regions, first).to(self.device)
        encoded = [self.processor.encode(P.region_prompt(len(regions), self.wording, video=True),
                                         num_regions=len(regions))]
        state = TemporalState()
        pooled = previous = None  # on the first frame a box or mask prompt's own extent guides the choice
        for index, pixels in enumerate(chain([first.pixels], frames)):
            with torch.inference_mode():
                frame = first if index == 0 else self._frame(pixels)
                features = self._encode([frame], state)
                if pooled is None:
                    pooled = self.model.pool_region_prompts(features, [masks])
                out = self._run(features, encoded, state=state, region_features=pooled)
                state = out.temporal_state.detach()
                result, previous = self._region_result(out, 0, frame, regions, frame_index=index,
                                                       task="video_object", previous=previous)
                yield result

    def track(self, video, regions: Sequence[Region] | Region) -> list[SegmentationResult]:
        load_video(video)  # validates length and frame sizes before any work
        return list(self.track_stream(video, regions))

    # ------------------------------------------------------------------ referring / reasoning video
    def refer_video_stream(self: "HyperSegPipeline", video, expression: str, reasoning: bool = False,
                           threshold: float = 0.5) -> Iterator[SegmentationResult]:
        """An expression (or, with ``reasoning=True``, a question) over a clip -> one result per frame.

        Each frame answers with its best mask token, preferring the one that continues the mask answered on the
        frame before (``tracking_overlap_weight``; 0 = each frame alone, as the release)."""
        task = "reasoning_video" if reasoning else "referring_video"
        text = self.processor.check_text(expression, "question" if reasoning else "expression")
        conversation = P.video_reasoning_prompt(self.wording) if reasoning else P.referring_prompt("referring", self.wording)
        encoded = [self.processor.encode(conversation, expression=text)]
        state = TemporalState()
        previous = None
        for index, pixels in enumerate(iter_video(video)):
            with torch.inference_mode():
                frame = self._frame(pixels)
                out = self._run(self._encode([frame], state), encoded, state=state)
                state = out.temporal_state.detach()
                result, previous = self._referring_result(out, 0, frame, text, task, threshold, frame_index=index,
                                                          previous=previous)
                yield result

    def refer_video(self, video, expression: str, reasoning: bool = False, threshold: float = 0.5
                    ) -> list[SegmentationResult]:
        load_video(video)
        return list(self.refer_video_stream(video, expression, reasoning, threshold))

    # ------------------------------------------------------------------ video instance segmentation
    def video_instances_stream(self: "HyperSegPipeline", video, class_names: Sequence[str] | str,
                               threshold: float | None = None, match_similarity: float = 0.5, max_missed: int = 5,
                               match_classes: bool | None = None) -> Iterator[SegmentationResult]:
        """Class list over a clip -> instances per frame with track ids kept by instance-embedding matching.

        Each track is labelled with the class its detections have scored highest so far (summed class
        probabilities), so its label holds while a detection's top class flickers between frames; a detection
        joins the most similar live track whatever its top class. ``match_classes=True`` joins only tracks of
        the detection's own top class and labels every detection alone (this pipeline before 2026-12-03); None
        takes the pipeline's ``track_match_classes``."""
        threshold = self.class_threshold("instance", threshold)
        match_classes = self.track_match_classes if match_classes is None else match_classes
        names = check_class_names(class_names, self.processor.check_text)
        if len(names) > MAX_VIDEO_CLASSES:
            raise ValueError(f"at most {MAX_VIDEO_CLASSES} class names for video instance segmentation")
        tracks = _TrackBank(match_similarity, max_missed, match_classes)
        state = TemporalState()
        for index, pixels in enumerate(iter_video(video)):
            with torch.inference_mode():
                frame = self._frame(pixels)
                features = self._encode([frame], state)
                logits, probs, embeddings, state = self._class_candidates(features, frame, names, "instance",
                                                                          len(names), state=state, video=True)
                state = state.detach()
                segments = self._class_segments(logits, probs, names, "instance", set(), threshold)
                ids, labels = tracks.assign([embeddings[s.query] for s in segments], [probs[s.query] for s in segments])
                masks = self._to_original(torch.stack([s.mask for s in segments]) if segments else
                                          torch.zeros((0, *logits.shape[-2:]), dtype=torch.bool), frame)
                found = set(labels)
                yield SegmentationResult("video_instance", ", ".join(names), masks, [names[k] for k in labels],
                                         np.array([s.score for s in segments], dtype=np.float32),
                                         np.array(ids, dtype=np.int64),
                                         absent=[n for k, n in enumerate(names) if k not in found],
                                         notices=frame.notices, frame_index=index)

    def video_instances(self, video, class_names: Sequence[str] | str, threshold: float | None = None,
                        match_classes: bool | None = None) -> list[SegmentationResult]:
        load_video(video)
        return list(self.video_instances_stream(video, class_names, threshold, match_classes=match_classes))


class _TrackBank:
    """Live tracks, matched to each frame's detections by Hungarian on the cosine of instance embeddings.

    A track keeps a unit embedding (running mean) and the sum of its detections' class probabilities, and is
    labelled with the class of the largest sum, as VIS methods that link per-frame queries average class scores
    over a track (MinVIS, IDOL). ``match_classes``: a detection may only join a track of its own top class, and
    is labelled with that class.
    """

    def __init__(self, min_similarity: float, max_missed: int, match_classes: bool = False) -> None:
        self.min_similarity = min_similarity
        self.max_missed = max_missed
        self.match_classes = match_classes
        self.embeddings: dict[int, torch.Tensor] = {}
        self.evidence: dict[int, torch.Tensor] = {}
        self.missed: dict[int, int] = {}
        self.next_id = 1

    def label(self, track: int) -> int:
        return int(self.evidence[track].argmax())

    def assign(self, embeddings: list[torch.Tensor], class_probs: list[torch.Tensor]) -> tuple[list[int], list[int]]:
        """One frame's detections (instance embedding, (K,) class probabilities each) -> (track ids, labels)."""
        ids = [0] * len(embeddings)
        tops = [int(p.argmax()) for p in class_probs]
        live = list(self.embeddings)
        if embeddings and live:
            new = F.normalize(torch.stack(embeddings), dim=-1)
            old = torch.stack([self.embeddings[t] for t in live])
            similarity = (new @ old.T).cpu().numpy()
            allowed = np.ones_like(similarity, dtype=bool)
            if self.match_classes:
                allowed = np.array(tops)[:, None] == np.array([self.label(t) for t in live])[None, :]
            cost = np.where(allowed, -similarity, 10.0)
            for i, j in zip(*linear_sum_assignment(cost)):
                if allowed[i, j] and similarity[i, j] >= self.min_similarity:
                    ids[i] = live[j]
        for i, embedding in enumerate(embeddings):
            unit = F.normalize(embedding, dim=-1)
            if ids[i] == 0:
                ids[i] = self.next_id
                self.next_id += 1
                self.embeddings[ids[i]] = unit
                self.evidence[ids[i]] = class_probs[i].float().clone()
            else:
                self.embeddings[ids[i]] = F.normalize(self.embeddings[ids[i]] + unit, dim=-1)
                self.evidence[ids[i]] = self.evidence[ids[i]] + class_probs[i].float()
            self.missed[ids[i]] = 0
        for track in live:
            if track not in ids:
                self.missed[track] += 1
                if self.missed[track] > self.max_missed:
                    for table in (self.embeddings, self.evidence, self.missed):
                        table.pop(track)
        labels = tops if self.match_classes else [self.label(t) for t in ids]
        return ids, labels
