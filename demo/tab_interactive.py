"""Tab 4: drawn prompts. Click to include / exclude, click two corners for a box, paint a scribble or a mask;
several objects, each in its colour; undo, clear, new object. The masks update after every prompt.

The image is read (and, where the pipeline can, encoded) once when it changes; prompts only re-run the prompt
side. The per-visitor state lives in ``gr.State`` (a plain dict), never in module globals, and is rebuilt
whenever the image changes (upload, example, clear), so nothing of one image reaches the next.
"""

from __future__ import annotations

import copy
import functools

import gradio as gr
import numpy as np

from hyperseg_lite.pipeline import Region, load_image

from .canvas import draw_prompts
from .common import (
    annotated,
    downloads,
    how_it_works,
    notice_lines,
    segment_key,
    user_errors,
    with_notices,
)
from .components import ImageInput, TextInput
from .context import AppContext
from .regions import parse_regions

TOOLS = ["include point", "exclude point", "box (click two corners)"]
SCRIBBLE_POINTS = 256  # a painted stroke is sent as at most this many points (each drawn as a disc)


def empty_object() -> dict:
    return {"points": [], "labels": [], "box": None, "scribble": None, "mask": None}


def empty_state() -> dict:
    return {
        "image": None,
        "encoded": None,
        "notices": [],
        "objects": [empty_object()],
        "active": 0,
        "corner": None,
        "history": [],
        "masks": [],
        "files": None,
    }


def kind_of(obj: dict) -> str | None:
    """Which prompt an object holds: one kind per object, as the model takes one region per object."""
    if obj["points"]:
        return "points"
    return next((k for k in ("box", "scribble", "mask") if obj[k] is not None), None)


def to_region(obj: dict) -> Region | None:
    """The object as the pipeline's Region; None while it has nothing to segment (empty, or exclude clicks only)."""
    kind = kind_of(obj)
    if kind == "points":
        return Region(points=obj["points"], point_labels=obj["labels"]) if 1 in obj["labels"] else None
    return None if kind is None else Region(**{kind: obj[kind]})


def target_object(state: dict, kind: str) -> int:
    """The object a new prompt of ``kind`` goes to: the active one, or a new one if it already holds another kind
    (or a box, which a second box replaces as a new object)."""
    current = kind_of(state["objects"][state["active"]])
    if current is None or (current == kind == "points"):
        return state["active"]
    state["objects"].append(empty_object())
    state["active"] = len(state["objects"]) - 1
    state["history"].append(("object", state["active"]))
    return state["active"]


def load_state(ctx: AppContext, image) -> dict:
    """A fresh state for a new image: read and encoded once; every prompt on it reuses the encoding."""
    state = empty_state()
    if image is None:
        return state
    encoded = ctx.pipe.encode(image)
    state.update(image=encoded.pixels, notices=list(encoded.notices), encoded=encoded)
    return state


def segment(ctx: AppContext, state: dict) -> tuple[dict, str]:
    """Run every object that has a prompt; returns (state with masks and download files, status)."""
    regions = [(i, to_region(obj)) for i, obj in enumerate(state["objects"])]
    ready = [(i, r) for i, r in regions if r is not None]
    state["masks"] = [None] * len(state["objects"])
    waiting = [
        f"object {i + 1} has only exclude clicks: add an include click"
        for i, obj in enumerate(state["objects"])
        if kind_of(obj) == "points" and to_region(obj) is None
    ]
    if not ready:
        hint = "Click on an object to include it (or pick another tool)." if not waiting else ""
        state["files"] = None
        return state, "  \n".join([hint, *waiting, *notice_lines(state["notices"], ctx.caveat)]).strip()
    result = with_notices(ctx.pipe.interactive(state["encoded"], [r for _, r in ready]), state["notices"])
    result.labels = [f"object {i + 1}" for i, _ in ready]
    result.ids = np.array([i + 1 for i, _ in ready])
    for k, (i, _) in enumerate(ready):
        state["masks"][i] = result.masks[k]
    found = ", ".join(segment_key(result, k) for k in range(len(result)))
    lines = [f"{len(ready)} object(s): {found}", *waiting, *notice_lines(result.notices, ctx.caveat)]
    state["files"] = downloads(result)
    return state, "  \n".join(lines)


def render(state: dict):
    if state["image"] is None:
        return None
    return draw_prompts(
        state["image"],
        state["objects"],
        state["masks"] or [None] * len(state["objects"]),
        state["corner"],
        state["active"],
    )


def need_image(state: dict | None) -> dict:
    if not state or state.get("image") is None:
        raise gr.Error("upload an image or pick an example first")
    return copy.copy(state) | {"objects": copy.deepcopy(state["objects"]), "history": list(state["history"])}


