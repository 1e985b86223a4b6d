"""Tab 1: open-vocabulary semantic / instance / panoptic segmentation from a class list."""

from __future__ import annotations

import gradio as gr

from hyperseg_lite.data.vocabulary import STUFF_NAMES
from hyperseg_lite.pipeline import HyperSegPipeline, load_image

from .common import annotated, downloads, how_it_works, user_errors

# amorphous classes merged into one segment each in panoptic mode: the world's, and common COCO-stuff names
STUFF_CLASSES = set(STUFF_NAMES) | {"road", "floor", "ceiling", "snow", "sea", "river", "mountain", "dirt", "pavement"}


def segment_classes(pipe: HyperSegPipeline, image, class_text: str, mode: str, threshold: float):
    """Plain handler: returns (annotated image, found/absent text, download files)."""
    if image is None:
        raise gr.Error("upload an image first")
    pixels = load_image(image).pixels
    names = class_text if class_text and class_text.strip() else None
    listed = [n.strip().lower() for n in (names or "").split(",")]
    result = pipe.segment_classes(pixels, names, mode=mode, threshold=threshold,
                                  stuff=[n for n in listed if n in STUFF_CLASSES])
    lines = [f"**Found:** {', '.join(sorted(set(result.labels))) or 'nothing'}",
             f"**Absent:** {', '.join(result.absent) or '-'}"]
    if result.answer is not None:
        lines.insert(0, f"**The model named:** {result.answer or '(nothing)'}")
    lines += [f"_{n}_" for n in result.notices]
    return annotated(pixels, result), "  \n".join(lines), downloads(result)


def build(pipe: HyperSegPipeline, examples: list[list]) -> None:
    with gr.Tab("Open-vocabulary"):
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="numpy", label="Image", image_mode="RGB", elem_id="classes-image")
                classes = gr.Textbox(label="Class names (comma-separated; empty = let the model name what it sees)",
                                     placeholder="circle, star, ring, sky, grass", elem_id="classes-text")
                mode = gr.Radio(["panoptic", "semantic", "instance"], value="panoptic", label="Mode")
                threshold = gr.Slider(0.0, 1.0, value=pipe.class_threshold("panoptic"), step=0.05,
                                      label="Score threshold (set to the model's own for each mode)")
                run = gr.Button("Segment", variant="primary", elem_id="classes-run")
            with gr.Column():
                output = gr.AnnotatedImage(label="Segments", elem_id="classes-output")
                summary = gr.Markdown()
                files = gr.File(label="Downloads (label-map PNG, COCO RLE JSON)", file_count="multiple")
        # semantic evidence and segment scores have different scales: each mode starts at the model's own threshold
        mode.change(lambda m: pipe.class_threshold(m), mode, threshold, api_visibility="private")
        handler = user_errors(lambda *a: segment_classes(pipe, *a))
        run.click(handler, [image, classes, mode, threshold], [output, summary, files], api_name="segment_classes")
        gr.Examples(examples, [image, classes, mode, threshold], [output, summary, files], fn=handler,
                    cache_examples=True, cache_mode="lazy")
        gr.Markdown(how_it_works("Each class name becomes a span in the prompt; the LLM's hidden states over each span "
                                 "score every mask query (Hybrid Entity Recognition). Classes that score low everywhere "
                                 "are reported absent.", "03_llm_and_entity_recognition.ipynb"))
