"""Turn (conversation, expression / class names / regions, image) into the model's input tensors.

Text: the prompt string is split at its placeholders; ordinary text is tokenized, and each placeholder is
expanded *here*, to the exact number of positions the model will fill (``<image>`` -> one position per
global vision token, ``<temporal>`` -> one per FVP latent, ``<seg>`` -> one per mask query, ``<region>``
-> one). ``<cls>`` becomes the class name's tokens followed by ``[SEG]``, ``<refer>`` the expression's
tokens followed by ``[SEG]`` and ``<gt>`` the ``[SEG]`` token (as the official code does). Because the
expansion happens before batching, the model can replace all placeholders with one masked scatter
per kind instead of a Python loop over tokens.

Images: the pyramid branch gets the longest side resized to ``config.image_size``, normalized, then
padded bottom/right to a square; the global tower gets a
square resize (SigLIP). Both as the paper / official code (padding value 128 before normalisation, as the
release's ``FixedSizeCrop``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from .configuration_hyperseg import HyperSegConfig
from .constants import (
    CLS_TOKEN,
    GT_TOKEN,
    IGNORE_INDEX,
    IMAGE_TOKEN,
    IMAGE_TOKEN_INDEX,
    PLACEHOLDER_IDS,
    REFER_TOKEN,
    REGION_TOKEN,
    SEG_TOKEN,
    SEG_TOKEN_INDEX,
    TEMPORAL_TOKEN,
    TEMPORAL_TOKEN_INDEX,
)
from .prompts import Conversation
from .visual_prompts import box_mask, disc_mask, scaled_radius, scribble_mask

_PLACEHOLDER_PATTERN = re.compile("(" + "|".join(re.escape(p) for p in [*PLACEHOLDER_IDS, GT_TOKEN]) + ")")


@dataclass
class EncodedPrompt:
    """One sample's text side, placeholders already expanded (all tensors 1-D, same length)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    class_spans: torch.Tensor  # 0 outside class names, k+1 on the tokens of class k (+ its [SEG])
    refer_mask: torch.Tensor  # True on the expression tokens and their [SEG]
    num_classes: int = 0
    num_regions: int = 0

    def __len__(self) -> int:
        return int(self.input_ids.numel())


@dataclass
class PreparedImage:
    """Model-ready tensors for one image and what is needed to map masks back to it."""

    pixel_values: torch.Tensor  # (3, S, S) normalized, padded bottom/right
    global_pixel_values: torch.Tensor  # (3, G, G) normalized
    original_size: tuple[int, int]  # (H, W) of the input
    resized_size: tuple[int, int]  # (h, w) of the un-padded content inside pixel_values


