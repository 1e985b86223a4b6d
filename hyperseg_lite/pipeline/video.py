"""Video: a :class:`VideoSession` for visual prompts on any frame (in the spirit of sam2's video predictor), and
the text and class-list video tasks. Frames go one by one through the temporal adapter; every video task is a
generator whose memory does not depend on the clip length (a ``TemporalState``, one mask per object or one
embedding per live track), and each clip is decoded once (:class:`VideoFrames`).

    session = pipe.video_session("clip.mp4")
    session.add_prompt(0, 1, Region(box=[10, 20, 80, 90]))      # object 1 on frame 0
    session.add_prompt(12, 2, Region(points=[[40, 50]]))         # object 2 appears on frame 12
    for frame_index, result in session.propagate():             # one mask per object id on every frame
        ...
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from ..modeling.temporal_adapter import TemporalState
from .answers import (
    PROMPT_OVERLAP_WEIGHT,
    TRACKING_OVERLAP_WEIGHT,
    class_segments,
    prompt_extent,
    prompted_masks,
    referring_answer,
    region_choices,
    segment_masks,
)
from .edge_refinement import EdgeRefinement
from .inputs import Region
from .predictor import HyperSegPredictor
from .results import SegmentationResult
from .video_frames import VideoFrames, frames_of

MAX_VIDEO_CLASSES = 100  # a video class list is one prompt (the temporal state is per prompt)


class VideoSession:
    """Visual prompts on any frame of one clip, for several objects, propagated frame by frame.

    State is explicit and lives here, not in the pipeline: the prompts added so far (frame -> object id ->
    :class:`Region`); :meth:`propagate` keeps only the temporal state, each object's pooled prompt and its mask
    on the frame before. An object enters on the frame of its prompt (its prompt is pooled on that frame's
    features) and is followed from there; on frames before its prompt (in the direction of propagation) its
    mask is empty with score 0. A later prompt for the same object replaces its pooled prompt from that frame on.
    Propagation runs forward or, on a clip that can be read backwards (a list, a folder, a video file), in
    reverse: the temporal state is carried in whatever order the frames are given.
    """

    def __init__(
        self,
        predictor: HyperSegPredictor,
        video,
        tracking_overlap_weight: float = TRACKING_OVERLAP_WEIGHT,
        prompt_overlap_weight: float = PROMPT_OVERLAP_WEIGHT,
        max_frames: int | None = None,
        task: str = "video_object",
        keep_parts: bool = True,
        edges: EdgeRefinement | None = None,
    ) -> None:
        self.predictor = predictor
        self.keep_parts = keep_parts  # prompted_parts.py: prompted frames as images; later ones by the frame before
        self.edges = edges  # edge_refinement.py: each mask's edges on the frame's own
        self.frames = frames_of(video, max_frames)
        self.tracking_overlap_weight = tracking_overlap_weight
        self.prompt_overlap_weight = prompt_overlap_weight
        self.task = task
        self.prompts: dict[int, dict[int, Region]] = {}

    @property
    def object_ids(self) -> list[int]:
        return sorted({o for objects in self.prompts.values() for o in objects})

    def add_prompt(self, frame_index: int, object_id: int, region: Region) -> None:
        """Prompt object ``object_id`` (an int >= 1, its id in every result) on frame ``frame_index`` with a click,
        box, scribble or mask; validated against the clip's frame size now."""
        if not isinstance(region, Region):
            raise ValueError("a prompt is a Region (points, box, scribble or mask)")
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)) or frame_index < 0:
            raise ValueError(f"frame_index must be a frame number (0 or more), got {frame_index!r}")
        if isinstance(object_id, bool) or not isinstance(object_id, (int, np.integer)) or object_id < 1:
            raise ValueError(f"object_id must be an integer of 1 or more, got {object_id!r}")
        known = self.frames.known_length
        if known is not None and frame_index >= known:
            raise ValueError(f"frame {frame_index} is past the end of the clip ({known} frames)")
        region.validate(self.frames.size)
        self.prompts.setdefault(int(frame_index), {})[int(object_id)] = region

    def reset(self) -> None:
        """Forget every prompt (the clip stays open)."""
        self.prompts.clear()

    def propagate(
        self, start_frame: int | None = None, reverse: bool = False
    ) -> Iterator[tuple[int, SegmentationResult]]:
        """Yield ``(frame_index, result)`` from ``start_frame`` (default: the first prompted frame, or the last one
        with ``reverse=True``) to the end of the clip (or frame 0), one mask per object id on every frame."""
        if not self.prompts:
            raise ValueError("add a prompt first: session.add_prompt(frame_index, object_id, region)")
        prompted = sorted(self.prompts)
        start = (prompted[-1] if reverse else prompted[0]) if start_frame is None else start_frame
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
            raise ValueError(f"start_frame must be a frame number (0 or more), got {start_frame!r}")
        if reverse and not self.frames.random_access:
            raise ValueError("a generator of frames cannot be read backwards: give a list, a folder or a file")
        return self._propagate(int(start), reverse, dict((f, dict(o)) for f, o in self.prompts.items()))

    def _propagate(
        self, start: int, reverse: bool, prompts: dict[int, dict[int, Region]]
    ) -> Iterator[tuple[int, SegmentationResult]]:
        predictor = self.predictor
        objects = sorted({o for frame in prompts.values() for o in frame})
        state = TemporalState()
        active: list[int] = []  # objects in order of entry: their order among the prompt's regions
        pooled: dict[int, torch.Tensor] = {}
        region_of: dict[int, Region] = {}
        previous: dict[int, torch.Tensor | None] = {}
        for index, pixels in self.frames.frames(start, reverse):
            with torch.inference_mode():
                image = predictor.encode(pixels, state)
                new = prompts.get(index, {})
                fresh = [o for o in objects if o in new]
                if fresh:  # pooled on the frame they were drawn on, reused on the frames after
                    features, _ = predictor.pool_regions([new[o] for o in fresh], image)
                    for k, o in enumerate(fresh):
                        pooled[o], region_of[o] = features[0, k], new[o]
                        if o not in active:
                            active.append(o)
                if not active:
                    yield index, self._result(image, index, objects, {}, {})
                    continue
                region_features = (
                    torch.stack([pooled[o] for o in active])[None],
                    torch.ones((1, len(active)), dtype=torch.bool, device=predictor.device),
                )
                candidates = predictor.predict(region_features=region_features, image=image, state=state, video=True)
                state = candidates.temporal_state.detach()
                priors, weights = [], []
                for o in active:
                    if o in fresh:  # a box or mask prompt's own extent guides the choice on its frame
                        priors.append(prompt_extent(region_of[o], image))
                        weights.append(self.prompt_overlap_weight)
                    else:  # later frames continue the mask chosen on the frame before
                        priors.append(previous[o])
                        weights.append(self.tracking_overlap_weight)
                chosen, scores = region_choices(candidates, [region_of[o] for o in active], priors, weights)
                logits = prompted_masks(  # a prompted frame keeps what its prompt points at, later ones the track
                    candidates,
                    chosen,
                    [region_of[o] if o in fresh else None for o in active],
                    [None if o in fresh else previous[o] for o in active],
                    self.keep_parts,
                    self.edges,
                )
                masks = candidates.to_original(logits)
                for o, mask in zip(active, logits > 0):
                    previous[o] = mask
                yield index, self._result(image, index, objects, dict(zip(active, masks)), dict(zip(active, scores)))

    def _result(self, image, index: int, objects: list[int], masks: dict, scores: dict) -> SegmentationResult:
        empty = np.zeros(image.size, dtype=bool)
        return SegmentationResult(
            self.task,
            f"{len(objects)} visual prompt(s)",
            np.stack([masks.get(o, empty) for o in objects]) if objects else np.zeros((0, *image.size), dtype=bool),
            [f"region {o}" for o in objects],
            np.array([scores.get(o, 0.0) for o in objects], dtype=np.float32),
            np.array(objects, dtype=np.int64),
            notices=image.notices,
            frame_index=index,
        )

    def close(self) -> None:
        """Release the clip's decoder (video files)."""
        self.frames.close()