def click(ctx: AppContext, state: dict, tool: str, x: float, y: float):
    """One click with the current tool: an include / exclude point or a box corner."""
    state = need_image(state)
    if tool.startswith("box"):
        if state["corner"] is None:
            state["corner"] = [float(x), float(y)]
            return state, "Box: now click the opposite corner."
        (x0, y0), state["corner"] = state["corner"], None
        return add_box(ctx, state, [min(x0, x), min(y0, y), max(x0, x), max(y0, y)])
    state["corner"] = None
    index = target_object(state, "points")
    obj = state["objects"][index]
    obj["points"].append([float(x), float(y)])
    obj["labels"].append(1 if tool == "include point" else 0)
    state["history"].append(("point", index))
    return segment(ctx, state)


def add_box(ctx: AppContext, state: dict, box: list[float]):
    index = target_object(state, "box")
    state["objects"][index]["box"] = [float(v) for v in box]
    state["history"].append(("box", index))
    return segment(ctx, state)


def painted(editor_value) -> np.ndarray | None:
    """The pixels painted on the brush canvas (any layer, any colour), or None."""
    if not editor_value or not editor_value.get("layers"):
        return None
    layers = [np.asarray(layer) for layer in editor_value["layers"] if layer is not None]
    masks = [
        layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[-1] == 4 else np.asarray(layer).any(-1) for layer in layers
    ]
    if not masks:
        return None
    mask = np.logical_or.reduce(masks)
    return mask if mask.any() else None


def add_painting(ctx: AppContext, state: dict, editor_value, as_mask: bool = False):
    """The painted strokes become the active object's scribble (points along them) or mask."""
    state = need_image(state)
    mask = painted(editor_value)
    if mask is None:
        raise gr.Error("paint on the brush canvas first (pick the brush, then drag over the object)")
    if mask.shape != state["image"].shape[:2]:
        raise gr.Error("the painting does not match the image size: clear the brush canvas and paint again")
    kind = "mask" if as_mask else "scribble"
    index = target_object(state, kind)
    if as_mask:
        state["objects"][index]["mask"] = mask
    else:
        ys, xs = np.nonzero(mask)
        keep = np.linspace(0, len(xs) - 1, min(len(xs), SCRIBBLE_POINTS)).round().astype(int)
        state["objects"][index]["scribble"] = [[float(xs[k]), float(ys[k])] for k in keep]
    state["history"].append((kind, index))
    return segment(ctx, state)


def undo(ctx: AppContext, state: dict):
    """Take back the last prompt (or the last new object)."""
    state = need_image(state)
    state["corner"] = None
    if not state["history"]:
        return state, "Nothing to undo."
    action, index = state["history"].pop()
    obj = state["objects"][index]
    if action == "point":
        obj["points"].pop()
        obj["labels"].pop()
    elif action == "object":
        state["objects"].pop(index)
        state["active"] = max(0, min(state["active"], len(state["objects"]) - 1))
    else:
        obj[action] = None
    return segment(ctx, state)


def clear(state: dict):
    """Every prompt removed; the image (and its encoding) stays."""
    state = need_image(state)
    state.update(objects=[empty_object()], active=0, corner=None, history=[], masks=[], files=None)
    return state, "Cleared. Click on an object to include it."


def new_object(state: dict):
    state = need_image(state)
    state["corner"] = None
    if kind_of(state["objects"][state["active"]]) is None:
        return state, f"Object {state['active'] + 1} is empty: prompt it."
    state["objects"].append(empty_object())
    state["active"] = len(state["objects"]) - 1
    state["masks"] = state["masks"] + [None]
    state["history"].append(("object", state["active"]))
    return state, f"Object {state['active'] + 1}: click, box or paint it (in its own colour)."


def brush_value(image: np.ndarray) -> dict:
    """The brush canvas showing ``image`` with nothing painted."""
    return {"background": image, "layers": [], "composite": image}


def interactive_api(ctx: AppContext, image, regions: str):
    """All prompts at once, as JSON (see ``demo/regions.py``)."""
    if image is None:
        raise gr.Error("upload an image first")
    parsed = parse_regions(regions)
    loaded = load_image(image, ctx.pipe.max_pixels)
    result = with_notices(ctx.pipe.interactive(loaded.pixels, parsed), loaded.notices)
    status = f"{len(parsed)} region(s)"
    return (
        annotated(loaded.pixels, result),
        "  \n".join([status, *notice_lines(result.notices, ctx.caveat)]),
        downloads(result),
    )


