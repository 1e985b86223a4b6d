"""Loading and validating what users give the pipeline: images, videos, text, clicks and boxes.

Everything is checked before the model runs, and every problem is a ``ValueError`` whose message says
what to change. User files are only read, never modified.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_IMAGE_PIXELS = 40_000_000  # larger images are downscaled (with a notice) before anything else
MAX_VIDEO_FRAMES = 3_000  # a clip longer than this is refused by the whole-clip methods (use the streaming form)
MAX_CLASSES = 1_000
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v"}


@dataclass
class LoadedImage:
    """An RGB uint8 image plus notes about what was done to it (shown to the user)."""

    pixels: np.ndarray
    notices: list[str] = field(default_factory=list)


def _to_rgb_uint8(array: np.ndarray, notices: list[str]) -> np.ndarray:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"an image must be (H, W), (H, W, 3) or (H, W, 4); got shape {tuple(array.shape)}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError("the image is empty (zero width or height)")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = (array.astype(np.float32) / 257.0).round().astype(np.uint8)
        notices.append("16-bit image converted to 8-bit")
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("the image contains NaN or infinite values")
        scale = 255.0 if array.max() <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    channels = array.shape[-1]
    if channels == 1:
        array = np.repeat(array, 3, axis=-1)
    elif channels == 2:  # grey + alpha
        array = np.repeat(array[..., :1], 3, axis=-1)
    elif channels == 4:  # composite on white so transparent areas do not turn black
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
        notices.append("transparency flattened onto white")
    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()


def _limit_size(array: np.ndarray, notices: list[str], max_pixels: int) -> np.ndarray:
    height, width = array.shape[:2]
    if height * width <= max_pixels:
        return array
    scale = (max_pixels / (height * width)) ** 0.5
    new_size = (max(1, int(width * scale)), max(1, int(height * scale)))
    notices.append(
        f"image of {width}x{height} px downscaled to {new_size[0]}x{new_size[1]} px "
        f"(limit {max_pixels / 1e6:.0f} MP); masks are returned at the downscaled size"
    )
    return cv2.resize(array, new_size, interpolation=cv2.INTER_AREA)


def load_image(image, max_pixels: int = MAX_IMAGE_PIXELS) -> LoadedImage:
    """Path, PIL image or numpy array (RGB, RGBA, grey, 16-bit, float) -> RGB uint8, EXIF orientation applied."""
    notices: list[str] = []
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"no image file at {path}")
        try:
            with Image.open(path) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened)
                image = image.copy()
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(
                f"cannot read {path.name} as an image ({error}); use PNG, JPEG, BMP, TIFF or WebP"
            ) from None
    if isinstance(image, Image.Image):
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            array = (
                np.asarray(image).astype(np.uint16)
                if image.mode != "I"
                else np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
            )
        elif image.mode in ("RGBA", "LA", "PA"):
            array = np.asarray(image.convert("RGBA"))
        else:
            array = np.asarray(image.convert("RGB"))
    elif isinstance(image, np.ndarray):
        array = image
    elif hasattr(image, "numpy"):  # torch tensor (H, W, C)
        array = image.numpy()
    else:
        raise ValueError(f"unsupported image type {type(image).__name__}: give a path, a PIL image or a numpy array")
    array = _to_rgb_uint8(np.asarray(array), notices)
    return LoadedImage(_limit_size(array, notices, max_pixels), notices)


def check_samples(samples, name: str = "samples") -> int:
    """How many sampled answers to draw: a whole number, 0 or more."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ValueError(f"{name} must be a whole number, 0 or more, got {samples!r}")
    return samples


def check_class_names(class_names: Sequence[str] | str, check_text) -> list[str]:
    """Comma-separated string or list -> unique, non-empty names (each validated like any user text)."""
    if isinstance(class_names, str):
        class_names = class_names.split(",")
    names: list[str] = []
    for name in class_names:
        if not isinstance(name, str):
            raise ValueError(f"class names must be strings, got {type(name).__name__}")
        if name.strip():
            cleaned = check_text(name, "class name")
            if cleaned not in names:
                names.append(cleaned)
    if not names:
        raise ValueError("the class list is empty: give at least one class name (comma-separated)")
    if len(names) > MAX_CLASSES:
        raise ValueError(f"too many class names ({len(names)}); at most {MAX_CLASSES}")
    return names


