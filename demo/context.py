"""What every tab needs: the shared pipeline and how results are captioned, passed explicitly (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from hyperseg_lite.pipeline import HyperSegPipeline

from .gpu import on_gpu


@dataclass
class AppContext:
    pipe: HyperSegPipeline
    trained_on: str
    caveat: str | None = None  # one line under every result (the embedded model knows only the shapes world)
    cache_examples: bool = True  # lazily: an example runs on its first click, then is served from the cache

    @property
    def gpu(self):
        """Decorator for an image handler: a ZeroGPU slot on Spaces, nothing elsewhere."""
        return on_gpu()
