"""Helpers shared by the tabs: user errors (one sentence, one log line), safe labels, notices, per-request files."""

from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import tempfile
import time
import unicodedata
from pathlib import Path

import gradio as gr
import numpy as np

from hyperseg_lite.pipeline import SegmentationResult
from hyperseg_lite.pipeline.exporters import (
    decode_rle,
    masks_to_label_map,
    save_label_png,
)
from hyperseg_lite.pipeline.overlay import colour_for

REQUEST_ROOT = Path(tempfile.gettempdir()) / "hyperseg-lite-requests"
KEEP_SECONDS = 3600
LABEL_CHARS = 60  # longer labels (a whole question) are cut for legends

log = logging.getLogger("hyperseg_lite.app")


def user_error(message: str) -> gr.Error:
    """The error a visitor sees: their sentence in the UI and the API, one log line on the server, no traceback."""
    message = clean_text(message, limit=500) or "the request could not be read"
    log.warning("user error: %s", message)
    return gr.Error(message, print_exception=False)


def user_errors(fn):
    """The pipeline raises ``ValueError`` with a sentence for every bad input: show it, never a traceback.

    ``functools.wraps`` keeps ``fn``'s signature, so the API keeps its parameter names and defaults."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error as error:
            if error.print_exception:
                raise user_error(str(error.message)) from None
            raise
        except ValueError as error:
            raise user_error(str(error)) from None

    return wrapper


_SPACES = re.compile(r"\s+")


def clean_text(text, limit: int | None = None) -> str:
    """Text safe to display: control, format (bidi overrides, zero-width) and unassigned characters removed,
    whitespace runs collapsed; cut to ``limit`` characters with an ellipsis."""
    text = "".join(
        " " if ch in "\t\n\r" else ch
        for ch in str(text)
        if ch in "\t\n\r" or not unicodedata.category(ch).startswith("C")
    )
    text = _SPACES.sub(" ", text).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def segment_key(result: SegmentationResult, i: int) -> str:
    """The legend entry of segment ``i``: its cleaned label and score (also the key of the colour maps)."""
    return f"{clean_text(result.labels[i], LABEL_CHARS)} ({float(result.scores[i]):.2f})"


def hex_colour(index: int) -> str:
    red, green, blue = colour_for(index)
    return f"#{red:02x}{green:02x}{blue:02x}"


def annotated(image: np.ndarray, result: SegmentationResult, key=segment_key):
    """Value for ``gr.AnnotatedImage``: each segment with its legend entry (``key(result, i)``)."""
    return image, [(result.masks[i].astype(np.float32), key(result, i)) for i in range(len(result))]


def notice_lines(notices: list[str], caveat: str | None) -> list[str]:
    """Notices (downscaled, flattened, truncated...) and the model's caveat, as italic markdown lines."""
    lines = [f"_Note: {clean_text(n)}_" for n in dict.fromkeys(notices)]
    return lines + ([f"_{caveat}_"] if caveat else [])


def with_notices(result: SegmentationResult, notices: list[str]) -> SegmentationResult:
    """Keep the loading notices in the result (and so in its JSON download), each once."""
    result.notices = list(dict.fromkeys([*notices, *result.notices]))
    return result


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


def downloads(result: SegmentationResult) -> list[str]:
    """Label-map PNG and COCO RLE JSON (with the notices) for one image result."""
    folder = request_dir()
    png = result.save_label_png(folder / "labels.png")
    json_path = folder / "segments_coco_rle.json"
    result.to_json(json_path)
    return [str(png), str(json_path)]


class FrameWriter:
    """Per-frame label PNGs and COCO RLE dicts written as frames arrive (a long clip never sits in memory)."""

    def __init__(self) -> None:
        self.folder = request_dir()
        self.maps = self.folder / "label_maps"
        self.maps.mkdir()
        self.frames: list[dict] = []

    def add(self, frame: dict) -> None:
        """``frame``: ``SegmentationResult.to_dict()`` of one frame."""
        segments = frame["segments"]
        masks = decode_rle(segments) if segments else np.zeros((0, *frame["image_size"]), dtype=bool)
        save_label_png(masks_to_label_map(masks), self.maps / f"frame_{frame['frame_index']:05d}.png")
        self.frames.append(frame)

    def files(self, notices: list[str]) -> list[str]:
        json_path = self.folder / "frames_coco_rle.json"
        frames = sorted(self.frames, key=lambda f: f["frame_index"])
        json_path.write_text(json.dumps({"notices": notices, "frames": frames}))
        return [shutil.make_archive(str(self.folder / "label_maps"), "zip", self.maps), str(json_path)]


def how_it_works(text: str, notebook: str) -> str:
    walk_through = f"Walk-through: notebook `{notebook}` in `notebooks/`."
    return f"<details><summary>How this works</summary>\n\n{text}\n\n{walk_through}\n</details>"