class HyperSegProcessor:
    """Text and image preprocessing shared by the pipeline, training and the tests."""

    def __init__(self, tokenizer, config: HyperSegConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.seg_token_id = int(tokenizer.convert_tokens_to_ids("[SEG]"))
        if config.seg_token_id is not None and config.seg_token_id != self.seg_token_id:
            raise ValueError(f"tokenizer [SEG] id {self.seg_token_id} != config.seg_token_id {config.seg_token_id}")
        self.num_image_tokens = config.num_global_tokens
        self.num_latents = config.perceiver_config.num_latents
        self.num_queries = config.decoder_config.num_queries

    # ------------------------------------------------------------------ text
    def _tokens(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def check_text(self, text: str, what: str = "text") -> str:
        """Validate one user-provided string; returns it stripped. Raises ``ValueError`` a user can act on."""
        if not isinstance(text, str):
            raise ValueError(f"the {what} must be a string, got {type(text).__name__}")
        stripped = " ".join(text.split())
        if not stripped:
            raise ValueError(f"the {what} is empty: type a few words")
        limit = self.config.max_text_tokens
        if len(self._tokens(stripped)) > limit:
            raise ValueError(
                f"the {what} is too long: at most {limit} tokens (about {limit} characters "
                f"for the byte-level tokenizer); shorten it"
            )
        return stripped

    def encode(
        self,
        conversation: Conversation,
        expression: str | None = None,
        class_names: Sequence[str] | None = None,
        num_regions: int = 0,
        with_answer: bool = True,
        close_turn: bool = True,
    ) -> EncodedPrompt:
        """Tokenize one conversation.

        ``with_answer=False`` stops after ``[/INST] `` (generation from scratch); ``close_turn=False`` keeps the
        answer but not its end-of-turn token (generation that continues the answer, e.g. an explanation).
        """
        style = getattr(self.config, "conversation_style", "phi_v0")
        if conversation.style != style and conversation.style != "llava_phi":
            conversation = replace(conversation, style=style)  # a model speaks the template it learned
        prefix = conversation.render_prefix()
        answer = ""
        if with_answer and conversation.answer:
            answer = conversation.answer_text(close_turn)
        ids: list[int] = []
        labels: list[int] = []
        spans: list[int] = []
        refer: list[bool] = []
        counts = {CLS_TOKEN: 0, REGION_TOKEN: 0, REFER_TOKEN: 0}

        def push(
            new_ids: Sequence[int], is_answer: bool, span: int = 0, is_refer: bool = False, supervise: bool = True
        ) -> None:
            ids.extend(new_ids)
            labels.extend(new_ids if (is_answer and supervise) else [IGNORE_INDEX] * len(new_ids))
            spans.extend([span] * len(new_ids))
            refer.extend([is_refer] * len(new_ids))

        for part, is_answer in ((prefix, False), (answer, True)):
            for chunk in _PLACEHOLDER_PATTERN.split(part):
                if not chunk:
                    continue
                if chunk == IMAGE_TOKEN:
                    push([IMAGE_TOKEN_INDEX] * self.num_image_tokens, is_answer, supervise=False)
                elif chunk == TEMPORAL_TOKEN:
                    push([TEMPORAL_TOKEN_INDEX] * self.num_latents, is_answer, supervise=False)
                elif chunk == SEG_TOKEN:
                    push([SEG_TOKEN_INDEX] * self.num_queries, is_answer, supervise=False)
                elif chunk == REGION_TOKEN:
                    counts[REGION_TOKEN] += 1
                    push([PLACEHOLDER_IDS[REGION_TOKEN]], is_answer, supervise=False)
                elif chunk == CLS_TOKEN:
                    if class_names is None or counts[CLS_TOKEN] >= len(class_names):
                        raise ValueError("the prompt has more <cls> placeholders than class names")
                    name = class_names[counts[CLS_TOKEN]]
                    counts[CLS_TOKEN] += 1
                    push(self._tokens(name) + [self.seg_token_id], is_answer, span=counts[CLS_TOKEN])
                elif chunk == REFER_TOKEN:
                    if expression is None:
                        raise ValueError("the prompt has a <refer> placeholder but no expression was given")
                    counts[REFER_TOKEN] += 1
                    push(self._tokens(expression) + [self.seg_token_id], is_answer, is_refer=True)
                elif chunk == GT_TOKEN:
                    push([self.seg_token_id], is_answer)
                else:
                    push(self._tokens(chunk), is_answer)

        if class_names is not None and counts[CLS_TOKEN] != len(class_names):
            raise ValueError("the number of class names does not match the <cls> placeholders")
        if counts[REGION_TOKEN] != num_regions:
            raise ValueError("the number of regions does not match the <region> placeholders")
        return EncodedPrompt(
            input_ids=torch.tensor(ids, dtype=torch.long),
            labels=torch.tensor(labels, dtype=torch.long),
            class_spans=torch.tensor(spans, dtype=torch.long),
            refer_mask=torch.tensor(refer, dtype=torch.bool),
            num_classes=counts[CLS_TOKEN],
            num_regions=counts[REGION_TOKEN],
        )

    def collate(self, prompts: Sequence[EncodedPrompt], padding_side: str = "right") -> dict[str, torch.Tensor]:
        """Pad a list of prompts into a batch; ``left`` padding for generation, ``right`` otherwise."""
        if not prompts:
            raise ValueError("no prompts to batch")
        length = max(len(p) for p in prompts)
        pad_id = int(self.tokenizer.pad_token_id)
        batch = {
            "input_ids": torch.full((len(prompts), length), pad_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(prompts), length), dtype=torch.long),
            "labels": torch.full((len(prompts), length), IGNORE_INDEX, dtype=torch.long),
            "class_spans": torch.zeros((len(prompts), length), dtype=torch.long),
            "refer_mask": torch.zeros((len(prompts), length), dtype=torch.bool),
        }
        for row, prompt in enumerate(prompts):
            n = len(prompt)
            cols = slice(length - n, length) if padding_side == "left" else slice(0, n)
            batch["input_ids"][row, cols] = prompt.input_ids
            batch["attention_mask"][row, cols] = 1
            batch["labels"][row, cols] = prompt.labels
            batch["class_spans"][row, cols] = prompt.class_spans
            batch["refer_mask"][row, cols] = prompt.refer_mask
        return batch

    # ------------------------------------------------------------------ images
    def prepare_image(self, image: torch.Tensor) -> PreparedImage:
        """``image``: (H, W, 3) uint8 or float in 0-255. Returns normalized pyramid and global tensors."""
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {tuple(image.shape)}")
        height, width = int(image.shape[0]), int(image.shape[1])
        chw = image.permute(2, 0, 1).unsqueeze(0).float()
        size = self.config.image_size
        scale = size / max(height, width)
        new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
        resized = F.interpolate(chw, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(self.config.pixel_mean).view(1, 3, 1, 1)
        std = torch.tensor(self.config.pixel_std).view(1, 3, 1, 1)
        # the release pads with detectron2's FixedSizeCrop(pad_value=128) *before* normalisation
        padded = F.pad(resized, (0, size - new_w, 0, size - new_h), value=float(self.config.pixel_pad_value))
        pixel_values = ((padded - mean) / std)[0]

        global_size = self.config.vision_config.image_size
        global_img = F.interpolate(
            chw, size=(global_size, global_size), mode="bicubic", align_corners=False, antialias=True
        ).clamp(0, 255)
        g_mean = torch.tensor(self.config.global_image_mean).view(1, 3, 1, 1)
        g_std = torch.tensor(self.config.global_image_std).view(1, 3, 1, 1)
        global_pixel_values = ((global_img - g_mean) / g_std)[0]
        return PreparedImage(pixel_values, global_pixel_values, (height, width), (new_h, new_w))

    # ------------------------------------------------------------------ visual prompts (training and inference)
    def draw_region(
        self, image_size: tuple[int, int], points=None, point_labels=None, box=None, scribble=None, mask=None
    ) -> np.ndarray:
        """One visual prompt rendered as the paper does, (H, W) bool on the grid of the image it was drawn on:
        positive clicks as discs (``config.point_radius`` at ``config.region_reference_size`` px, scaled to the
        image), a scribble as a stroke of ``config.scribble_radius``, a box filled, a mask as it is. Give one
        kind; ``point_labels`` (1 positive, 0 negative; all positive when None) goes with ``points``."""
        config = self.config
        if points is not None:
            points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
            labels = np.ones(len(points)) if point_labels is None else np.asarray(point_labels)
            radius = scaled_radius(config.point_radius, image_size, config.region_reference_size)
            return disc_mask(image_size, points[labels == 1], radius)
        if box is not None:
            return box_mask(image_size, box)
        if scribble is not None:
            radius = scaled_radius(config.scribble_radius, image_size, config.region_reference_size)
            return scribble_mask(image_size, scribble, radius)
        if mask is None:
            raise ValueError("a region needs one of: points, box, scribble, mask")
        return np.asarray(mask).astype(bool)

    def region_to_frame(self, mask, prepared: PreparedImage) -> torch.Tensor:
        """A region drawn at the original resolution ((H, W) bool array or tensor) -> (S, S) bool on the padded
        model frame of ``prepared``, the one renderer of training and inference.

        Bilinear resizing reads the mask at the new pixels' centres, so a region thinner than a new pixel (a
        click's disc or a scribble on a large image) can fall between them; such a region keeps every new pixel
        it touches instead of vanishing."""
        mask = torch.as_tensor(np.ascontiguousarray(mask)) if not torch.is_tensor(mask) else mask
        new_h, new_w = prepared.resized_size
        source = mask[None, None].float()
        resized = F.interpolate(source, size=(new_h, new_w), mode="bilinear", align_corners=False)
        if not (resized > 0.5).any() and mask.any():
            resized = F.adaptive_max_pool2d(source, (new_h, new_w))
        size = self.config.image_size
        return F.pad(resized, (0, size - new_w, 0, size - new_h))[0, 0] > 0.5

    def region_mask(self, prepared: PreparedImage, **region) -> torch.Tensor:
        """:meth:`draw_region` at ``prepared``'s original size, then :meth:`region_to_frame`: (S, S) bool."""
        return self.region_to_frame(self.draw_region(prepared.original_size, **region), prepared)
