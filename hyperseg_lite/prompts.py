"""Every prompt template HyperSeg uses, in one place.

Two wordings are available:

* ``"official"`` (default): the strings the released evaluation code builds
  (``hyperseg/eval/eval_dataset/eval_datasets.py`` for referring / reasoning / video reasoning; the class
  and region templates come from PSALM, which HyperSeg extends). The released checkpoint was trained on
  these, so they are what the converted 3B model expects.
* ``"paper"``: the task instructions printed in the paper (Sec. 3.2, the P_L column of its prompt table).

The conversation wrapper is Phi ``v0`` (``conv_phi_v0``: ``<system> USER: <prompt> ASSISTANT: <answer><|endoftext|>``),
which is what the released datasets actually render: ``eval_refcoco.py`` sets ``llava_phi`` on
``hyperseg.utils.conversation``, but ``eval_datasets.py`` reads ``default_conversation`` from
``hyperseg.model.mipha.conversation``, whose default is ``conv_phi_v0`` (checked by running the release's
``preprocess_llama2``; see docs/converter.md). The LLaMA-2 style ``llava_phi`` wrapper is kept as
``Conversation(style="llava_phi")``.

A template is a plain string with placeholders (:mod:`hyperseg_lite.constants`); the processor turns
placeholders into ids and the model turns those ids into embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .constants import CLS_TOKEN, GT_TOKEN, REFER_TOKEN, REGION_TOKEN, SEG_TOKEN

Wording = Literal["official", "paper"]
TaskFamily = Literal[
    "referring",
    "reasoning",
    "reasoning_explain",
    "video_reasoning",
    "panoptic",
    "semantic",
    "instance",
    "region",
    "describe",
]

SYSTEM_PROMPT = (  # conv_phi_v0
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
LLAVA_PHI_SYSTEM_PROMPT = (  # conv_llava_phi
    "You are a helpful language and vision assistant. "
    "You are able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language."
)
END_OF_TURN = "<|endoftext|>"

IMAGE_PREFIX = "This is an image <image>\n<temporal>\n, "
FRAME_PREFIX = "This is a frame <image>\n<temporal>\n, "

_OFFICIAL_INSTRUCTIONS = {
    "referring": "Please doing Referring Segmentation according to the following instruction:",
    "reasoning": "Please doing Reasoning Segmentation according to the following instruction:",
    "reasoning_explain": "Please doing Reasoning Segmentation according to the following instruction and explain why:",
    "video_reasoning": "Please doing Reasoning Segmentation according to the following instruction.",
    "panoptic": "Please do Panoptic Segmentation.",
    "semantic": "Please do Semantic Segmentation.",
    "instance": "Please do Instance Segmentation.",
    "region": "Please segment by given regions",
    "describe": "Please list the categories of all objects and regions you can see in the image.",
}

_PAPER_INSTRUCTIONS = {
    "referring": "Can you perform referring or reasoning segmentation according to the language expression?",
    "reasoning": "Can you perform referring or reasoning segmentation according to the language expression?",
    "reasoning_explain": "Can you perform referring or reasoning segmentation according to the language expression? "
    "Please explain why.",
    "video_reasoning": "Can you perform referring or reasoning segmentation according to the language expression?",
    "panoptic": "Please segment all the positive objects according to the following potential categories.",
    "semantic": "Please segment all the positive objects according to the following potential categories.",
    "instance": "Please segment all the positive objects according to the following potential categories.",
    "region": "Please segment according to the given visual region reference",
    "describe": "Please list the categories of all objects and regions you can see in the image.",
}

SEGMENTATION_ANSWER = "\nSure, the segmentation result is "


@dataclass(frozen=True)
class Conversation:
    """One user turn and the (teacher-forced or to-be-generated) assistant answer.

    ``render_prefix() + answer_text()`` is exactly the string the release tokenizes.
    """

    user: str
    answer: str
    style: Literal["phi_v0", "llava_phi", "compact"] = "phi_v0"

    def render_prefix(self) -> str:
        """The prompt up to where the assistant starts speaking."""
        if self.style == "llava_phi":
            return f"[INST] <<SYS>>\n{LLAVA_PHI_SYSTEM_PROMPT}\n<</SYS>>\n\n{self.user} [/INST] "
        if self.style == "compact":  # our switch for byte-level models: the same turn without the system prompt
            return f"USER: {self.user} ASSISTANT: "
        return f"{SYSTEM_PROMPT} USER: {self.user} ASSISTANT: "

    def answer_text(self, close_turn: bool = True) -> str:
        """The assistant's answer, with its end-of-turn token when ``close_turn``."""
        if not close_turn:
            return self.answer
        return f"{self.answer} {END_OF_TURN}" if self.style == "llava_phi" else f"{self.answer}{END_OF_TURN}"

    def render(self) -> str:
        return self.render_prefix() + (self.answer_text() if self.answer else "")


