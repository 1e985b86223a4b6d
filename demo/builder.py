"""Compose the five tabs over one pipeline, with a header saying exactly which model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from hyperseg_lite.pipeline import HyperSegPipeline

from . import tab_classes, tab_interactive, tab_reasoning, tab_referring, tab_video

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "examples"
MAX_UPLOAD = "50mb"


def header(pipe: HyperSegPipeline, trained_on: str) -> str:
    return (f"# hyperseg-lite\nOne model for every segmentation prompt (HyperSeg, arXiv 2411.17606).\n\n"
            f"**Model:** {pipe.loaded.describe()}  \n**Trained on:** {trained_on}  \n"
            f"Uploads up to {MAX_UPLOAD}; videos up to {tab_video.UI_MAX_FRAMES} frames.")


def example_rows(panoptic_threshold: float = 0.5) -> dict[str, list[list]]:
    """Each tab's gallery rows, from ``assets/examples/examples.json`` (written by ``tools/make_examples.py``).

    Class-list examples run at ``panoptic_threshold``, the model's own default (``pipe.class_threshold``).
    """
    spec = json.loads((ASSETS / "examples.json").read_text())
    images, video = spec["images"], spec["video"]
    return {
        "classes": [[str(ASSETS / e["classes_image"]), e["classes"], "panoptic", panoptic_threshold] for e in images],
        "referring": [[str(ASSETS / e["image"]), e["expression"], 0.5] for e in images],
        "reasoning": [[str(ASSETS / e["question_image"]), e["question"], True, 0.5] for e in images],
        "interactive": [[str(ASSETS / e["image"])] for e in images],
        "video": [[str(ASSETS / video["video"]), "box on the first frame", video["box"], ""],
                  [str(ASSETS / video["referring_video"]), "expression", "", video["expression"]]],
    }


def build_demo(pipe: HyperSegPipeline, trained_on: str) -> gr.Blocks:
    rows = example_rows(pipe.class_threshold("panoptic"))
    with gr.Blocks(title="hyperseg-lite", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(header(pipe, trained_on))
        tab_classes.build(pipe, rows["classes"])
        tab_referring.build(pipe, rows["referring"])
        tab_reasoning.build(pipe, rows["reasoning"])
        tab_interactive.build(pipe, rows["interactive"])
        tab_video.build(pipe, rows["video"])
    return demo
