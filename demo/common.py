"""Helpers shared by the tabs: error messages, per-request files, annotated outputs."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
import numpy as np

from hyperseg_lite.pipeline import SegmentationResult
from hyperseg_lite.pipeline.overlay import colour_for

REQUEST_ROOT = Path(tempfile.gettempdir()) / "hyperseg-lite-requests"
KEEP_SECONDS = 3600
NOTEBOOKS = "https://github.com/hyperseg-lite/hyperseg-lite/tree/main/notebooks"


def user_errors(fn):
    """Turn the pipeline's ValueErrors into a ``gr.Error`` the user sees; never show a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ValueError as error:
            raise gr.Error(str(error)) from None

    return wrapper


def parse_box(text: str) -> list[float]:
    """"x0, y0, x1, y1" typed by a user -> four floats, or a message saying how to type it."""
    try:
        box = [float(v) for v in (text or "").replace(";", ",").split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise gr.Error("type the box as four numbers: x0, y0, x1, y1")
    return box


def request_dir() -> Path:
    """A fresh folder for one request's downloads; folders older than an hour are removed on the way."""
    REQUEST_ROOT.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in REQUEST_ROOT.iterdir():
        try:
            if now - old.stat().st_mtime > KEEP_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="req-", dir=REQUEST_ROOT))


def downloads(results: SegmentationResult | list[SegmentationResult]) -> list[str]:
    """Label-map PNG(s) and COCO RLE JSON for a result (or a list of per-frame results)."""
    folder = request_dir()
    if isinstance(results, SegmentationResult):
        png = results.save_label_png(folder / "labels.png")
        json_path = folder / "segments_coco_rle.json"
        results.to_json(json_path)
        return [str(png), str(json_path)]
    json_path = folder / "frames_coco_rle.json"
    json_path.write_text(json.dumps([r.to_dict() for r in results]))
    archive = folder / "label_maps"
    archive.mkdir()
    for r in results:
        r.save_label_png(archive / f"frame_{r.frame_index:05d}.png")
    zip_path = shutil.make_archive(str(folder / "label_maps"), "zip", archive)
    return [zip_path, str(json_path)]


def annotated(image: np.ndarray, result: SegmentationResult):
    """Value for ``gr.AnnotatedImage``: each segment with its label and score."""
    return image, [(mask.astype(np.float32), f"{label} ({score:.2f})")
                   for mask, label, score in zip(result.masks, result.labels, result.scores)]


def colour_map(result: SegmentationResult) -> dict[str, str]:
    return {f"{label} ({score:.2f})": "#%02x%02x%02x" % colour_for(i)
            for label, score, i in zip(result.labels, result.scores, result.ids)}


def how_it_works(text: str, notebook: str) -> str:
    return f"<details><summary>How this works</summary>\n\n{text}\n\nWalk-through: notebook `{notebook}` in `notebooks/`.\n</details>"
