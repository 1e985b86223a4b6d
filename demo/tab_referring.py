"""Tab 2: referring expression segmentation (generalized: several objects or none)."""

from __future__ import annotations

import gradio as gr

from hyperseg_lite.pipeline import load_image

from .common import (
    annotated,
    downloads,
    how_it_works,
    notice_lines,
    user_errors,
    with_notices,
)
from .components import ImageInput, NoMatchThreshold, TextInput
from .context import AppContext


def refer(ctx: AppContext, image, expression: str, threshold: float):
    if image is None:
        raise gr.Error("upload an image first")
    loaded = load_image(image, ctx.pipe.max_pixels)
    result = with_notices(ctx.pipe.refer(loaded.pixels, expression, threshold=threshold), loaded.notices)
    status = (
        "**No match:** nothing in the image fits this expression."
        if result.no_match
        else f"**Match** (score {result.scores[0]:.2f})"
    )
    lines = [status, *notice_lines(result.notices, ctx.caveat)]
    return annotated(loaded.pixels, result), "  \n".join(lines), downloads(result)


def build(ctx: AppContext, examples: list[list]) -> None:
    with gr.Tab("Referring"):
        with gr.Row():
            with gr.Column():
                image = ImageInput(label="Image", elem_id="refer-image")
                expression = TextInput(
                    label="Expression", placeholder="the small red star left of the blue ring", elem_id="refer-text"
                )
                threshold = NoMatchThreshold(ctx.pipe.referring_threshold())
                run = gr.Button("Segment", variant="primary", elem_id="refer-run")
            with gr.Column():
                output = gr.AnnotatedImage(label="Mask", elem_id="refer-output")
                status = gr.Markdown(elem_id="refer-status")
                files = gr.File(label="Downloads", file_count="multiple")

        @ctx.gpu
        @user_errors
        def segment(image: str, expression: str, threshold: float = ctx.pipe.referring_threshold()):
            """One mask covering everything the expression describes, or no match under `threshold`."""
            return refer(ctx, image, expression, threshold)

        run.click(segment, [image, expression, threshold], [output, status, files], api_name="refer")
        gr.Examples(
            examples,
            [image, expression, threshold],
            [output, status, files],
            fn=segment,
            cache_examples=ctx.cache_examples,
            cache_mode="lazy",
        )
        gr.Markdown(
            how_it_works(
                "The expression and a [SEG] token are read by the LLM; their mean hidden state scores "
                "each mask query. The best query answers unless its score is under the threshold.",
                "01_prompt_design.ipynb",
            )
        )
