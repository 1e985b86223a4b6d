"""``HyperSegPipeline``: every HyperSeg task as one call, in the spirit of SAM's ``predictor.py``.

The pipeline owns pre- and post-processing only: load and validate the input, build the prompt from
:mod:`hyperseg_lite.prompts`, run the model, turn its outputs into a :class:`SegmentationResult` at the
original resolution. It keeps no per-call state on ``self``, so one pipeline can serve several users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import prompts as P
from ..loading import LoadedModel, load_model
from ..modeling.modeling_hyperseg import ImageFeatures
from ..modeling.prompt_layout import PromptLayout
from ..processing_hyperseg import PreparedImage
from ..visual_prompts import box_mask, disc_mask, scaled_radius, scribble_mask
from . import postprocess as post
from .inputs import MAX_IMAGE_PIXELS, Region, check_class_names, load_image
from .results import SegmentationResult
from .video import VideoMethods

CLASS_MODES = ("semantic", "instance", "panoptic")
WORKING_SIZE = 512  # post-processing resolution cap (longest side); final masks are resized to the original
# Visual prompts and tracking choose among the mask tokens by region score x mask quality (the release) plus a
# weight x the candidate's IoU with what is already known of the object: the mask chosen on the frame before
# when tracking, the box or mask drawn as the prompt otherwise. 0 = the release's choice; both picked on the val
# split (model card, "Choosing the mask of a visual prompt")
TRACKING_OVERLAP_WEIGHT = 2.0
PROMPT_OVERLAP_WEIGHT = 10.0


@dataclass
class _Frame:
    """One image made ready for the model (internal)."""

    pixels: np.ndarray
    prepared: PreparedImage
    notices: list[str]


class HyperSegPipeline(VideoMethods):
    def __init__(self, loaded: LoadedModel, wording: P.Wording = "official", chunk_size: int = 20,
                 max_pixels: int = MAX_IMAGE_PIXELS, max_new_tokens: int = 128,
                 tracking_overlap_weight: float = TRACKING_OVERLAP_WEIGHT,
                 prompt_overlap_weight: float = PROMPT_OVERLAP_WEIGHT, track_match_classes: bool = False) -> None:
        # 128: the lite tokenizer spends one token per byte, and the world's explanations run to ~80 bytes
        # track_match_classes: video instances join a track only of their own top class (video.py, _TrackBank)
        for name, weight in (("tracking_overlap_weight", tracking_overlap_weight),
                             ("prompt_overlap_weight", prompt_overlap_weight)):
            if weight < 0:
                raise ValueError(f"{name} must be 0 (the release's choice by score) or positive")
        self.tracking_overlap_weight = tracking_overlap_weight
        self.prompt_overlap_weight = prompt_overlap_weight
        self.track_match_classes = track_match_classes
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.loaded = loaded
        self.model = loaded.model
        self.processor = loaded.processor
        self.tokenizer = loaded.tokenizer
        self.wording = wording
        self.chunk_size = chunk_size
        self.max_pixels = max_pixels
        self.max_new_tokens = max_new_tokens

    @classmethod
    def from_pretrained(cls, name_or_path=None, precision: str | None = None, device_map=None, **kwargs):
        return cls(load_model(name_or_path, precision=precision, device_map=device_map), **kwargs)

    # ------------------------------------------------------------------ shared steps
    @property
    def device(self) -> torch.device:
        return self.loaded.device

    def _frame(self, image) -> _Frame:
        loaded = load_image(image, self.max_pixels)
        prepared = self.processor.prepare_image(torch.from_numpy(loaded.pixels))
        return _Frame(loaded.pixels, prepared, loaded.notices)

    def _encode(self, frames: Sequence[_Frame], state=None) -> ImageFeatures:
        pixels = torch.stack([f.prepared.pixel_values for f in frames]).to(self.device)
        global_pixels = torch.stack([f.prepared.global_pixel_values for f in frames]).to(self.device)
        return self.model.encode_images(pixels, global_pixels, temporal_state=state)

    def _batch(self, encoded: list) -> tuple[dict[str, torch.Tensor], PromptLayout]:
        """The prompts on the model's device, and their layout read from the CPU copy (so the model never
        reads the ids back from the device); pageable copies with ``non_blocking`` do not wait for the GPU."""
        batch = self.processor.collate(encoded)
        layout = PromptLayout.of(batch["input_ids"], batch["class_spans"], batch["refer_mask"])
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}, layout

    def _run(self, features: ImageFeatures, encoded: list, region_masks=None, state=None, region_features=None):
        batch, layout = self._batch(encoded)
        out, _ = self.model.segment(features, batch["input_ids"], batch["attention_mask"],
                                    class_spans=batch["class_spans"], refer_mask=batch["refer_mask"],
                                    region_masks=region_masks, temporal_state=state, region_features=region_features,
                                    layout=layout, aux_scores=False)
        return out

    @staticmethod
    def _working_size(prepared: PreparedImage) -> tuple[int, int]:
        h, w = prepared.resized_size
        scale = min(1.0, WORKING_SIZE / max(h, w))
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _working_logits(self, mask_logits: torch.Tensor, prepared: PreparedImage) -> torch.Tensor:
        """(Q, S/4, S/4) logits on the padded square -> (Q, h, w) on the image content at the working size."""
        size = prepared.pixel_values.shape[-1]
        h, w = prepared.resized_size
        stride = size / mask_logits.shape[-1]
        crop = mask_logits[:, : int(np.ceil(h / stride)), : int(np.ceil(w / stride))].float()
        return F.interpolate(crop[None], size=self._working_size(prepared), mode="bilinear", align_corners=False)[0]

    @staticmethod
    def _to_original(masks: torch.Tensor, frame: _Frame) -> np.ndarray:
        """(N, h, w) bool or logits at the working size -> (N, H, W) bool at the image's size."""
        height, width = frame.pixels.shape[:2]
        if masks.shape[0] == 0:
            return np.zeros((0, height, width), dtype=bool)
        values = masks.float() if masks.dtype != torch.bool else masks.float() - 0.5
        return (F.interpolate(values[None], size=(height, width), mode="bilinear", align_corners=False)[0] > 0).cpu().numpy()

    def _working_mask(self, mask: np.ndarray, frame: _Frame) -> torch.Tensor:
        """(H, W) bool at the image's size -> (h, w) bool at the working size (the inverse of ``_to_original``)."""
        values = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None] - 0.5
        size = self._working_size(frame.prepared)
        return (F.interpolate(values, size=size, mode="bilinear", align_corners=False)[0, 0] > 0).to(self.device)

    def _to_working_points(self, points: np.ndarray, frame: _Frame) -> np.ndarray:
        height, width = frame.pixels.shape[:2]
        wh, ww = self._working_size(frame.prepared)
        return points * np.array([ww / width, wh / height]) if len(points) else points

    # ------------------------------------------------------------------ class prompts
    @torch.inference_mode()
    def describe(self, image) -> list[str]:
        """Without a class list, the LLM first names what it sees (LLMFormer-style open naming)."""
        frame = self._frame(image)
        return P.parse_class_list(self._generate(self._encode([frame]), P.describe_prompt(self.wording)))

    def _generate(self, features: ImageFeatures, conversation: P.Conversation, with_answer: bool = False,
                  expression: str | None = None) -> str:
        encoded = self.processor.encode(conversation, expression=expression, with_answer=with_answer, close_turn=False)
        batch = {k: v.to(self.device) for k, v in self.processor.collate([encoded], padding_side="left").items()}
        generated = self.model.generate_text(batch["input_ids"], batch["attention_mask"], features,
                                             max_new_tokens=self.max_new_tokens,
                                             eos_token_id=self.tokenizer.eos_token_id,
                                             pad_token_id=self.tokenizer.pad_token_id,
                                             vocabulary_size=len(self.tokenizer))
        return self.tokenizer.decode(generated[0], skip_special_tokens=True).strip()

    @torch.inference_mode()
    def segment_classes(self, image, class_names: Sequence[str] | str | None = None, mode: str = "panoptic",
                        stuff: Sequence[str] = (), threshold: float | None = None, chunk_size: int | None = None
                        ) -> SegmentationResult:
        """Semantic / instance / panoptic segmentation from any list of class names (or none: the model names them).

        Long lists are split into prompts of ``chunk_size`` names, run as one batch over one encoding of the
        image, and merged: every (chunk, query) pair is a candidate segment scored against its chunk's names.
        Names in ``stuff`` are amorphous regions (merged per class in panoptic mode). ``threshold`` defaults to
        the checkpoint's (``class_threshold``).
        """
        if mode not in CLASS_MODES:
            raise ValueError(f"mode must be one of {CLASS_MODES}, got {mode!r}")
        threshold = self.class_threshold(mode, threshold)
        frame = self._frame(image)
        features = self._encode([frame])
        answer = None
        if class_names is None or (isinstance(class_names, str) and not class_names.strip()):
            answer = self._generate(features, P.describe_prompt(self.wording))
            class_names = P.parse_class_list(answer)
            if not class_names:
                return SegmentationResult.empty(mode, "(no class list)", frame.pixels.shape[:2], answer=answer,
                                                notices=frame.notices + ["the model named no class (this checkpoint may not have been trained to): type the class names to look for"])
        names = check_class_names(class_names, self.processor.check_text)
        logits, probs, _, _ = self._class_candidates(features, frame, names, mode, chunk_size or self.chunk_size)
        return self._class_result(frame, names, logits, probs, mode, set(stuff), threshold, answer)

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

    def _class_candidates(self, features: ImageFeatures, frame: _Frame, names: list[str], mode: str,
                          chunk_size: int, state=None, video: bool = False):
        """Candidate masks (C, h, w), scores over all names (C, K), instance embeddings (C, D), next temporal state."""
        chunks = [names[i:i + chunk_size] for i in range(0, len(names), chunk_size)]
        encoded = [self.processor.encode(P.class_prompt(len(c), mode, self.wording, video=video), class_names=c)
                   for c in chunks]
        out = self._run(features.select([0] * len(chunks)), encoded, state=state)
        all_logits, all_probs, embeddings = [], [], []
        for row, chunk in enumerate(chunks):
            offset = row * chunk_size
            probs = torch.zeros(out.pred_masks.shape[1], len(names), device=out.pred_masks.device)
            probs[:, offset:offset + len(chunk)] = out.prompt_logits[row, :, :len(chunk)].float().sigmoid()
            all_probs.append(probs)
            all_logits.append(self._working_logits(out.pred_masks[row], frame.prepared))
            embeddings.append(out.instance_embeddings[row].float())
        return torch.cat(all_logits), torch.cat(all_probs), torch.cat(embeddings), out.temporal_state

    def _class_result(self, frame: _Frame, names: list[str], logits: torch.Tensor, probs: torch.Tensor, mode: str,
                      stuff: set[str], threshold: float, answer: str | None = None,
                      frame_index: int | None = None) -> SegmentationResult:
        """Candidate masks + scores -> the requested kind of class segmentation; unlisted-in-image names -> absent."""
        segments = self._class_segments(logits, probs, names, mode, stuff, threshold)
        masks = self._to_original(torch.stack([s.mask for s in segments]) if segments else
                                  torch.zeros((0, *logits.shape[-2:]), dtype=torch.bool), frame)
        keep = [i for i in range(len(segments)) if masks[i].any()]
        segments = [segments[i] for i in keep]
        found = {s.label for s in segments}
        return SegmentationResult(
            mode, ", ".join(names), masks[keep], [names[s.label] for s in segments],
            np.array([s.score for s in segments], dtype=np.float32), np.arange(1, len(segments) + 1), answer=answer,
            absent=[n for k, n in enumerate(names) if k not in found], notices=frame.notices, frame_index=frame_index)

    @staticmethod
    def _class_segments(logits: torch.Tensor, probs: torch.Tensor, names: list[str], mode: str, stuff: set[str],
                        threshold: float) -> list[post.Segment]:
        if mode == "semantic":
            label_map = post.semantic_inference(logits, probs, threshold)
            quality = post.mask_quality(logits)
            return [post.Segment(-1, k, float((probs[:, k] * quality).max()), label_map == k)
                    for k in range(len(names)) if (label_map == k).any()]
        if mode == "instance":
            return post.instance_inference(logits, probs, threshold)
        return post.panoptic_inference(logits, probs, [n in stuff for n in names], threshold)

    # ------------------------------------------------------------------ referring / reasoning
    @torch.inference_mode()
    def refer(self, image, expression: str, threshold: float = 0.5) -> SegmentationResult:
        """Referring expression -> one mask (an expression about several objects covers them all), or no match."""
        return self._referring(image, expression, "referring", threshold, explain=False)

    @torch.inference_mode()
    def reason(self, image, question: str, explain: bool = False, threshold: float = 0.5) -> SegmentationResult:
        """Reasoning question -> mask, and with ``explain=True`` the LLM's answer text continuing its answer."""
        return self._referring(image, question, "reasoning", threshold, explain=explain)

    def _referring(self, image, text: str, task: str, threshold: float, explain: bool) -> SegmentationResult:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        text = self.processor.check_text(text, "expression" if task == "referring" else "question")
        frame = self._frame(image)
        features = self._encode([frame])
        conversation = P.referring_prompt(task, self.wording)
        out = self._run(features, [self.processor.encode(conversation, expression=text)])
        answer = None
        if explain:
            explained = P.referring_prompt("reasoning_explain", self.wording)
            answer = self._generate(features, explained, with_answer=True, expression=text)
        return self._referring_result(out, 0, frame, text, task, threshold, answer)[0]

    def _referring_result(self, out, row: int, frame: _Frame, text: str, task: str, threshold: float,
                          answer: str | None = None, frame_index: int | None = None,
                          previous: torch.Tensor | None = None) -> tuple[SegmentationResult, torch.Tensor | None]:
        """The result, and its mask at the working resolution (None when nothing answers), which a video's next
        frame continues; ``previous``: in a video, that mask from the frame before, if any."""
        logits = self._working_logits(out.pred_masks[row], frame.prepared)
        probs = out.prompt_logits[row, :, :1].float().sigmoid()
        best, score = post.referring_choice(logits, probs, previous, self.tracking_overlap_weight)
        mask = logits[best:best + 1] > 0
        if score < threshold or not mask.any():
            return SegmentationResult.empty(task, text, frame.pixels.shape[:2], answer=answer, notices=frame.notices,
                                            frame_index=frame_index), None
        return SegmentationResult(task, text, self._to_original(logits[best:best + 1], frame), [text],
                                  np.array([score], dtype=np.float32), np.array([1]), answer=answer,
                                  notices=frame.notices, frame_index=frame_index), mask[0]

    # ------------------------------------------------------------------ visual prompts
    def _rendered_regions(self, regions: Sequence[Region], frame: _Frame) -> list[np.ndarray]:
        """Every region as the paper renders it (discs for clicks and scribbles), (H, W) bool at the image's size."""
        size = frame.pixels.shape[:2]
        config = self.model.config
        point_r = scaled_radius(config.point_radius, size, config.region_reference_size)
        scribble_r = scaled_radius(config.scribble_radius, size, config.region_reference_size)
        rendered = []
        for region in regions:
            region.validate(size)
            if region.points is not None:
                points = np.asarray(region.points, dtype=np.float64).reshape(-1, 2)
                labels = np.ones(len(points)) if region.point_labels is None else np.asarray(region.point_labels)
                rendered.append(disc_mask(size, points[labels == 1], point_r))
            elif region.box is not None:
                rendered.append(box_mask(size, region.box))
            elif region.scribble is not None:
                rendered.append(scribble_mask(size, region.scribble, scribble_r))
            else:
                rendered.append(np.asarray(region.mask).astype(bool))
        return rendered

    def _region_masks(self, regions: Sequence[Region], frame: _Frame) -> torch.Tensor:
        """The rendered regions on the model's input frame."""
        return torch.stack([self.processor.resize_region_mask(torch.from_numpy(mask), frame.prepared)
                            for mask in self._rendered_regions(regions, frame)])

    @torch.inference_mode()
    def interactive(self, image, regions: Sequence[Region] | Region) -> SegmentationResult:
        """Points (positive / negative), boxes, scribbles or masks -> one mask per region."""
        regions = [regions] if isinstance(regions, Region) else list(regions)
        if not regions:
            raise ValueError("give at least one region (a click, a box, a scribble or a mask)")
        frame = self._frame(image)
        masks = self._region_masks(regions, frame).to(self.device)
        features = self._encode([frame])
        out = self._run(features, [self.processor.encode(P.region_prompt(len(regions), self.wording),
                                                         num_regions=len(regions))], region_masks=[masks])
        return self._region_result(out, 0, frame, regions)[0]

    def _region_result(self, out, row: int, frame: _Frame, regions: Sequence[Region],
                       frame_index: int | None = None, task: str = "interactive",
                       previous: Sequence[torch.Tensor | None] | None = None
                       ) -> tuple[SegmentationResult, list[torch.Tensor]]:
        """The result, and each region's mask at the working resolution, which a video's next frame continues.

        ``previous``: when tracking, those masks from the frame before; ``tracking_overlap_weight`` turns them
        into a preference for the candidate that continues each. Without them, a box or mask prompt is itself
        such a mask (it says where the object is and how large), weighted by ``prompt_overlap_weight``."""
        logits = self._working_logits(out.pred_masks[row], frame.prepared)
        probs = out.prompt_logits[row, :, :len(regions)].float().sigmoid()
        if previous is None:  # only boxes and masks have an extent; clicks and scribbles are not rendered again
            extents = [self._working_mask(self._rendered_regions([region], frame)[0], frame)
                       if region.box is not None or region.mask is not None else None for region in regions]
        chosen, scores = [], []
        for r, region in enumerate(regions):
            positives = np.zeros((0, 2))
            if region.points is not None:
                points = np.asarray(region.points, dtype=np.float64).reshape(-1, 2)
                labels = np.ones(len(points)) if region.point_labels is None else np.asarray(region.point_labels)
                positives = self._to_working_points(points[labels == 1], frame)
            negatives = self._to_working_points(region.negative_points, frame)
            if previous is not None:
                prior, weight = previous[r], self.tracking_overlap_weight
            else:
                prior, weight = extents[r], self.prompt_overlap_weight
            best, score = post.region_choice(logits, probs, r, negatives, positives, prior, weight)
            chosen.append(best)
            scores.append(score)
        masks = self._to_original(logits[chosen], frame)
        labels = [f"region {r + 1}" for r in range(len(regions))]
        return SegmentationResult(task, f"{len(regions)} visual prompt(s)", masks, labels,
                                  np.array(scores, dtype=np.float32), np.arange(1, len(regions) + 1),
                                  notices=frame.notices, frame_index=frame_index), list(logits[chosen] > 0)


