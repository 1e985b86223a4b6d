"""Gradio tabs over one shared pipeline; ``build_demo`` composes them."""

from .builder import build_demo

__all__ = ["build_demo"]
