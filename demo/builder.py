"""Compose the five tabs over one pipeline, with a header saying exactly which model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from hyperseg_lite.pipeline import HyperSegPipeline

from . import tab_classes, tab_interactive, tab_reasoning, tab_referring, tab_video
from .context import AppContext

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "examples"
MAX_UPLOAD = "50mb"


def header(ctx: AppContext) -> str:
    return (
        f"# hyperseg-lite\nOne model for every segmentation prompt (HyperSeg, arXiv 2411.17606).\n\n"
        f"**Model:** {ctx.pipe.loaded.describe()}  \n**Trained on:** {ctx.trained_on}  \n"
        f"Uploads up to {MAX_UPLOAD}; videos: the first {tab_video.MAX_FRAMES} frames are segmented."
    )


def example_rows(panoptic_threshold: float = 0.5, referring_threshold: float = 0.5) -> dict[str, list[list]]:
    """Each tab's gallery rows, from ``assets/examples/examples.json`` (written by ``tools/make_examples.py``).

    Examples run at the model's own defaults: class lists at ``panoptic_threshold`` (``pipe.class_threshold``),
    expressions and questions at ``referring_threshold`` (``pipe.referring_threshold``).
    """
    spec = json.loads((ASSETS / "examples.json").read_text())
    images, video = spec["images"], spec["video"]
    return {
        "classes": [[str(ASSETS / e["classes_image"]), e["classes"], "panoptic", panoptic_threshold] for e in images],
        "referring": [[str(ASSETS / e["image"]), e["expression"], referring_threshold] for e in images],
        "reasoning": [[str(ASSETS / e["question_image"]), e["question"], True, referring_threshold] for e in images],
        "interactive": [[str(ASSETS / e["image"])] for e in images],
        "video": [[str(ASSETS / video["video"])], [str(ASSETS / video["referring_video"])]],
    }


def build_demo(
    pipe: HyperSegPipeline, trained_on: str, caveat: str | None = None, cache_examples: bool = True
) -> gr.Blocks:
    """``caveat``: one line shown under every result (the embedded model's: it knows only the shapes world)."""
    ctx = AppContext(pipe, trained_on, caveat, cache_examples)
    rows = example_rows(pipe.class_threshold("panoptic"), pipe.referring_threshold())
    with gr.Blocks(title="hyperseg-lite", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(header(ctx))
        tab_classes.build(ctx, rows["classes"])
        tab_referring.build(ctx, rows["referring"])
        tab_reasoning.build(ctx, rows["reasoning"])
        tab_interactive.build(ctx, rows["interactive"])
        tab_video.build(ctx, rows["video"])
    return demo
