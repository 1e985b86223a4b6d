"""Reading one frame of a clip, counting its frames, and writing an H.264 MP4 frame by frame (ffmpeg)."""

from __future__ import annotations

import shutil
import subprocess
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from hyperseg_lite.pipeline import iter_video

DEFAULT_FPS = 8.0


def probe(video: str, limit: int) -> tuple[int, float, bool]:
    """(frames up to ``limit``, frames per second, whether the clip is longer than ``limit``), by decoding
    (container frame counts are often wrong); a file OpenCV cannot read gets the pipeline's sentence."""
    count = sum(1 for _ in iter_video(video, max_frames=limit + 1))
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    capture.release()
    return min(count, limit), (fps if 1 <= fps <= 120 else DEFAULT_FPS), count > limit


def read_frame(video: str, index: int) -> np.ndarray:
    """Frame ``index`` (0-based) as RGB uint8."""
    frame = next(islice(iter_video(video, max_frames=index + 1), index, None), None)
    if frame is None:
        raise ValueError(f"the video has no frame {index}")
    return frame


class H264Writer:
    """Frames in, a browser-playable MP4 out: ffmpeg's libx264 through a pipe (OpenCV's mp4v if no ffmpeg)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float) -> None:
        height, width = size
        self.path = path
        self.process = self.writer = None
        if shutil.which("ffmpeg"):
            command = [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                f"{width}x{height}",
                "-r",
                f"{fps:.3f}",
                "-i",
                "-",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                "-movflags",
                "+faststart",
                str(path),
            ]
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE)
        else:
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))

    def write(self, frame: np.ndarray) -> None:
        if self.process is not None:
            self.process.stdin.write(np.ascontiguousarray(frame).tobytes())
        else:
            self.writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> str:
        if self.process is not None:
            self.process.stdin.close()
            if self.process.wait() != 0:
                raise RuntimeError("ffmpeg could not encode the result video")
        else:
            self.writer.release()
        return str(self.path)
