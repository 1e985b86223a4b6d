"""ZeroGPU on Hugging Face Spaces: ``@spaces.GPU(duration=...)`` when the ``spaces`` package is installed.

On a ZeroGPU Space each handler borrows a GPU for at most ``duration`` seconds, so the duration is computed
from the request (a video's frame count); everywhere else ``spaces.GPU`` is a no-op, and without the package
the handler is returned unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

IMAGE_SECONDS = 60  # one image request (class lists with naming, or an explanation, generate text)
VIDEO_SECONDS_PER_FRAME = 0.5  # an allowance per frame for the 3B model on a ZeroGPU slice (an estimate, not measured)
VIDEO_BASE_SECONDS = 30


def video_duration(frames: int) -> int:
    """Seconds of GPU a video request may hold: a base for loading plus a budget per frame."""
    return int(VIDEO_BASE_SECONDS + VIDEO_SECONDS_PER_FRAME * max(0, frames))


def on_gpu(duration: int | Callable[..., int] = IMAGE_SECONDS):
    """Decorator: ``spaces.GPU(duration=duration)`` if ``spaces`` imports, else nothing.

    ``duration`` may be a function of the handler's arguments (``spaces`` calls it with them)."""

    def decorate(fn):
        try:
            import spaces
        except ImportError:
            return fn
        wrapped = spaces.GPU(duration=duration)(fn)
        return functools.wraps(fn)(wrapped) if wrapped is not fn else fn

    return decorate
