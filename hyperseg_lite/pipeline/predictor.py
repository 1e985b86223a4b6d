"""``HyperSegPredictor``: encode an image once, then ask it any number of prompts (in the spirit of SAM's
``SamPredictor``).

HyperSeg splits into a costly image side (pyramid backbone, pixel decoder, perceiver, global vision tower) and a
cheaper prompt side (one LLM pass and the mask decoder). The predictor keeps them apart: :meth:`encode` (or
:meth:`set_image`) runs the image side once and returns an :class:`EncodedImage`; :meth:`predict` runs the prompt
side on it for a referring expression, a reasoning question, a class list or visual prompts and returns every
mask token's answer as :class:`Candidates`. Choosing among the candidates (thresholds, panoptic merging, track
continuity) is the pipeline's post-processing, not the predictor's.

    predictor = HyperSegPredictor(HyperSegPipeline.from_pretrained())
    predictor.set_image("photo.jpg")
    first = predictor.predict(expression="the red star")
    second = predictor.predict(regions=[Region(points=[[120, 80]])])  # no second encoding
    masks = predictor.to_original(first.mask_logits[:1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import prompts as P
from ..loading import LoadedModel
from ..modeling.modeling_hyperseg import ImageFeatures
from ..modeling.plurality_scores import PLURALITY_GROUP, PluralityHead
from ..modeling.prefix_cache import PrefixCache, PrefixReuse
from ..modeling.prompt_layout import PromptLayout
from ..modeling.temporal_adapter import TemporalState
from ..processing_hyperseg import PreparedImage
from .inputs import MAX_IMAGE_PIXELS, Region, check_samples, load_image

WORKING_SIZE = 512  # post-processing resolution cap (longest side); final masks are resized to the original
DEFAULT_CHUNK_SIZE = 20  # class names per prompt; longer lists are split into several prompts over one encoding
DEFAULT_MAX_NEW_TOKENS = 128  # the lite tokenizer spends one token per byte; the world's explanations run to ~80


@dataclass
class EncodedImage:
    """One image made ready for the model and encoded once: ask it as many prompts as you like.

    ``pixels`` is the image as loaded (RGB uint8, at most ``max_pixels``), ``prepared`` the model's input
    tensors, ``notices`` what loading did to the image (shown to users), ``features`` the image side of the
    model (None only before encoding). In a video, ``features`` also depend on the temporal state the frame
    was encoded with. Masks come back at the *working* resolution (the image content, longest side at most
    ``WORKING_SIZE``); :meth:`to_original` maps them to ``pixels``' size. ``prefix_cache`` is the LLM's state on
    the last prompt asked about the image: the next prompt reuses what it shares with it (the opening, the image
    tokens, often the instruction; :mod:`hyperseg_lite.modeling.prefix_cache`); it belongs to ``features``.
    """

    pixels: np.ndarray
    prepared: PreparedImage
    notices: list[str] = field(default_factory=list)
    features: ImageFeatures | None = None
    prefix_cache: PrefixCache | None = field(default=None, repr=False, compare=False)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of ``pixels``: the size results are returned at."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])

    @property
    def working_size(self) -> tuple[int, int]:
        h, w = self.prepared.resized_size
        scale = min(1.0, WORKING_SIZE / max(h, w))
        return max(1, round(h * scale)), max(1, round(w * scale))

    def working_logits(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """(Q, S/4, S/4) decoder logits on the padded square -> (Q, h, w) on the image content at the working size."""
        size = self.prepared.pixel_values.shape[-1]
        h, w = self.prepared.resized_size
        stride = size / mask_logits.shape[-1]
        crop = mask_logits[:, : int(np.ceil(h / stride)), : int(np.ceil(w / stride))].float()
        return F.interpolate(crop[None], size=self.working_size, mode="bilinear", align_corners=False)[0]

    def to_original(self, masks: torch.Tensor) -> np.ndarray:
        """(N, h, w) bool masks or logits at the working size -> (N, H, W) bool at the image's size."""
        height, width = self.size
        if masks.shape[0] == 0:
            return np.zeros((0, height, width), dtype=bool)
        values = masks.float() if masks.dtype != torch.bool else masks.float() - 0.5
        return (
            (F.interpolate(values[None], size=(height, width), mode="bilinear", align_corners=False)[0] > 0)
            .cpu()
            .numpy()
        )

    def working_mask(self, mask: np.ndarray) -> torch.Tensor:
        """(H, W) bool at the image's size -> (h, w) bool at the working size (the inverse of :meth:`to_original`)."""
        values = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None] - 0.5
        return F.interpolate(values, size=self.working_size, mode="bilinear", align_corners=False)[0, 0] > 0

    def working_guide(self) -> torch.Tensor:
        """The image at the working size, (3, h, w) float in [0, 1]: what edge refinement follows."""
        pixels = torch.from_numpy(np.ascontiguousarray(self.pixels)).permute(2, 0, 1)[None].float() / 255
        if tuple(pixels.shape[-2:]) != self.working_size:
            pixels = F.interpolate(pixels, size=self.working_size, mode="bilinear", align_corners=False, antialias=True)
        return pixels[0]

    def working_points(self, points: np.ndarray) -> np.ndarray:
        """(n, 2) (x, y) pixels of the image -> the same points at the working size."""
        height, width = self.size
        wh, ww = self.working_size
        return points * np.array([ww / width, wh / height]) if len(points) else points


