"""``VideoFrames``: the frames of a clip, decoded when they are needed and never all at once.

Video tasks read a clip once, frame by frame: a list of arrays is indexed, a folder of images opens one file per
frame, a video file is decoded forward (and seeked when a session runs backwards), a generator is drawn from
once. Every frame is checked as it arrives (same size as the first; at most ``max_frames``), so whole-clip
methods no longer decode a clip twice (once to validate, once to run) nor hold it in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path

import cv2
import numpy as np

from .inputs import IMAGE_EXTENSIONS, load_image


class VideoFrames:
    """Random access where the source allows it (lists, folders, video files), one forward pass otherwise."""

    def __init__(self, video, max_frames: int | None = None) -> None:
        self.max_frames = max_frames
        self._files: list[Path] | None = None
        self._items: list | None = None
        self._path: Path | None = None
        self._stream: Iterator[np.ndarray] | None = None
        self._capture = None
        self._position = 0
        self._read = False  # a generator's frames, once drawn, are gone
        if isinstance(video, (str, os.PathLike)):
            path = Path(video)
            if path.is_dir():
                self._files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
                if not self._files:
                    raise ValueError(f"the folder {path} holds no image frames ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            elif path.is_file():
                self._path = path
            else:
                raise ValueError(f"no video file at {path}")
        elif isinstance(video, (list, tuple)) or (isinstance(video, np.ndarray) and video.ndim == 4):
            self._items = list(video)
            if not self._items:
                raise ValueError("the video has no frames")
        elif isinstance(video, (str, bytes)) or not isinstance(video, Iterable):
            raise ValueError("a video is a file path, a folder of frames, or a list of images")
        else:
            self._stream = iter(video)
        known = self.known_length
        if max_frames is not None and known is not None and known > max_frames:
            raise ValueError(f"the video is longer than {max_frames} frames; trim it or use the streaming method")
        self.first = self[0]  # its size is the clip's; every later frame is checked against it

    @property
    def random_access(self) -> bool:
        """False for a generator: it can be read once, forward, from its start."""
        return self._stream is None

    @property
    def known_length(self) -> int | None:
        """The number of frames when known without decoding (lists, folders, most video files), else None."""
        if self._items is not None:
            return len(self._items)
        if self._files is not None:
            return len(self._files)
        if self._path is not None:
            capture = cv2.VideoCapture(str(self._path))
            try:
                count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
            finally:
                capture.release()
            return count if count > 0 else None
        return None

    @property
    def size(self) -> tuple[int, int]:
        return int(self.first.shape[0]), int(self.first.shape[1])

    def _check(self, index: int, pixels: np.ndarray) -> np.ndarray:
        if self.max_frames is not None and index >= self.max_frames:
            raise ValueError(f"the video is longer than {self.max_frames} frames; trim it or use the streaming method")
        if index > 0 and pixels.shape != self.first.shape:
            raise ValueError("all frames of a video must have the same size")
        return pixels

    def __getitem__(self, index: int) -> np.ndarray:
        """Frame ``index`` (RGB uint8); IndexError past the end."""
        if index < 0:
            raise IndexError(index)
        if index == 0 and getattr(self, "first", None) is not None:
            return self.first
        if self._items is not None:
            if index >= len(self._items):
                raise IndexError(index)
            return self._check(index, load_image(self._items[index]).pixels)
        if self._files is not None:
            if index >= len(self._files):
                raise IndexError(index)
            return self._check(index, load_image(self._files[index]).pixels)
        if self._path is not None:
            return self._check(index, self._decode(index))
        if index != 0:
            raise ValueError("a generator of frames can only be read forward, once")
        try:
            return load_image(next(self._stream)).pixels
        except StopIteration:
            raise ValueError("the video has no frames") from None

    def _decode(self, index: int) -> np.ndarray:
        if self._capture is None:
            self._capture = cv2.VideoCapture(str(self._path))
            if not self._capture.isOpened():
                self._capture = None
                raise ValueError(f"cannot open {self._path.name} as a video; use MP4 (H.264), AVI or GIF")
            self._position = 0
        if index != self._position:  # forward reads decode in order; anything else seeks
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._position = index
        ok, frame = self._capture.read()
        if not ok:
            if index == 0:
                raise ValueError(f"{self._path.name} has no readable frames")
            raise IndexError(index)
        self._position = index + 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def frames(self, start: int = 0, reverse: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """(index, pixels) from ``start`` to the end (or, ``reverse``, down to frame 0), one at a time."""
        if reverse:
            if not self.random_access:
                raise ValueError("a generator of frames cannot be read backwards: give a list, a folder or a file")
            for index in range(start, -1, -1):
                yield index, self[index]
            return
        if self._stream is not None:
            if start != 0:
                raise ValueError("a generator of frames can only be read from its first frame")
            if self._read:
                raise ValueError(
                    "a generator of frames can be read once: give a list, a folder or a file to read a clip again"
                )
            self._read = True
            rest = (load_image(frame).pixels for frame in self._stream)
            for index, pixels in enumerate(chain([self.first], rest)):
                yield index, self._check(index, pixels)
            return
        index = start
        while True:
            try:
                pixels = self[index]
            except IndexError:
                return
            yield index, pixels
            index += 1


def frames_of(video, max_frames: int | None = None) -> VideoFrames:
    """``video`` as :class:`VideoFrames` (returned as it is when it already is)."""
    return video if isinstance(video, VideoFrames) else VideoFrames(video, max_frames)
