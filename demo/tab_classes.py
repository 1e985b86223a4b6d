"""Tab 1: open-vocabulary semantic / instance / panoptic segmentation from a class list."""

from __future__ import annotations

import re

import gradio as gr

from hyperseg_lite.data.vocabulary import STUFF_NAMES
from hyperseg_lite.pipeline import load_image

from .common import (
    annotated,
    clean_text,
    downloads,
    how_it_works,
    notice_lines,
    user_errors,
    with_notices,
)
from .components import ChoiceInput, ImageInput, NumberInput, TextInput
from .context import AppContext

# amorphous classes merged into one segment each in panoptic mode: the world's, and common COCO-stuff names
STUFF_CLASSES = set(STUFF_NAMES) | {"road", "floor", "ceiling", "snow", "sea", "river", "mountain", "dirt", "pavement"}
MODES = ["panoptic", "semantic", "instance"]
# words of a chat reply, not of a class name ("Sure, the segmentation result is ...")
REPLY_WORDS = {"sure", "yes", "no", "ok", "okay", "here", "it", "is", "are", "the", "result", "segmentation", "answer"}
CLASS_NAME = re.compile(r"^[a-z][a-z\- ]{0,38}$")


def plausible_class_names(names: list[str]) -> list[str]:
    """The model's own list without the chat around it: 1-3 words of letters that are not reply words."""
    kept = []
    for name in names:
        name = clean_text(name).lower().strip(" .")
        words = name.split()
        if CLASS_NAME.match(name) and 1 <= len(words) <= 3 and not set(words) <= REPLY_WORDS and name not in kept:
            kept.append(name)
    return kept


def segment_classes(ctx: AppContext, image, classes: str, mode: str, threshold: float):
    """Returns (annotated image, found / absent text, download files)."""
    if image is None:
        raise gr.Error("upload an image first")
    loaded = load_image(image, ctx.pipe.max_pixels)
    lines, pixels = [], loaded.pixels
    names = [n for n in (classes or "").split(",") if n.strip()]
    if not names:
        # the names of the LLM's best lists that segmentation confirms (pipe.describe); when it confirms none, its
        # greedy list, which the segmentation below then reports as absent
        pixels = ctx.pipe.encode(pixels)  # encoded once for naming and segmenting
        names = plausible_class_names(ctx.pipe.describe(pixels))
        names = names or plausible_class_names(ctx.pipe.describe(pixels, confirm=False))
        if not names:
            raise gr.Error("the model named no class it knows in this image: type the class names to look for")
        lines.append(f"**The model named:** {', '.join(names)}")
    listed = [clean_text(n).lower() for n in names]
    result = ctx.pipe.segment_classes(
        pixels, names, mode=mode, threshold=threshold, stuff=[n for n in listed if n in STUFF_CLASSES]
    )
    with_notices(result, loaded.notices)
    lines += [
        f"**Found:** {clean_text(', '.join(sorted(set(result.labels))), 300) or 'nothing'}",
        f"**Absent:** {clean_text(', '.join(result.absent), 300) or '-'}",
    ]
    lines += notice_lines(result.notices, ctx.caveat)
    return annotated(loaded.pixels, result), "  \n".join(lines), downloads(result)


def build(ctx: AppContext, examples: list[list]) -> None:
    pipe = ctx.pipe
    with gr.Tab("Open-vocabulary"):
        with gr.Row():
            with gr.Column():
                image = ImageInput(label="Image", elem_id="classes-image")
                classes = TextInput(
                    label="Class names (comma-separated; empty = let the model name what it sees)",
                    placeholder="circle, star, ring, sky, grass",
                    elem_id="classes-text",
                )
                mode = ChoiceInput(choices=MODES, value="panoptic", label="Mode")
                threshold = NumberInput(
                    minimum=0.0,
                    maximum=1.0,
                    value=pipe.class_threshold("panoptic"),
                    step=0.05,
                    label="Score threshold (set to the model's own for each mode)",
                )
                run = gr.Button("Segment", variant="primary", elem_id="classes-run")
            with gr.Column():
                output = gr.AnnotatedImage(label="Segments", elem_id="classes-output")
                summary = gr.Markdown(elem_id="classes-summary")
                files = gr.File(label="Downloads (label-map PNG, COCO RLE JSON)", file_count="multiple")
        # semantic evidence and segment scores have different scales: each mode starts at the model's own threshold
        mode.change(lambda m: pipe.class_threshold(m), mode, threshold, api_visibility="private")

        @ctx.gpu
        @user_errors
        def segment(
            image: str,
            classes: str | None = None,
            mode: str = "panoptic",
            threshold: float = pipe.class_threshold("panoptic"),
        ):
            """Segment every listed class (comma-separated; empty: the model names them) in `mode`."""
            return segment_classes(ctx, image, classes, mode, threshold)

        run.click(segment, [image, classes, mode, threshold], [output, summary, files], api_name="segment_classes")
        gr.Examples(
            examples,
            [image, classes, mode, threshold],
            [output, summary, files],
            fn=segment,
            cache_examples=ctx.cache_examples,
            cache_mode="lazy",
        )
        gr.Markdown(
            how_it_works(
                "Each class name becomes a span in the prompt; the LLM's hidden states over each span "
                "score every mask query (Hybrid Entity Recognition). Classes that score low everywhere "
                "are reported absent.",
                "03_llm_and_entity_recognition.ipynb",
            )
        )
