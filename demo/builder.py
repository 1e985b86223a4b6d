"""Compose the five tabs over one pipeline, with a header saying exactly which model is loaded."""

from __future__ import annotations

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


def build_demo(pipe: HyperSegPipeline, trained_on: str) -> gr.Blocks:
    images = [str(ASSETS / n) for n in ("astronaut.jpg", "coffee.jpg", "chelsea.jpg")]
    videos = [str(ASSETS / "moving_shapes.mp4")]
    with gr.Blocks(title="hyperseg-lite", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(header(pipe, trained_on))
        tab_classes.build(pipe, images)
        tab_referring.build(pipe, images)
        tab_reasoning.build(pipe, images)
        tab_interactive.build(pipe, images)
        tab_video.build(pipe, videos)
    return demo