def referring_frames(
    predictor: HyperSegPredictor,
    frames: VideoFrames,
    text: str,
    reasoning: bool,
    threshold: float,
    tracking_overlap_weight: float,
    hold_iou: float | None = None,
    edges: EdgeRefinement | None = None,
) -> Iterator[SegmentationResult]:
    """An expression (or question) over a clip -> one result per frame; each frame prefers the candidate that
    continues the mask answered on the frame before (``tracking_overlap_weight``; 0 = each frame alone), and
    keeps it below the threshold when it overlaps that mask by ``hold_iou`` (None: every frame refuses alone)."""
    task = "reasoning_video" if reasoning else "referring_video"
    state = TemporalState()
    previous = None
    for index, pixels in frames.frames():
        with torch.inference_mode():
            image = predictor.encode(pixels, state)
            candidates = predictor.predict(
                question=text if reasoning else None,
                expression=None if reasoning else text,
                image=image,
                state=state,
                video=True,
            )
            state = candidates.temporal_state.detach()
            result, previous = referring_answer(
                candidates,
                task,
                threshold,
                frame_index=index,
                previous=previous,
                previous_weight=tracking_overlap_weight,
                hold_iou=hold_iou,
                edges=edges,
            )
            yield result


def instance_frames(
    predictor: HyperSegPredictor,
    frames: VideoFrames,
    names: list[str],
    threshold: float,
    tracks: TrackBank,
    edges: EdgeRefinement | None = None,
) -> Iterator[SegmentationResult]:
    """A class list over a clip -> instances per frame, with track ids from ``tracks``."""
    state = TemporalState()
    for index, pixels in frames.frames():
        with torch.inference_mode():
            image = predictor.encode(pixels, state)
            candidates = predictor.predict(
                class_names=names, mode="instance", image=image, state=state, video=True, chunk_size=len(names)
            )
            state = candidates.temporal_state.detach()
            segments = class_segments(candidates, "instance", set(), threshold, edges)
            ids, labels = tracks.assign(
                [candidates.embeddings[s.query] for s in segments], [candidates.scores[s.query] for s in segments]
            )
            masks = segment_masks(segments, candidates)
            found = set(labels)
            yield SegmentationResult(
                "video_instance",
                ", ".join(names),
                masks,
                [names[k] for k in labels],
                np.array([s.score for s in segments], dtype=np.float32),
                np.array(ids, dtype=np.int64),
                absent=[n for k, n in enumerate(names) if k not in found],
                notices=image.notices,
                frame_index=index,
            )


class TrackBank:
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