@dataclass
class Candidates:
    """Every mask token's answer to the prompts of one :meth:`HyperSegPredictor.predict` call.

    ``mask_logits`` (C, h, w) at the image's working size (one per mask token and prompt row: a long class list
    split into several prompts gives ``rows x queries`` candidates); ``scores`` (C, K) the sigmoid of each
    candidate's score against each prompt column (class names, the expression, or each region); ``prompts``
    names the K columns; ``embeddings`` (C, D) instance embeddings (video instances match tracks on them);
    ``temporal_state`` what the next video frame continues (None when not asked in video mode); ``attributes``
    what the attribute mask heads read from each candidate's own mask, per group that is on ("colour",
    "category"): (C, values) probabilities (empty for a model without them); ``several`` the probability that
    the expression names several objects (None without the plurality head, or for other prompts).
    """

    mask_logits: torch.Tensor
    scores: torch.Tensor
    embeddings: torch.Tensor
    prompts: list[str]
    image: EncodedImage
    temporal_state: TemporalState | None = None
    attributes: dict[str, torch.Tensor] = field(default_factory=dict)
    several: float | None = None

    def __len__(self) -> int:
        return int(self.mask_logits.shape[0])

    def to_original(self, masks: torch.Tensor | None = None) -> np.ndarray:
        """Candidate masks (all of them by default) at the original image size, (N, H, W) bool."""
        return self.image.to_original(self.mask_logits if masks is None else masks)


def several_objects(out) -> float | None:
    """p(the expression names several objects) from the model's plurality head, None where it has none."""
    logits = (out.refer_attribute_logits or {}).get(PLURALITY_GROUP)
    return None if logits is None else float(PluralityHead.several_probability(logits)[0, 0])