def instruction(task: TaskFamily, wording: Wording = "official") -> str:
    table = _OFFICIAL_INSTRUCTIONS if wording == "official" else _PAPER_INSTRUCTIONS
    return table[task]


def referring_prompt(
    task: Literal["referring", "reasoning", "reasoning_explain"] = "referring",
    wording: Wording = "official",
    explanation: str = "",
) -> Conversation:
    """Referring / reasoning: the expression itself goes in at ``<refer>`` (tokens + [SEG])."""
    user = IMAGE_PREFIX + instruction(task, wording) + "\n" + REFER_TOKEN
    answer = SEGMENTATION_ANSWER + GT_TOKEN + SEG_TOKEN
    if explanation:
        answer = answer + " " + explanation
    return Conversation(user, answer)


def video_reasoning_prompt(wording: Wording = "official") -> Conversation:
    user = FRAME_PREFIX + instruction("video_reasoning", wording) + f"\nThis is all the instruction: {REFER_TOKEN}\n"
    return Conversation(user, SEGMENTATION_ANSWER + GT_TOKEN + SEG_TOKEN)


def class_prompt(
    num_classes: int,
    task: Literal["panoptic", "semantic", "instance"] = "panoptic",
    wording: Wording = "official",
    video: bool = False,
) -> Conversation:
    """Class-list prompt; each ``<cls>`` is replaced by one class name's tokens."""
    if num_classes < 1:
        raise ValueError("a class prompt needs at least one class name")
    prefix = FRAME_PREFIX if video else IMAGE_PREFIX
    classes = ", ".join([CLS_TOKEN] * num_classes)
    user = prefix + instruction(task, wording) + f"\nThis is all the candidate categories: {classes}.\n"
    return Conversation(user, SEGMENTATION_ANSWER + SEG_TOKEN)


def region_prompt(num_regions: int, wording: Wording = "official", video: bool = False) -> Conversation:
    """Visual-prompt template; each ``<region>`` holds one pooled region embedding."""
    if num_regions < 1:
        raise ValueError("a region prompt needs at least one region")
    prefix = FRAME_PREFIX if video else IMAGE_PREFIX
    regions = ", ".join([REGION_TOKEN] * num_regions)
    user = prefix + instruction("region", wording) + f"\nThis is all regions: {regions}.\n"
    return Conversation(user, SEGMENTATION_ANSWER + SEG_TOKEN)


def describe_prompt(wording: Wording = "official", answer: str = "") -> Conversation:
    """Open-ended naming (LLMFormer-style): the LLM lists what it sees, as comma-separated class names."""
    return Conversation(IMAGE_PREFIX + instruction("describe", wording), answer)


def format_class_list(names: Sequence[str]) -> str:
    """How a list of names is written in a generated answer (parsed back by :func:`parse_class_list`)."""
    return ", ".join(names) + "."


# Pieces of the segmentation answer ("Sure", "the segmentation result is"): a model that was never taught to
# name what it sees (the embedded one) answers the describe prompt with them; they are not class names.
_ANSWER_FRAGMENTS = {part.strip().lower() for part in SEGMENTATION_ANSWER.replace(SEG_TOKEN, "").split(",")} - {""}


def parse_class_list(text: str) -> list[str]:
    """Parse the LLM's free-text answer to :func:`describe_prompt` into unique class names.

    Pieces of the fixed segmentation answer are dropped, so an answer that is only that template gives no name.
    """
    text = text.replace(END_OF_TURN, " ").strip().rstrip(".")
    names: list[str] = []
    for part in text.replace("\n", ",").split(","):
        name = part.strip().strip(".").strip()
        if name and name not in names and name.lower() not in _ANSWER_FRAGMENTS:
            names.append(name)
    return names