def build(ctx: AppContext, examples: list[list]) -> None:
    with gr.Tab("Interactive"):
        state = gr.State(empty_state())
        with gr.Row():
            with gr.Column():
                image = ImageInput(label="Image (upload or pick an example)", elem_id="interactive-image", height=260)
                tool = gr.Radio(TOOLS, value=TOOLS[0], label="A click on the canvas adds", elem_id="interactive-tool")
                with gr.Row():
                    undo_button = gr.Button("Undo", elem_id="interactive-undo")
                    clear_button = gr.Button("Clear", elem_id="interactive-clear")
                    object_button = gr.Button("New object", elem_id="interactive-new-object")
                with gr.Accordion("Scribble / mask brush", open=True):
                    brush = gr.ImageEditor(
                        type="numpy",
                        label="Paint over the object",
                        elem_id="interactive-brush",
                        sources=(),
                        transforms=(),
                        layers=False,
                        height=300,
                        brush=gr.Brush(colors=["#ff2fe0"], color_mode="fixed", default_size=6),
                    )
                    with gr.Row():
                        scribble_button = gr.Button("Add painting as scribble", elem_id="interactive-add-scribble")
                        mask_button = gr.Button("Add painting as mask", elem_id="interactive-add-mask")
            with gr.Column():
                canvas = gr.Image(
                    label="Canvas: click here (green = include, red = exclude); masks per object",
                    interactive=False,
                    elem_id="interactive-canvas",
                    type="numpy",
                )
                status = gr.Markdown(elem_id="interactive-status")
                files = gr.File(label="Downloads", file_count="multiple")
        with gr.Row(visible=False):
            api_output = gr.AnnotatedImage()
            api_regions = TextInput(label="regions")

        @ctx.gpu
        @user_errors
        def on_image(image_path):
            """A new image (upload, example or clear): a fresh state, nothing of the last image kept."""
            new_state = load_state(ctx, image_path)
            if new_state["image"] is None:
                return None, "", new_state, None, None
            lines = ["Click on an object to include it.", *notice_lines(new_state["notices"], ctx.caveat)]
            message = "  \n".join(lines)
            return render(new_state), message, new_state, None, brush_value(new_state["image"])

        def blank_brush(st):
            """The brush canvas emptied after its painting became a prompt (ready for the next object)."""
            return None if st.get("image") is None else brush_value(st["image"])

        def prompting(fn):
            """A handler that changes the prompts: the canvas redrawn, the status, the state, the downloads."""

            @ctx.gpu
            @user_errors
            def handler(*args):
                new_state, message = fn(*args)
                return render(new_state), message, new_state, new_state.get("files")

            return handler

        @ctx.gpu
        @user_errors
        def on_click(st, tool_name, evt: gr.SelectData):  # Gradio passes the click by this annotation
            new_state, message = click(ctx, st, tool_name, evt.index[0], evt.index[1])
            return render(new_state), message, new_state, new_state.get("files")

        outputs = [canvas, status, state, files]
        # every event that changes the prompts runs alone and in order, each on the state the one before left
        # (a click made while the last one runs is queued, not lost, and cannot overwrite it)
        edits = {
            "api_visibility": "private",
            "concurrency_id": "interactive-prompts",
            "concurrency_limit": 1,
            "trigger_mode": "multiple",
        }
        image.change(on_image, image, [canvas, status, state, files, brush], **edits)
        canvas.select(on_click, [state, tool], outputs, **edits)
        undo_button.click(prompting(lambda st: undo(ctx, st)), state, outputs, **edits)
        clear_button.click(prompting(clear), state, outputs, **edits)
        object_button.click(prompting(new_object), state, outputs, **edits)
        for button, as_mask in ((scribble_button, False), (mask_button, True)):
            button.click(
                prompting(functools.partial(add_painting, ctx, as_mask=as_mask)), [state, brush], outputs, **edits
            ).then(blank_brush, state, brush, api_visibility="private")
        tool.change(lambda st: st if st is None else st | {"corner": None}, state, state, **edits)

        @ctx.gpu
        @user_errors
        def interactive(image: str, regions: str):
            """Visual prompts as JSON, one mask per object (see demo/regions.py)."""
            return interactive_api(ctx, image, regions)

        api_regions.submit(interactive, [image, api_regions], [api_output, status, files], api_name="interactive")
        gr.Examples(examples, [image])
        gr.Markdown(
            how_it_works(
                "Clicks are drawn as discs (radius 10 px at 1024 px), boxes filled; each object is "
                "pooled from the global vision tokens into one `<region>` embedding. Exclude clicks "
                "rule out masks that cover them; a box prefers the mask that fills it.",
                "05_visual_prompts.ipynb",
            )
        )
