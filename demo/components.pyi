"""Upload components that answer an unreadable file with a sentence.

Gradio's own ``Image`` and ``Video`` open the upload before the handler runs, so a 0-byte PNG or a text file
named ``.png`` fails inside Gradio with an error that has no text. These keep Gradio's widgets (``is_template``
reuses the parent's front end) and turn that failure into the message the visitor needs.
"""

from __future__ import annotations

import gradio as gr

from .common import user_error

IMAGE_FORMATS = "PNG, JPEG, BMP, TIFF or WebP"
VIDEO_FORMATS = "MP4 (H.264), AVI, MOV, WebM or GIF"

from gradio.events import Dependency

class ImageInput(gr.Image):
    """``gr.Image`` passing the uploaded file's path (``type="filepath"``, no mode conversion) so the pipeline
    reads it itself and reports what it changed (transparency flattened, downscaled)."""

    is_template = True

    def __init__(self, **kwargs):
        super().__init__(type="filepath", image_mode=None, **kwargs)

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001 - any failure to open the upload is the file's fault
            name = getattr(payload, "orig_name", None) or "the upload"
            raise user_error(f"cannot read {name} as an image ({type(error).__name__}); "
                             f"upload a {IMAGE_FORMATS} file") from None
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class VideoInput(gr.Video):
    """``gr.Video`` whose unreadable uploads get a sentence instead of Gradio's blank error."""

    is_template = True

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001
            name = getattr(payload, "orig_name", None) or "the upload"
            raise user_error(f"cannot read {name} as a video ({type(error).__name__}); "
                             f"upload {VIDEO_FORMATS}") from None
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class NumberInput(gr.Slider):
    """``gr.Slider`` whose non-numeric or out-of-range API values get a sentence."""

    is_template = True

    def preprocess(self, payload):
        try:
            value = float(payload)
        except (TypeError, ValueError):
            raise user_error(f"{self.label or 'the value'} must be a number, got {str(payload)[:40]!r}") from None
        if not self.minimum <= value <= self.maximum:
            raise user_error(f"{self.label or 'the value'} must be between {self.minimum:g} and {self.maximum:g}, "
                             f"got {value:g}")
        return super().preprocess(value)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class TextInput(gr.Textbox):
    """``gr.Textbox`` that refuses a non-string API value with a sentence (Gradio would pass it on)."""

    is_template = True

    def preprocess(self, payload):
        if payload is not None and not isinstance(payload, str):
            raise user_error(f"{self.label or 'the text'} must be a string, got {type(payload).__name__}")
        return super().preprocess(payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class ChoiceInput(gr.Radio):
    """``gr.Radio`` whose unknown API values get the list of choices."""

    is_template = True

    def preprocess(self, payload):
        choices = [value for _, value in self.choices]
        if payload not in choices:
            raise user_error(f"{self.label or 'the choice'} must be one of {', '.join(map(str, choices))}; "
                             f"got {str(payload)[:40]!r}")
        return super().preprocess(payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class FlagInput(gr.Checkbox):
    """``gr.Checkbox`` that refuses anything but true / false from the API."""

    is_template = True

    def preprocess(self, payload):
        if not isinstance(payload, bool):
            raise user_error(f"{self.label or 'the flag'} must be true or false, got {str(payload)[:40]!r}")
        return super().preprocess(payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component