class HyperSegPredictor:
    """Encode once, prompt many times. Works on a :class:`~hyperseg_lite.loading.LoadedModel` or takes the model
    and settings of a :class:`~hyperseg_lite.pipeline.HyperSegPipeline`.

    Stateful use (SAM-like, one user): :meth:`set_image`, then :meth:`predict` and :meth:`to_original` read the
    set image; :meth:`reset_image` forgets it. Stateless use (what the pipeline does, so one predictor serves
    many users): pass ``image=`` an :class:`EncodedImage` from :meth:`encode` to every call.
    """

    def __init__(
        self,
        model,
        wording: P.Wording | None = None,
        chunk_size: int | None = None,
        max_pixels: int | None = None,
        max_new_tokens: int | None = None,
        reuse_prefix: bool = True,
    ) -> None:
        source = getattr(model, "predictor", None)  # a HyperSegPipeline: its model and its settings
        if source is not None:
            loaded = source.loaded
            wording = wording or source.wording
            chunk_size = chunk_size or source.chunk_size
            max_pixels = max_pixels or source.max_pixels
            max_new_tokens = max_new_tokens or source.max_new_tokens
        elif isinstance(model, LoadedModel):
            loaded = model
        else:
            raise ValueError("give a LoadedModel (hyperseg_lite.load_model) or a HyperSegPipeline")
        chunk_size = chunk_size or DEFAULT_CHUNK_SIZE
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.loaded = loaded
        self.model = loaded.model
        self.processor = loaded.processor
        self.tokenizer = loaded.tokenizer
        self.wording = wording or "official"
        self.chunk_size = chunk_size
        self.max_pixels = max_pixels or MAX_IMAGE_PIXELS
        self.max_new_tokens = max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        self.reuse_prefix = reuse_prefix
        self.image: EncodedImage | None = None

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    # ------------------------------------------------------------------ the image side
    def load(self, image) -> EncodedImage:
        """Load and prepare ``image`` (path, PIL, array...) without encoding it (``features`` stays None)."""
        if isinstance(image, EncodedImage):
            return image
        loaded = load_image(image, self.max_pixels)
        prepared = self.processor.prepare_image(torch.from_numpy(loaded.pixels))
        return EncodedImage(loaded.pixels, prepared, loaded.notices)

    @torch.inference_mode()
    def encode(self, image, state: TemporalState | None = None) -> EncodedImage:
        """Run the image side of the model once. An :class:`EncodedImage` already encoded is returned as it is
        (unless a video ``state`` asks for encoding it again with that state's latents)."""
        image = self.load(image)
        if image.features is not None and state is None:
            return image
        prepared = image.prepared
        features = self.model.encode_images(
            prepared.pixel_values[None].to(self.device),
            prepared.global_pixel_values[None].to(self.device),
            temporal_state=state,
        )
        return EncodedImage(image.pixels, prepared, image.notices, features)

    def set_image(self, image) -> EncodedImage:
        """Encode ``image`` and keep it: later calls without ``image=`` ask about it."""
        self.image = self.encode(image)
        return self.image

    def reset_image(self) -> None:
        self.image = None

    def _image(self, image: EncodedImage | None) -> EncodedImage:
        image = image if image is not None else self.image
        if image is None:
            raise ValueError("no image: call set_image(image) first, or pass image=predictor.encode(image)")
        return image if image.features is not None else self.encode(image)

    def to_original(self, masks: torch.Tensor, image: EncodedImage | None = None) -> np.ndarray:
        """(N, h, w) masks or logits at the working size -> (N, H, W) bool at the size of the image."""
        image = image if image is not None else self.image
        if image is None:
            raise ValueError("no image: call set_image(image) first, or pass image=")
        return image.to_original(masks)

    # ------------------------------------------------------------------ visual prompts
    def draw_region(self, region: Region, image: EncodedImage) -> np.ndarray:
        """One visual prompt as the paper renders it (discs for clicks and scribbles), (H, W) bool at the image's
        size; validated against the image first."""
        region.validate(image.size)
        return self.processor.draw_region(image.size, **region.spec())

    def region_masks(self, regions: Sequence[Region], image: EncodedImage) -> torch.Tensor:
        """The regions on the model's input frame, (R, S, S) bool on the model's device."""
        return torch.stack(
            [self.processor.region_to_frame(self.draw_region(region, image), image.prepared) for region in regions]
        ).to(self.device)

    @torch.inference_mode()
    def pool_regions(
        self, regions: Sequence[Region], image: EncodedImage | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Region embeddings pooled on ``image`` ((1, R, H) features and (1, R) validity): video prompts are pooled
        on the frame they were drawn on and reused on later frames (``predict(region_features=...)``)."""
        image = self._image(image)
        return self.model.pool_region_prompts(image.features, [self.region_masks(regions, image)])

    # ------------------------------------------------------------------ the prompt side
    @torch.inference_mode()
    def predict(
        self,
        expression: str | None = None,
        question: str | None = None,
        class_names: Sequence[str] | None = None,
        regions: Sequence[Region] | Region | None = None,
        mode: str = "panoptic",
        image: EncodedImage | None = None,
        region_features=None,
        state: TemporalState | None = None,
        video: bool = False,
        chunk_size: int | None = None,
    ) -> Candidates:
        """One prompt family on an encoded image -> :class:`Candidates` (every mask token, unfiltered).

        Give exactly one of ``expression`` (referring), ``question`` (reasoning), ``class_names`` (with
        ``mode``: semantic / instance / panoptic; split into prompts of ``chunk_size`` names over one encoding),
        ``regions`` (clicks, boxes, scribbles, masks) or ``region_features`` (:meth:`pool_regions` on another
        frame). In a video pass ``video=True`` and the ``state`` the frame was encoded with; the candidates then
        carry the next one. Texts and class names are used as given: the pipeline validates user input.
        """
        image = self._image(image)
        regions = [regions] if isinstance(regions, Region) else regions
        given = [
            k
            for k, v in (
                ("expression", expression),
                ("question", question),
                ("class_names", class_names),
                ("regions", regions if regions is not None else region_features),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of expression, question, class_names, regions")
        features = image.features
        region_masks = None
        if class_names is not None:
            names = list(class_names)
            size = chunk_size or self.chunk_size
            chunks = [names[i : i + size] for i in range(0, len(names), size)]
            encoded = [
                self.processor.encode(P.class_prompt(len(c), mode, self.wording, video=video), class_names=c)
                for c in chunks
            ]
            features = features.select([0] * len(chunks))
            columns = [(row * size, len(chunk)) for row, chunk in enumerate(chunks)]
            prompts = names
        elif regions is not None or region_features is not None:
            count = len(regions) if regions is not None else int(region_features[0].shape[1])
            if count == 0:
                raise ValueError("give at least one region (a click, a box, a scribble or a mask)")
            if regions is not None and region_features is None:
                region_masks = [self.region_masks(regions, image)]
            encoded = [self.processor.encode(P.region_prompt(count, self.wording, video=video), num_regions=count)]
            columns = [(0, count)]
            prompts = [f"region {r + 1}" for r in range(count)]
        else:
            text = expression if expression is not None else question
            if expression is not None:
                conversation = P.referring_prompt("referring", self.wording)
            elif video:
                conversation = P.video_reasoning_prompt(self.wording)
            else:
                conversation = P.referring_prompt("reasoning", self.wording)
            encoded = [self.processor.encode(conversation, expression=text)]
            columns = [(0, 1)]
            prompts = [text]
        prefix_owner = None if video else image  # a video frame is prompted once: nothing to keep
        out = self._segment(features, encoded, region_masks, state if video else None, region_features, prefix_owner)
        logits, scores, embeddings = [], [], []
        for row, (offset, width) in enumerate(columns):
            probs = torch.zeros(out.pred_masks.shape[1], len(prompts), device=out.pred_masks.device)
            probs[:, offset : offset + width] = out.prompt_logits[row, :, :width].float().sigmoid()
            scores.append(probs)
            logits.append(image.working_logits(out.pred_masks[row]))
            embeddings.append(out.instance_embeddings[row].float())
        attributes = {
            group: values[: len(columns)].flatten(0, 1).float().softmax(-1)
            for group, values in (out.attribute_logits or {}).items()
        }
        return Candidates(
            torch.cat(logits),
            torch.cat(scores),
            torch.cat(embeddings),
            prompts,
            image,
            out.temporal_state if video else None,
            attributes,
            several_objects(out),
        )

    def _segment(self, features: ImageFeatures, encoded: list, region_masks, state, region_features, prefix_owner=None):
        """The prompts on the model's device, their layout read from the CPU copy (so the model never reads the
        ids back from the device; pageable copies with ``non_blocking`` do not wait for the GPU), one LLM pass and
        the decoder's last layer. ``prefix_owner``: the :class:`EncodedImage` whose LLM cache the pass reads
        and refreshes (:meth:`_prefix_reuse`)."""
        batch = self.processor.collate(encoded)
        layout = PromptLayout.of(batch["input_ids"], batch["class_spans"], batch["refer_mask"])
        prefix_reuse = self._prefix_reuse(prefix_owner, batch) if prefix_owner is not None else None
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        out, _ = self.model.segment(
            features,
            batch["input_ids"],
            batch["attention_mask"],
            class_spans=batch["class_spans"],
            refer_mask=batch["refer_mask"],
            region_masks=region_masks,
            temporal_state=state,
            region_features=region_features,
            layout=layout,
            aux_scores=False,
            prefix_reuse=prefix_reuse,
        )
        return out

    def _prefix_reuse(self, image: EncodedImage, batch: dict[str, torch.Tensor]) -> PrefixReuse | None:
        """What this batch of CPU prompt tensors takes from the image's LLM cache (a new cache when it has none for
        its current features) and gives back to it; None when disabled."""
        if not self.reuse_prefix:
            return None
        features = image.features
        cache = image.prefix_cache
        if cache is None or not cache.belongs_to(features.global_tokens, features.fvp_tokens):
            cache = image.prefix_cache = PrefixCache(features.global_tokens, features.fvp_tokens)
        return cache.plan(batch["input_ids"], batch["attention_mask"])

    # ------------------------------------------------------------------ text
    @torch.inference_mode()
    def describe(self, image: EncodedImage | None = None) -> str:
        """The LLM's own list of what it sees (LLMFormer-style open naming), as text."""
        return self.generate(P.describe_prompt(self.wording), image=image)

    @torch.inference_mode()
    def describe_sampled(self, samples: int, image: EncodedImage | None = None, seed: int = 0) -> list[str]:
        """``samples`` lists of what the LLM sees, sampled (temperature 1) rather than greedy, as texts: names for
        the pipeline to confirm that the greedy list leaves out (not in LLMFormer). ``seed`` fixes the draw, so
        an image gets the same lists every time; torch's own random state is left as it was."""
        return self.generate_texts(P.describe_prompt(self.wording), image=image, samples=samples, seed=seed)

    @torch.inference_mode()
    def explain(
        self, question: str, image: EncodedImage | None = None, opening: str = "", avoid_words: Sequence[str] = ()
    ) -> str:
        """The LLM's explanation of a reasoning answer, continuing after its mask token; with ``opening`` (the
        answer's first words, e.g. the object the chosen mask shows) the LLM goes on from those words, and the
        explanation starts with them; ``avoid_words`` are kept out of what it adds (as whole words after a space)."""
        conversation = P.referring_prompt("reasoning_explain", self.wording, explanation=opening)
        banned = self.word_sequences(avoid_words) or None
        continuation = self.generate_texts(
            conversation, image=image, with_answer=True, expression=question, bad_words_ids=banned
        )[0]
        if not opening:
            return continuation
        return opening + ("" if continuation[:1] in (",", ".", "") else " ") + continuation

    def word_sequences(self, words: Sequence[str]) -> list[list[int]]:
        """The token sequences that spell each word after a space: as the tokenizer would write it, and as a space
        token followed by the word's own tokens (the way round a ban that a byte-fallback tokenizer leaves)."""
        encode = self.tokenizer.encode
        space = encode(" ", add_special_tokens=False)
        spelled = {tuple(encode(" " + w, add_special_tokens=False)) for w in words}
        spelled |= {tuple(space + encode(w, add_special_tokens=False)) for w in words}
        return sorted(list(s) for s in spelled)

    @torch.inference_mode()
    def generate(
        self,
        conversation: P.Conversation,
        image: EncodedImage | None = None,
        with_answer: bool = False,
        expression: str | None = None,
    ) -> str:
        """Greedy text answer to ``conversation`` about the image (at most ``max_new_tokens``)."""
        return self.generate_texts(conversation, image, with_answer, expression)[0]

    @torch.inference_mode()
    def generate_texts(
        self,
        conversation: P.Conversation,
        image: EncodedImage | None = None,
        with_answer: bool = False,
        expression: str | None = None,
        samples: int = 0,
        seed: int = 0,
        bad_words_ids: list[list[int]] | None = None,
    ) -> list[str]:
        """Text answers to ``conversation``: the greedy one (``samples`` 0), or ``samples`` answers sampled with
        ``seed`` (the caller's random state kept); ``bad_words_ids``: token sequences never generated."""
        samples = check_samples(samples)
        image = self._image(image)
        encoded = self.processor.encode(conversation, expression=expression, with_answer=with_answer, close_turn=False)
        batch = {k: v.to(self.device) for k, v in self.processor.collate([encoded], padding_side="left").items()}
        with torch.random.fork_rng(enabled=samples > 0):  # every device's random state restored after the draw
            if samples:
                torch.manual_seed(seed)
            generated = self.model.generate_text(
                batch["input_ids"],
                batch["attention_mask"],
                image.features,
                max_new_tokens=self.max_new_tokens,
                eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=self.tokenizer.pad_token_id,
                vocabulary_size=len(self.tokenizer),
                samples=samples,
                bad_words_ids=bad_words_ids,
            )
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in generated]