@dataclass
class Region:
    """One visual prompt; give exactly one kind (points may be mixed positive / negative).

    Coordinates are pixels of the image as given: x = column, y = row. ``point_labels``: 1 = positive, 0 = negative.
    """

    points: Sequence[Sequence[float]] | None = None
    point_labels: Sequence[int] | None = None
    box: Sequence[float] | None = None
    scribble: Sequence[Sequence[float]] | None = None
    mask: np.ndarray | None = None

    def validate(self, image_size: tuple[int, int]) -> None:
        height, width = image_size
        given = [k for k in ("points", "box", "scribble", "mask") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("each region needs exactly one of: points, box, scribble, mask")

        def inside(x: float, y: float, what: str) -> None:
            if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x < width and 0 <= y < height):
                raise ValueError(f"{what} ({x:g}, {y:g}) is outside the {width}x{height} image")

        if self.points is not None:
            points = np.asarray(self.points, dtype=np.float64).reshape(-1, 2) if len(self.points) else np.zeros((0, 2))
            if len(points) == 0:
                raise ValueError("a point region needs at least one point")
            labels = np.ones(len(points), dtype=int) if self.point_labels is None else np.asarray(self.point_labels)
            if labels.shape != (len(points),) or not np.isin(labels, (0, 1)).all():
                raise ValueError("point_labels must give 1 (positive) or 0 (negative) for every point")
            if labels.sum() == 0:
                raise ValueError("only negative points were given: click at least one point on the object")
            for x, y in points:
                inside(x, y, "point")
        if self.box is not None:
            box = np.asarray(self.box, dtype=np.float64).reshape(-1)
            if box.shape != (4,) or not np.isfinite(box).all():
                raise ValueError("a box is four numbers: x0, y0, x1, y1")
            x0, y0, x1, y1 = box
            if abs(x1 - x0) < 1 or abs(y1 - y0) < 1:
                raise ValueError("the box has zero area: drag a box at least 1 pixel wide and tall")
            inside(min(x0, x1), min(y0, y1), "box corner")
            if max(x0, x1) > width or max(y0, y1) > height:
                raise ValueError(f"the box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) leaves the {width}x{height} image")
        if self.scribble is not None:
            stroke = (
                np.asarray(self.scribble, dtype=np.float64).reshape(-1, 2) if len(self.scribble) else np.zeros((0, 2))
            )
            if len(stroke) == 0:
                raise ValueError("a scribble needs at least one point")
            for x, y in stroke:
                inside(x, y, "scribble point")
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.shape != (height, width):
                raise ValueError(f"a mask prompt must be {height}x{width} like the image, got {mask.shape}")
            if not mask.astype(bool).any():
                raise ValueError("the mask prompt is empty: paint at least one pixel")

    def spec(self) -> dict:
        """The one kind given, as keyword arguments of ``HyperSegProcessor.draw_region``."""
        if self.points is not None:
            return {"points": self.points, "point_labels": self.point_labels}
        given = {k: getattr(self, k) for k in ("box", "scribble", "mask") if getattr(self, k) is not None}
        if len(given) != 1:
            raise ValueError("each region needs exactly one of: points, box, scribble, mask")
        return given

    @property
    def positive_points(self) -> np.ndarray:
        if self.points is None:
            return np.zeros((0, 2))
        points = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        labels = np.ones(len(points)) if self.point_labels is None else np.asarray(self.point_labels)
        return points[labels == 1]

    @property
    def negative_points(self) -> np.ndarray:
        if self.points is None or self.point_labels is None:
            return np.zeros((0, 2))
        points = np.asarray(self.points, dtype=np.float64).reshape(-1, 2)
        return points[np.asarray(self.point_labels) == 0]


def iter_video(video, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Frames of a video path (mp4/avi/gif...), a folder of images, or a sequence of arrays, as RGB uint8.

    Lazy: frames are decoded one by one, so a long clip never sits in memory.
    """
    count = 0
    if isinstance(video, (str, os.PathLike)):
        path = Path(video)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not files:
                raise ValueError(f"the folder {path} holds no image frames ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            for file in files:
                if max_frames is not None and count >= max_frames:
                    return
                yield load_image(file).pixels
                count += 1
            return
        if not path.is_file():
            raise ValueError(f"no video file at {path}")
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise ValueError(f"cannot open {path.name} as a video; use MP4 (H.264), AVI or GIF")
            while max_frames is None or count < max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                count += 1
        finally:
            capture.release()
        if count == 0:
            raise ValueError(f"{path.name} has no readable frames")
        return
    if isinstance(video, (str, bytes)) or not isinstance(video, Iterable):
        raise ValueError("a video is a file path, a folder of frames, or a list of images")
    for frame in video:
        if max_frames is not None and count >= max_frames:
            return
        yield load_image(frame).pixels
        count += 1
    if count == 0:
        raise ValueError("the video has no frames")


def load_video(video, max_frames: int = MAX_VIDEO_FRAMES) -> list[np.ndarray]:
    """All frames of a clip (for whole-clip methods); refuses clips longer than ``max_frames``."""
    frames = list(iter_video(video, max_frames=max_frames + 1))
    if not frames:
        raise ValueError("the video has no frames")
    if len(frames) > max_frames:
        raise ValueError(f"the video is longer than {max_frames} frames; trim it or use the streaming method")
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        raise ValueError("all frames of a video must have the same size")
    return frames
