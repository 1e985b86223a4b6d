"""``HyperSegPipeline``: every HyperSeg task as one call, over a :class:`HyperSegPredictor`.

The predictor owns encoding and prompting; the pipeline owns what is around them: validating the user's input,
choosing among the candidates (thresholds, panoptic merging, clicks and boxes, track continuity) and returning a
:class:`SegmentationResult` at the original resolution. It keeps no per-call state on ``self``, so one pipeline
serves several users: per-user state lives in an :class:`EncodedImage` (``pipe.encode``: pass it to several
task calls and the image is encoded once) or a :class:`VideoSession` (``pipe.video_session``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from .. import prompts as P
from ..loading import LoadedModel, load_model
from . import answers
from .answers import PROMPT_OVERLAP_WEIGHT, TRACK_HOLD_IOU, TRACKING_OVERLAP_WEIGHT
from .edge_refinement import EdgeRefinement
from .inputs import MAX_CLASSES, MAX_IMAGE_PIXELS, MAX_VIDEO_FRAMES, Region, check_class_names, check_samples
from .openings import answer_opening
from .predictor import DEFAULT_MAX_NEW_TOKENS, EncodedImage, HyperSegPredictor
from .results import SegmentationResult
from .video import MAX_VIDEO_CLASSES, TrackBank, VideoSession, instance_frames, referring_frames
from .video_frames import frames_of

CLASS_MODES = ("semantic", "instance", "panoptic")
# Class-free naming proposes the names of the LLM's greedy list and of 4 lists sampled from it, then keeps those
# that segmentation confirms: on test seeds 3-5 (100 images each) name recall 0.814 -> 0.882 at a like precision
# (0.907 -> 0.910) against the greedy list alone (docs/research/embedded-v2.md, "Naming from sampled lists").
NAMING_SAMPLES = 4


class HyperSegPipeline:
    def __init__(
        self,
        loaded: LoadedModel,
        wording: P.Wording = "official",
        chunk_size: int = 20,
        max_pixels: int = MAX_IMAGE_PIXELS,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        tracking_overlap_weight: float = TRACKING_OVERLAP_WEIGHT,
        prompt_overlap_weight: float = PROMPT_OVERLAP_WEIGHT,
        track_match_classes: bool = False,
        track_hold_iou: float | None = TRACK_HOLD_IOU,
        naming_samples: int = NAMING_SAMPLES,
        keep_prompted_parts: bool = True,
        refine_edges: bool = True,
        name_answer_from_mask: bool = True,
    ) -> None:
        # track_match_classes: video instances join a track only of their own top class (video.py, TrackBank)
        # keep_prompted_parts: a visual prompt's mask keeps only the parts its click, scribble or box points at,
        # and a tracked object's only the parts that touch its mask on the frame before (prompted_parts.py)
        # refine_edges: every mask's edges move onto the image's own (edge_refinement.py), with the window and eps
        # the checkpoint's config gives (edge_refinement_size 0: not for this checkpoint, as the release)
        # name_answer_from_mask: an explained reasoning answer starts with the colour and category the attribute
        # heads read from the chosen mask, and the LLM explains from there, so the text names what the mask shows
        # (models without both attribute heads, the release among them: the LLM names it freely)
        # track_hold_iou: in referring video, a frame's mask that continues the last answer (IoU at least this)
        # answers below the no-match threshold; None: every frame refuses alone
        for name, weight in (
            ("tracking_overlap_weight", tracking_overlap_weight),
            ("prompt_overlap_weight", prompt_overlap_weight),
        ):
            if weight < 0:
                raise ValueError(f"{name} must be 0 (the release's choice by score) or positive")
        self.tracking_overlap_weight = tracking_overlap_weight
        self.prompt_overlap_weight = prompt_overlap_weight
        self.track_match_classes = track_match_classes
        if track_hold_iou is not None and not 0.0 < track_hold_iou <= 1.0:
            raise ValueError("track_hold_iou must be None (every frame refuses alone) or in (0, 1]")
        self.track_hold_iou = track_hold_iou
        self.naming_samples = check_samples(naming_samples, "naming_samples")
        self.keep_prompted_parts = bool(keep_prompted_parts)
        self.refine_edges = bool(refine_edges)
        self.name_answer_from_mask = bool(name_answer_from_mask)
        self.predictor = HyperSegPredictor(
            loaded, wording=wording, chunk_size=chunk_size, max_pixels=max_pixels, max_new_tokens=max_new_tokens
        )
        self.loaded = loaded
        self.model = loaded.model
        self.processor = loaded.processor
        self.tokenizer = loaded.tokenizer

    @classmethod
    def from_pretrained(cls, name_or_path=None, precision: str | None = None, device_map=None, **kwargs):
        return cls(load_model(name_or_path, precision=precision, device_map=device_map), **kwargs)

    # settings live on the predictor (it builds the prompts); read here for the pipeline's callers
    wording = property(lambda self: self.predictor.wording)
    chunk_size = property(lambda self: self.predictor.chunk_size)
    max_pixels = property(lambda self: self.predictor.max_pixels)
    max_new_tokens = property(lambda self: self.predictor.max_new_tokens)

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    def encode(self, image) -> EncodedImage:
        """Load, validate and encode an image once; pass the result to any image task instead of the image (the
        interactive tab does, for every click on one upload). An :class:`EncodedImage` is returned as it is."""
        return self.predictor.encode(image)

    # ------------------------------------------------------------------ class prompts
    @torch.inference_mode()
    def describe(
        self, image, confirm: bool = True, threshold: float | None = None, samples: int | None = None
    ) -> list[str]:
        """The classes the LLM names in the image (LLMFormer-style open naming).

        With ``confirm`` (not in HyperSeg), the names of the LLM's greedy list and of ``samples`` more lists
        sampled from it (default the pipeline's ``naming_samples``) that :meth:`confirm_class_names` keeps: the
        LLM proposes, the mask decoder confirms. ``confirm=False`` returns the greedy list as the LLM wrote it
        (``samples`` default 0). The same image gets the same names every time (the draw has a fixed seed).
        """
        image = self.encode(image)
        samples = (self.naming_samples if confirm else 0) if samples is None else check_samples(samples)
        names = self._proposed_class_names(image, samples)[0]
        return self.confirm_class_names(image, names, threshold) if confirm and names else names

    def _proposed_class_names(self, image: EncodedImage, samples: int) -> tuple[list[str], str]:
        """The names of the LLM's greedy list and of ``samples`` sampled lists, united in that order, and the
        greedy list as written."""
        greedy = self.predictor.describe(image)
        texts = [greedy] + (self.predictor.describe_sampled(samples, image) if samples else [])
        names = [name for text in texts for name in self._named_classes(text)]
        return list(dict.fromkeys(names))[:MAX_CLASSES], greedy

    def _named_classes(self, answer: str) -> list[str]:
        """The class names in the LLM's answer that a class prompt accepts: the model's own words, so one that
        is no usable name (too long, say) is dropped rather than refused as a user's would be."""
        names = []
        for name in P.parse_class_list(answer):
            try:
                names.append(self.processor.check_text(name, "class name"))
            except ValueError:
                continue
        return list(dict.fromkeys(names))[:MAX_CLASSES]

    @torch.inference_mode()
    def confirm_class_names(self, image, names: Sequence[str], threshold: float | None = None) -> list[str]:
        """The names of ``names`` that semantic segmentation of the image gives pixels to at ``threshold`` (default
        the checkpoint's semantic threshold), in their order.

        Semantic mode: on `lite2` (val, 50 images) it kept more of the right names than panoptic or instance
        mode at a like precision (docs/research/embedded-v2.md, "Class-free naming confirmed by segmentation").
        The decoder's own masks decide, without edge refinement: refinement moves edges, and it took the last
        pixels of small classes away (describe's name recall 3 points lower on test seed 1 when it decided).
        """
        names = check_class_names(names, self.processor.check_text)
        candidates = self.predictor.predict(class_names=names, mode="semantic", image=self.encode(image))
        threshold = self.class_threshold("semantic", threshold)
        found = set(answers.class_answer(candidates, "semantic", set(), threshold).labels)
        return [name for name in names if name in found]

    @torch.inference_mode()
    def segment_classes(
        self,
        image,
        class_names: Sequence[str] | str | None = None,
        mode: str = "panoptic",
        stuff: Sequence[str] = (),
        threshold: float | None = None,
        chunk_size: int | None = None,
    ) -> SegmentationResult:
        """Semantic / instance / panoptic segmentation from any list of class names (or none: the names that
        :meth:`describe` gives, the LLM's greedy list in ``answer``).

        Long lists are split into prompts of ``chunk_size`` names, run as one batch over one encoding of the
        image, and merged: every (chunk, query) pair is a candidate segment scored against its chunk's names.
        Names in ``stuff`` are amorphous regions (merged per class in panoptic mode). ``threshold`` defaults to
        the checkpoint's (``class_threshold``).
        """
        if mode not in CLASS_MODES:
            raise ValueError(f"mode must be one of {CLASS_MODES}, got {mode!r}")
        threshold = self.class_threshold(mode, threshold)
        image = self.encode(image)
        answer = None
        if class_names is None or (isinstance(class_names, str) and not class_names.strip()):
            proposed, answer = self._proposed_class_names(image, self.naming_samples)
            # what the mask decoder confirms; when it confirms none, the proposals (they come back as absent)
            class_names = (self.confirm_class_names(image, proposed) if proposed else []) or proposed
            if not class_names:
                return SegmentationResult.empty(
                    mode,
                    "(no class list)",
                    image.size,
                    answer=answer,
                    notices=image.notices
                    + [
                        "the model named no class (this checkpoint may not have been trained to): "
                        "type the class names to look for"
                    ],
                )
        names = check_class_names(class_names, self.processor.check_text)
        candidates = self.predictor.predict(class_names=names, mode=mode, image=image, chunk_size=chunk_size)
        return answers.class_answer(candidates, mode, set(stuff), threshold, answer, edges=self.edge_refinement)

    @property
    def edge_refinement(self) -> EdgeRefinement | None:
        """The edge refinement the masks get: the checkpoint's settings, None where it has none or
        ``refine_edges`` is off."""
        return EdgeRefinement.from_config(self.model.config) if self.refine_edges else None

    def class_threshold(self, mode: str, threshold: float | None = None) -> float:
        """The score threshold of a class prompt in ``mode``: ``threshold`` if given, else the checkpoint's own.

        Semantic mode thresholds per-pixel class evidence (``config.semantic_threshold``), instance and panoptic
        mode per-segment scores (``config.segment_threshold``); each checkpoint stores values picked on val.
        """
        if threshold is None:
            config = self.model.config
            threshold = config.semantic_threshold if mode == "semantic" else config.segment_threshold
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        return threshold

    def referring_threshold(self, threshold: float | None = None) -> float:
        """The no-match threshold of an expression or question: ``threshold`` if given, else the checkpoint's own
        (``config.referring_threshold``, picked on val). Below it the best mask's score means "nothing matches"."""
        if threshold is None:
            threshold = self.model.config.referring_threshold
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        return threshold

    # ------------------------------------------------------------------ referring / reasoning
    @torch.inference_mode()
    def refer(self, image, expression: str, threshold: float | None = None) -> SegmentationResult:
        """Referring expression -> one mask (an expression about several objects covers them all), or no match."""
        return self._referring(image, expression, "referring", threshold, explain=False)

    @torch.inference_mode()
    def reason(self, image, question: str, explain: bool = False, threshold: float | None = None) -> SegmentationResult:
        """Reasoning question -> mask, and with ``explain=True`` the LLM's answer text continuing its answer."""
        return self._referring(image, question, "reasoning", threshold, explain=explain)

    def _referring(self, image, text: str, task: str, threshold: float | None, explain: bool) -> SegmentationResult:
        threshold = self.referring_threshold(threshold)
        text = self.processor.check_text(text, "expression" if task == "referring" else "question")
        image = self.encode(image)
        if task == "referring":
            candidates = self.predictor.predict(expression=text, image=image)
        else:
            candidates = self.predictor.predict(question=text, image=image)
        union = self.model.config.referring_union_threshold if task == "referring" else 0.0
        result = answers.referring_answer(
            candidates, task, threshold, edges=self.edge_refinement, union_threshold=union
        )[0]
        if explain:
            named = self.name_answer_from_mask and not result.no_match
            opening = answer_opening(candidates) if named else None
            if opening is None:
                result.answer = self.predictor.explain(text, image)
            else:
                avoid = opening.contradicting_words(text)
                result.answer = opening.complete(self.predictor.explain(text, image, opening.prompt, avoid_words=avoid))
        return result

    # ------------------------------------------------------------------ visual prompts
    @torch.inference_mode()
    def interactive(self, image, regions: Sequence[Region] | Region) -> SegmentationResult:
        """Points (positive / negative), boxes, scribbles or masks -> one mask per region."""
        regions = [regions] if isinstance(regions, Region) else list(regions)
        if not regions:
            raise ValueError("give at least one region (a click, a box, a scribble or a mask)")
        image = self.predictor.load(image)
        for region in regions:  # before encoding: a bad click costs nothing
            region.validate(image.size)
        candidates = self.predictor.predict(regions=regions, image=self.encode(image))
        return answers.region_answer(
            candidates,
            regions,
            self.prompt_overlap_weight,
            keep_parts=self.keep_prompted_parts,
            edges=self.edge_refinement,
        )

    # ------------------------------------------------------------------ video
    def video_session(self, video, max_frames: int | None = None) -> VideoSession:
        """A :class:`VideoSession` on ``video`` (path, folder of frames, list of images): add visual prompts on
        any frame for several objects, then ``propagate()``. Uses this pipeline's overlap weights."""
        return VideoSession(
            self.predictor,
            video,
            tracking_overlap_weight=self.tracking_overlap_weight,
            prompt_overlap_weight=self.prompt_overlap_weight,
            max_frames=max_frames,
            keep_parts=self.keep_prompted_parts,
            edges=self.edge_refinement,
        )

    def track_stream(self, video, regions: Sequence[Region] | Region) -> Iterator[SegmentationResult]:
        """First-frame visual prompts (clicks, boxes, scribbles, masks) -> one result per frame, lazily.

        Region ``k`` is object ``k + 1`` of a :class:`VideoSession` prompted on frame 0: pooled once on the
        first frame and reused on every frame (as the release's VOS path uses the reference frame's features);
        the temporal adapter carries the rest. From the second frame on, each region also prefers the candidate
        that overlaps its mask on the frame before (``tracking_overlap_weight``), and on the first frame a box
        or mask prompt itself (``prompt_overlap_weight``); 0 picks by the region score alone, as the release.
        """
        return self._track(video, regions, None)

    def track(self, video, regions: Sequence[Region] | Region) -> list[SegmentationResult]:
        return list(self._track(video, regions, MAX_VIDEO_FRAMES))

    def _track(self, video, regions, max_frames: int | None) -> Iterator[SegmentationResult]:
        regions = [regions] if isinstance(regions, Region) else list(regions)
        if not regions:
            raise ValueError("give at least one first-frame region to track")
        session = self.video_session(video, max_frames)
        for k, region in enumerate(regions):
            session.add_prompt(0, k + 1, region)
        try:
            for _, result in session.propagate(0):
                yield result
        finally:
            session.close()

    def refer_video_stream(
        self, video, expression: str, reasoning: bool = False, threshold: float | None = None
    ) -> Iterator[SegmentationResult]:
        """An expression (or, with ``reasoning=True``, a question) over a clip -> one result per frame.

        Each frame answers with its best mask token, preferring the one that continues the mask answered on the
        frame before (``tracking_overlap_weight``; 0 = each frame alone, as the release)."""
        return self._refer_video(video, expression, reasoning, threshold, None)

    def refer_video(
        self, video, expression: str, reasoning: bool = False, threshold: float | None = None
    ) -> list[SegmentationResult]:
        return list(self._refer_video(video, expression, reasoning, threshold, MAX_VIDEO_FRAMES))

    def _refer_video(self, video, expression, reasoning, threshold, max_frames) -> Iterator[SegmentationResult]:
        threshold = self.referring_threshold(threshold)
        text = self.processor.check_text(expression, "question" if reasoning else "expression")
        frames = frames_of(video, max_frames)
        try:
            yield from referring_frames(
                self.predictor,
                frames,
                text,
                reasoning,
                threshold,
                self.tracking_overlap_weight,
                self.track_hold_iou,
                self.edge_refinement,
            )
        finally:
            frames.close()

    def video_instances_stream(
        self,
        video,
        class_names: Sequence[str] | str,
        threshold: float | None = None,
        match_similarity: float = 0.5,
        max_missed: int = 5,
        match_classes: bool | None = None,
    ) -> Iterator[SegmentationResult]:
        """Class list over a clip -> instances per frame with track ids kept by instance-embedding matching.

        Each track is labelled with the class its detections have scored highest so far (summed class
        probabilities), so its label holds while a detection's top class flickers between frames; a detection
        joins the most similar live track whatever its top class. ``match_classes=True`` joins only tracks of
        the detection's own top class and labels every detection alone (this pipeline before 2026-12-03); None
        takes the pipeline's ``track_match_classes``."""
        return self._video_instances(video, class_names, threshold, match_similarity, max_missed, match_classes, None)

    def video_instances(
        self, video, class_names: Sequence[str] | str, threshold: float | None = None, match_classes: bool | None = None
    ) -> list[SegmentationResult]:
        return list(self._video_instances(video, class_names, threshold, 0.5, 5, match_classes, MAX_VIDEO_FRAMES))

    def _video_instances(
        self, video, class_names, threshold, match_similarity, max_missed, match_classes, max_frames
    ) -> Iterator[SegmentationResult]:
        threshold = self.class_threshold("instance", threshold)
        match_classes = self.track_match_classes if match_classes is None else match_classes
        names = check_class_names(class_names, self.processor.check_text)
        if len(names) > MAX_VIDEO_CLASSES:
            raise ValueError(f"at most {MAX_VIDEO_CLASSES} class names for video instance segmentation")
        frames = frames_of(video, max_frames)
        try:
            yield from instance_frames(
                self.predictor,
                frames,
                names,
                threshold,
                TrackBank(match_similarity, max_missed, match_classes),
                self.edge_refinement,
            )
        finally:
            frames.close()
