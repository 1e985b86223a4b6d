"""Tab 4: clicks (positive / negative), boxes, several regions; the masks update after every click.

The per-visitor prompt state lives in ``gr.State`` (a plain dict), never in module globals.
"""

from __future__ import annotations

import copy
import json

import gradio as gr

from hyperseg_lite.pipeline import HyperSegPipeline, Region, load_image

from .common import annotated, downloads, how_it_works, parse_box, user_errors


def empty_state() -> dict:
    return {"regions": [{"points": [], "labels": [], "box": None}]}


def to_regions(state: dict) -> list[Region]:
    regions = []
    for r in state["regions"]:
        if r["box"] is not None:
            regions.append(Region(box=r["box"]))
        elif any(label == 1 for label in r["labels"]):
            regions.append(Region(points=r["points"], point_labels=r["labels"]))
    return regions


def run_regions(pipe: HyperSegPipeline, image, state: dict):
    if image is None:
        raise gr.Error("upload an image first")
    pixels = load_image(image).pixels
    regions = to_regions(state)
    if not regions:
        return (pixels, []), "Click on an object (positive) to start.", None
    result = pipe.interactive(pixels, regions)
    return annotated(pixels, result), f"{len(regions)} region(s)", downloads(result)


def click(pipe: HyperSegPipeline, image, state: dict, positive: bool, x: float, y: float):
    """Add one click to the current region and re-segment."""
    state = copy.deepcopy(state or empty_state())
    current = state["regions"][-1]
    if current["box"] is not None:
        state["regions"].append({"points": [], "labels": [], "box": None})
        current = state["regions"][-1]
    current["points"].append([float(x), float(y)])
    current["labels"].append(1 if positive else 0)
    return (*run_regions(pipe, image, state), state)


def add_box(pipe: HyperSegPipeline, image, state: dict, box_text: str):
    box = parse_box(box_text)
    state = copy.deepcopy(state or empty_state())
    if not state["regions"][-1]["points"] and state["regions"][-1]["box"] is None:
        state["regions"][-1]["box"] = box
    else:
        state["regions"].append({"points": [], "labels": [], "box": box})
    return (*run_regions(pipe, image, state), state)


def undo(pipe: HyperSegPipeline, image, state: dict):
    state = copy.deepcopy(state or empty_state())
    current = state["regions"][-1]
    if current["points"]:
        current["points"].pop()
        current["labels"].pop()
    elif current["box"] is not None:
        current["box"] = None
    elif len(state["regions"]) > 1:
        state["regions"].pop()
    return (*run_regions(pipe, image, state), state)


def new_region(state: dict) -> dict:
    state = copy.deepcopy(state or empty_state())
    if state["regions"][-1]["points"] or state["regions"][-1]["box"] is not None:
        state["regions"].append({"points": [], "labels": [], "box": None})
    return state


def interactive_api(pipe: HyperSegPipeline, image, regions_json: str):
    """Public endpoint: regions as JSON, e.g. ``[{"points": [[x, y]], "labels": [1]}, {"box": [x0, y0, x1, y1]}]``."""
    try:
        spec = json.loads(regions_json)
    except json.JSONDecodeError as error:
        raise gr.Error(f"regions must be JSON: {error}") from None
    if not isinstance(spec, list):
        raise gr.Error("regions must be a JSON list")
    state = {"regions": [{"points": r.get("points", []), "labels": r.get("labels", [1] * len(r.get("points", []))),
                          "box": r.get("box")} for r in spec]}
    if not to_regions(state):
        raise gr.Error("give at least one region with a positive click or a box")
    return run_regions(pipe, image, state)


def build(pipe: HyperSegPipeline, examples: list[list]) -> None:
    with gr.Tab("Interactive"):
        state = gr.State(empty_state())
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="numpy", label="Click on the image", image_mode="RGB", elem_id="interactive-image")
                polarity = gr.Radio(["positive", "negative"], value="positive", label="Click adds a")
                with gr.Row():
                    undo_button = gr.Button("Undo last")
                    clear_button = gr.Button("Clear")
                    region_button = gr.Button("New region")
                box_text = gr.Textbox(label="Box (x0, y0, x1, y1)", placeholder="20, 30, 180, 200", elem_id="interactive-box")
                box_button = gr.Button("Add box", elem_id="interactive-box-run")
                regions_json = gr.Textbox(visible=False)
            with gr.Column():
                output = gr.AnnotatedImage(label="Masks", elem_id="interactive-output")
                status = gr.Markdown()
                files = gr.File(label="Downloads", file_count="multiple")

        def on_select(img, st, pol, evt: gr.SelectData):
            return click(pipe, img, st, pol == "positive", evt.index[0], evt.index[1])

        image.select(user_errors(on_select), [image, state, polarity], [output, status, files, state],
                     api_visibility="private")
        undo_button.click(user_errors(lambda img, st: undo(pipe, img, st)), [image, state],
                          [output, status, files, state], api_visibility="private")
        clear_button.click(lambda: (None, "", None, empty_state()), None, [output, status, files, state],
                           api_visibility="private")
        region_button.click(new_region, state, state, api_visibility="private")
        box_button.click(user_errors(lambda img, st, b: add_box(pipe, img, st, b)), [image, state, box_text],
                         [output, status, files, state], api_visibility="private")
        image.upload(lambda: (None, "", None, empty_state()), None, [output, status, files, state],
                     api_visibility="private")
        regions_json.submit(user_errors(lambda img, spec: interactive_api(pipe, img, spec)), [image, regions_json],
                            [output, status, files], api_name="interactive")
        gr.Examples(examples, [image])
        gr.Markdown(how_it_works("Clicks are drawn as discs (radius 10 px at 1024 px), boxes filled; each region is "
                                 "pooled from the global vision tokens into one `<region>` embedding. Negative clicks "
                                 "rule out masks that cover them; a box prefers the mask that fills it.",
                                 "05_visual_prompts.ipynb"))
