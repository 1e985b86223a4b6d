"""Tab 3: reasoning segmentation with the model's answer; words naming the object take its colour."""

from __future__ import annotations

import re

import gradio as gr

from hyperseg_lite.pipeline import HyperSegPipeline, load_image
from hyperseg_lite.pipeline.overlay import colour_for

from .common import annotated, downloads, how_it_works, user_errors

STOPWORDS = {"the", "a", "an", "is", "it", "of", "and", "because", "that", "this", "which", "what", "to", "in", "on"}


def highlight(answer: str, question: str, result) -> list[tuple[str, str | None]]:
    """Split the answer into words; words also in the question (the object's name) get the mask's label."""
    if not answer:
        return []
    label = None if result.no_match else "segmented object"
    keywords = {w for w in re.findall(r"[a-z]+", question.lower()) if w not in STOPWORDS}
    pieces = re.findall(r"\w+|\W+", answer)
    return [(p, label if label and p.lower() in keywords else None) for p in pieces]


def reason(pipe: HyperSegPipeline, image, question: str, explain: bool, threshold: float):
    if image is None:
        raise gr.Error("upload an image first")
    pixels = load_image(image).pixels
    result = pipe.reason(pixels, question, explain=explain, threshold=threshold)
    status = "**No match.**" if result.no_match else f"**Mask** (score {result.scores[0]:.2f})"
    if explain and not result.answer:
        status += "  \nThe model ended its answer without an explanation."
    return annotated(pixels, result), status, highlight(result.answer or "", question, result), downloads(result)


def build(pipe: HyperSegPipeline, examples: list[list]) -> None:
    with gr.Tab("Reasoning"):
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="numpy", label="Image", image_mode="RGB", elem_id="reason-image")
                question = gr.Textbox(label="Question", placeholder="which object has no corners?", elem_id="reason-text")
                explain = gr.Checkbox(value=True, label="Explain (generate the answer text)")
                threshold = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="No-match threshold")
                run = gr.Button("Ask", variant="primary", elem_id="reason-run")
            with gr.Column():
                output = gr.AnnotatedImage(label="Mask", elem_id="reason-output")
                status = gr.Markdown()
                answer = gr.HighlightedText(label="Answer", color_map={"segmented object": "#%02x%02x%02x" % colour_for(1)})
                files = gr.File(label="Downloads", file_count="multiple")
        handler = user_errors(lambda *a: reason(pipe, *a))
        run.click(handler, [image, question, explain, threshold], [output, status, answer, files], api_name="reason")
        gr.Examples(examples, [image, question, explain, threshold], [output, status, answer, files], fn=handler,
                    cache_examples=True, cache_mode="lazy")
        gr.Markdown(how_it_works("Same path as referring, with the reasoning instruction; the answer text is generated "
                                 "by the LLM after the mask tokens.", "03_llm_and_entity_recognition.ipynb"))
