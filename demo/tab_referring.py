"""Tab 2: referring expression segmentation (generalized: several objects or none)."""

from __future__ import annotations

import gradio as gr

from hyperseg_lite.pipeline import HyperSegPipeline, load_image

from .common import annotated, downloads, how_it_works, user_errors


def refer(pipe: HyperSegPipeline, image, expression: str, threshold: float):
    if image is None:
        raise gr.Error("upload an image first")
    pixels = load_image(image).pixels
    result = pipe.refer(pixels, expression, threshold=threshold)
    status = ("**No match:** nothing in the image fits this expression." if result.no_match
              else f"**Match** (score {result.scores[0]:.2f})")
    return annotated(pixels, result), "  \n".join([status] + [f"_{n}_" for n in result.notices]), downloads(result)


def build(pipe: HyperSegPipeline, examples: list[list]) -> None:
    with gr.Tab("Referring"):
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="numpy", label="Image", image_mode="RGB", elem_id="refer-image")
                expression = gr.Textbox(label="Expression", placeholder="the small red star left of the blue ring", elem_id="refer-text")
                threshold = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="No-match threshold")
                run = gr.Button("Segment", variant="primary", elem_id="refer-run")
            with gr.Column():
                output = gr.AnnotatedImage(label="Mask", elem_id="refer-output")
                status = gr.Markdown()
                files = gr.File(label="Downloads", file_count="multiple")
        handler = user_errors(lambda *a: refer(pipe, *a))
        run.click(handler, [image, expression, threshold], [output, status, files], api_name="refer")
        gr.Examples(examples, [image, expression, threshold], [output, status, files], fn=handler,
                    cache_examples=True, cache_mode="lazy")
        gr.Markdown(how_it_works("The expression and a [SEG] token are read by the LLM; their mean hidden state scores "
                                 "each mask query. The best query answers unless its score is under the threshold.",
                                 "01_prompt_design.ipynb"))
