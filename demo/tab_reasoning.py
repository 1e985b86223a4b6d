"""Tab 3: reasoning segmentation; the phrase of the answer that names the target takes its mask's colour."""

from __future__ import annotations

import gradio as gr

from hyperseg_lite.pipeline import load_image

from .answers import TARGET_COLOURS, highlighted_answer, target_key
from .common import (
    annotated,
    downloads,
    how_it_works,
    notice_lines,
    user_errors,
    with_notices,
)
from .components import FlagInput, ImageInput, NoMatchThreshold, TextInput
from .context import AppContext


def reason(ctx: AppContext, image, question: str, explain: bool, threshold: float):
    if image is None:
        raise gr.Error("upload an image first")
    loaded = load_image(image, ctx.pipe.max_pixels)
    result = with_notices(
        ctx.pipe.reason(loaded.pixels, question, explain=explain, threshold=threshold), loaded.notices
    )
    status = "**No match.**" if result.no_match else f"**Mask** (score {result.scores[0]:.2f})"
    if explain and not result.answer:
        status += "  \nThe model ended its answer without an explanation."
    lines = [status, *notice_lines(result.notices, ctx.caveat)]
    return (
        annotated(loaded.pixels, result, target_key),
        "  \n".join(lines),
        highlighted_answer(result.answer, question, result),
        downloads(result),
    )


def build(ctx: AppContext, examples: list[list]) -> None:
    with gr.Tab("Reasoning"):
        with gr.Row():
            with gr.Column():
                image = ImageInput(label="Image", elem_id="reason-image")
                question = TextInput(
                    label="Question", placeholder="which object has no corners?", elem_id="reason-text"
                )
                explain = FlagInput(value=True, label="Explain (generate the answer text)")
                threshold = NoMatchThreshold(ctx.pipe.referring_threshold(), elem_id="reason-threshold")
                run = gr.Button("Ask", variant="primary", elem_id="reason-run")
            with gr.Column():
                output = gr.AnnotatedImage(label="Mask", color_map=TARGET_COLOURS, elem_id="reason-output")
                status = gr.Markdown(elem_id="reason-status")
                answer = gr.HighlightedText(
                    label="Answer: the target's name in its mask's colour",
                    show_legend=False,
                    show_inline_category=True,
                    color_map=TARGET_COLOURS,
                    elem_id="reason-answer",
                )
                files = gr.File(label="Downloads", file_count="multiple")

        @ctx.gpu
        @user_errors
        def ask(image: str, question: str, explain: bool = True, threshold: float = ctx.pipe.referring_threshold()):
            """The mask answering `question` and, with `explain`, the model's answer text."""
            return reason(ctx, image, question, explain, threshold)

        run.click(ask, [image, question, explain, threshold], [output, status, answer, files], api_name="reason")
        gr.Examples(
            examples,
            [image, question, explain, threshold],
            [output, status, answer, files],
            fn=ask,
            cache_examples=ctx.cache_examples,
            cache_mode="lazy",
        )
        gr.Markdown(
            how_it_works(
                "Same path as referring, with the reasoning instruction; the answer text is generated "
                "by the LLM after the mask tokens. The phrase naming the target (the answer's "
                "opening noun phrase) is coloured like the mask.",
                "03_llm_and_entity_recognition.ipynb",
            )
        )
