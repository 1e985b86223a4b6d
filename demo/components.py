"""Input components whose bad values get a sentence.

Gradio's own components convert a value before the handler runs, so a 0-byte PNG, a text file named ``.png``
or a string sent as a threshold fails inside Gradio with an error that has no text. Each factory below builds
the ordinary Gradio component and wraps its ``preprocess`` (on the instance: a subclass would make Gradio write
a ``.pyi`` stub beside this file) so that failure becomes the message the visitor needs.
"""

from __future__ import annotations

import functools

import gradio as gr

from .common import user_error

IMAGE_FORMATS = "PNG, JPEG, BMP, TIFF or WebP"
VIDEO_FORMATS = "MP4 (H.264), AVI, MOV, WebM or GIF"


def _checked(component, check=None, failure=None, allow_none: bool = True):
    """``component`` with ``check(payload)`` run first and any other failure of its preprocess given a sentence;
    ``allow_none=False``: an absent value (JSON null) is checked too."""
    original = component.preprocess

    @functools.wraps(original)
    def preprocess(payload):
        if check is not None and (payload is not None or not allow_none):
            payload = check(payload)
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception as error:  # noqa: BLE001 - any failure here is the value's fault
            if failure is None:
                raise
            raise user_error(failure(payload, error)) from None

    component.preprocess = preprocess
    return component


def _name(payload) -> str:
    return getattr(payload, "orig_name", None) or "the upload"


def ImageInput(**kwargs) -> gr.Image:  # noqa: N802 - reads like the component it builds
    """``gr.Image`` passing the uploaded file's path (no mode conversion), so the pipeline reads it itself and
    reports what it changed (transparency flattened, downscaled)."""
    return _checked(
        gr.Image(type="filepath", image_mode=None, **kwargs),
        failure=lambda p, e: f"cannot read {_name(p)} as an image ({type(e).__name__}); upload a {IMAGE_FORMATS} file",
    )


def VideoInput(**kwargs) -> gr.Video:  # noqa: N802
    return _checked(
        gr.Video(**kwargs),
        failure=lambda p, e: f"cannot read {_name(p)} as a video ({type(e).__name__}); upload {VIDEO_FORMATS}",
    )


def NoMatchThreshold(value: float, **kwargs) -> gr.Slider:  # noqa: N802
    """The no-match threshold of an expression or question, starting at the checkpoint's own value."""
    return NumberInput(minimum=0.0, maximum=1.0, value=value, step=0.05, label="No-match threshold", **kwargs)


def NumberInput(**kwargs) -> gr.Slider:  # noqa: N802
    """``gr.Slider`` refusing non-numbers and values outside its range with a sentence."""
    slider = gr.Slider(**kwargs)
    what = slider.label or "the value"

    def check(payload):
        if isinstance(payload, bool):
            raise user_error(f"{what} must be a number, got {payload}")
        try:
            value = float(payload)
        except (TypeError, ValueError):
            raise user_error(f"{what} must be a number, got {str(payload)[:40]!r}") from None
        if not slider.minimum <= value <= slider.maximum:
            raise user_error(f"{what} must be between {slider.minimum:g} and {slider.maximum:g}, got {value:g}")
        return value

    return _checked(slider, check, allow_none=False)


def TextInput(**kwargs) -> gr.Textbox:  # noqa: N802
    """``gr.Textbox`` refusing a non-string API value (Gradio would pass a number or a list on)."""
    box = gr.Textbox(**kwargs)

    def check(payload):
        if not isinstance(payload, str):
            raise user_error(f"{box.label or 'the text'} must be a string, got {type(payload).__name__}")
        return payload

    return _checked(box, check)


def ChoiceInput(**kwargs) -> gr.Radio:  # noqa: N802
    """``gr.Radio`` answering an unknown API value with the list of choices."""
    radio = gr.Radio(**kwargs)

    def check(payload):
        choices = [value for _, value in radio.choices]
        if payload not in choices:
            raise user_error(
                f"{radio.label or 'the choice'} must be one of {', '.join(map(str, choices))}; "
                f"got {str(payload)[:40]!r}"
            )
        return payload

    return _checked(radio, check, allow_none=False)


def FlagInput(**kwargs) -> gr.Checkbox:  # noqa: N802
    """``gr.Checkbox`` refusing anything but true / false from the API."""
    box = gr.Checkbox(**kwargs)

    def check(payload):
        if not isinstance(payload, bool):
            raise user_error(f"{box.label or 'the flag'} must be true or false, got {str(payload)[:40]!r}")
        return payload

    return _checked(box, check, allow_none=False)
