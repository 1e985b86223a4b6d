"""Tab 5: video, as SAM 2's demos: pick a frame with the slider, click include / exclude points or two box
corners on it, add objects, propagate forward and backward with a progress bar, reset. Or describe the object
(referring) or ask about it (reasoning, with the answer shown). Out: an H.264 video and per-frame masks.

Frames are decoded one at a time (``iter_video``) and results kept as run-length codes, so a long clip never
sits in memory; the clip is cut at ``MAX_FRAMES`` with a notice.
"""

from __future__ import annotations

import copy
import json

import gradio as gr

from hyperseg_lite.pipeline import Region, iter_video
from hyperseg_lite.pipeline.exporters import decode_rle
from hyperseg_lite.pipeline.overlay import draw_overlay

from .answers import TARGET_COLOURS, highlighted_answer, target_key
from .canvas import draw_prompts
from .common import (
    FrameWriter,
    clean_text,
    how_it_works,
    notice_lines,
    request_dir,
    user_errors,
)
from .components import FlagInput, NoMatchThreshold, TextInput, VideoInput
from .context import AppContext
from .gpu import on_gpu, video_duration
from .regions import parse_object
from .video_io import H264Writer, probe, read_frame

MAX_FRAMES = 300  # frames processed per request (stated in the UI); longer clips are cut, with a notice
UI_MAX_FRAMES = MAX_FRAMES
TOOLS = ["include point", "exclude point", "box (click two corners)"]
OBJECTS_EXAMPLE = '[{"frame": 0, "box": [10, 60, 70, 120]}, {"frame": 8, "points": [[40, 30]], "labels": [1]}]'


def empty_state() -> dict:
    return {
        "video": None,
        "frames": 0,
        "fps": 8.0,
        "notices": [],
        "frame": 0,
        "objects": [{}],
        "active": 0,
        "corner": None,
        "history": [],
    }


def load_state(video) -> dict:
    """A fresh state for a new clip: nothing of the previous clip's prompts kept."""
    state = empty_state()
    if not video:
        return state
    frames, fps, cut = probe(video, MAX_FRAMES)
    notices = [f"the clip is longer than {MAX_FRAMES} frames: only its first {MAX_FRAMES} are segmented"] if cut else []
    return state | {"video": str(video), "frames": frames, "fps": fps, "notices": notices}


def prompt_at(obj: dict, frame: int) -> dict:
    return obj.setdefault(str(frame), {"points": [], "labels": [], "box": None})


def to_region(prompt: dict) -> Region | None:
    if prompt["box"] is not None:
        return Region(box=prompt["box"])
    if 1 in prompt["labels"]:
        return Region(points=prompt["points"], point_labels=prompt["labels"])
    return None


def prompts_of(state: dict) -> list[tuple[int, int, Region]]:
    """(object id, frame, region) for every prompt ready to run; object ids count from 1 (their colour)."""
    ready = []
    for i, obj in enumerate(state["objects"]):
        for frame, prompt in sorted(obj.items(), key=lambda kv: int(kv[0])):
            region = to_region(prompt)
            if region is not None:
                ready.append((i + 1, int(frame), region))
    return ready


def copied(state: dict | None) -> dict:
    if not state or not state.get("video"):
        raise gr.Error("upload a video or pick an example first")
    return copy.deepcopy(state)


def click(state: dict, tool: str, x: float, y: float) -> tuple[dict, str]:
    """A click on the shown frame: an include / exclude point, or a box corner, for the active object."""
    state = copied(state)
    frame, obj = state["frame"], state["objects"][state["active"]]
    if tool.startswith("box"):
        if state["corner"] is None:
            state["corner"] = [float(x), float(y)]
            return state, "Box: now click the opposite corner."
        (x0, y0), state["corner"] = state["corner"], None
        prompt = prompt_at(obj, frame)
        prompt.update(points=[], labels=[], box=[min(x0, x), min(y0, y), max(x0, x), max(y0, y)])
        state["history"].append(("box", state["active"], frame))
    else:
        state["corner"] = None
        prompt = prompt_at(obj, frame)
        if prompt["box"] is not None:
            prompt["box"] = None
        prompt["points"].append([float(x), float(y)])
        prompt["labels"].append(1 if tool == "include point" else 0)
        state["history"].append(("point", state["active"], frame))
    return state, describe(state)


def describe(state: dict) -> str:
    """One line per object: on which frames it is prompted, and how."""
    lines = []
    for i, obj in enumerate(state["objects"]):
        parts = []
        for frame, prompt in sorted(obj.items(), key=lambda kv: int(kv[0])):
            if prompt["box"] is not None:
                parts.append(f"box on frame {frame}")
            elif prompt["points"]:
                include = sum(prompt["labels"])
                parts.append(f"{include} include / {len(prompt['labels']) - include} exclude clicks on frame {frame}")
        marker = " (active)" if i == state["active"] else ""
        lines.append(f"object {i + 1}{marker}: {', '.join(parts) or 'no prompt yet'}")
    return "  \n".join(lines + ["Press **Propagate** when every object is prompted."])


def undo(state: dict) -> tuple[dict, str]:
    state = copied(state)
    state["corner"] = None
    if not state["history"]:
        return state, "Nothing to undo."
    action, index, frame = state["history"].pop()
    if action == "object":
        state["objects"].pop(index)
        state["active"] = max(0, min(state["active"], len(state["objects"]) - 1))
        return state, describe(state)
    prompt = state["objects"][index][str(frame)]
    if action == "point":
        prompt["points"].pop()
        prompt["labels"].pop()
    else:
        prompt["box"] = None
    if not prompt["points"] and prompt["box"] is None:
        del state["objects"][index][str(frame)]
    return state, describe(state)


def new_object(state: dict) -> tuple[dict, str]:
    state = copied(state)
    state["corner"] = None
    if not state["objects"][state["active"]]:
        return state, describe(state)
    state["objects"].append({})
    state["active"] = len(state["objects"]) - 1
    state["history"].append(("object", state["active"], state["frame"]))
    return state, describe(state)


def reset(state: dict) -> dict:
    """Every prompt removed; the clip stays."""
    state = copied(state)
    return state | {"objects": [{}], "active": 0, "corner": None, "history": []}


def show_frame(state: dict | None, ctx: AppContext | None = None):
    """The slider's frame with the prompts placed on it and, given ``ctx``, a preview of the masks of the objects
    prompted on this frame (that frame alone, as an image: what propagation starts from)."""
    if not state or not state.get("video"):
        return None
    frame = state["frame"]
    pixels = read_frame(state["video"], frame)
    objects = []
    for obj in state["objects"]:
        prompt = obj.get(str(frame), {"points": [], "labels": [], "box": None})
        objects.append({"points": prompt["points"], "labels": prompt["labels"], "box": prompt["box"]})
    masks = [None] * len(objects)
    ready = [(i, to_region(o)) for i, o in enumerate(objects)]
    ready = [(i, r) for i, r in ready if r is not None]
    if ctx is not None and ready:
        preview = ctx.pipe.interactive(pixels, [r for _, r in ready])
        for k, (i, _) in enumerate(ready):
            masks[i] = preview.masks[k]
    return draw_prompts(pixels, objects, masks, state["corner"], state["active"])


# ---------------------------------------------------------------- propagation
def track(ctx: AppContext, state: dict, prompts: list[tuple[int, int, Region]]):
    """Per-frame result dicts (frame order not guaranteed): backward from the last prompted frame to frame 0,
    then forward from the first prompted frame to the end; where both passes cover a frame, each object keeps
    the mask it scored higher (the pass that had already seen its prompt)."""
    count = state["frames"]
    session = ctx.pipe.video_session(state["video"])
    try:
        for object_id, frame, region in prompts:
            session.add_prompt(frame, object_id, region)
        first, last = min(f for _, f, _ in prompts), max(f for _, f, _ in prompts)
        backward = {}
        if last > 0:
            for index, result in session.propagate(start_frame=last, reverse=True):
                backward[index] = result.to_dict()
                yield None
        for index, result in session.propagate(start_frame=first):
            yield merged(result.to_dict(), backward.pop(index, None))
            if index >= count - 1:  # the cap: stop before the session decodes the next frame
                break
        yield from (merged(frame, None) for frame in backward.values())
    finally:
        session.close()


def merged(frame: dict, other: dict | None) -> dict:
    """One frame's segments from two passes: per object id, the higher-scoring mask; named "object <id>"."""
    best = {}
    for segment in frame["segments"] + (other["segments"] if other else []):
        if segment["id"] not in best or segment["score"] > best[segment["id"]]["score"]:
            best[segment["id"]] = segment
    segments = [dict(best[i], label=f"object {i}") for i in sorted(best)]
    notices = list(dict.fromkeys(frame["notices"] + (other or frame)["notices"]))
    return frame | {"segments": segments, "notices": notices}


def write_video(state: dict, writer: FrameWriter, progress) -> str:
    """The overlay video, decoding each frame again and its masks from their run-length codes."""
    by_frame = {f["frame_index"]: f for f in writer.frames}
    out = None
    for index, pixels in enumerate(iter_video(state["video"], max_frames=state["frames"])):
        if out is None:
            out = H264Writer(request_dir() / "overlay.mp4", pixels.shape[:2], state["fps"])
        segments = by_frame.get(index, {}).get("segments", [])
        masks = decode_rle(segments) if segments else None
        if masks is not None and masks.shape[1:] == pixels.shape[:2]:
            pixels = draw_overlay(
                pixels, masks, [s["label"] for s in segments], [s["id"] for s in segments], legend=False
            )
        out.write(pixels)
        progress((index + 1, state["frames"]), desc="writing the video", unit="frames")
    return out.close()


def propagate(ctx: AppContext, state: dict, progress) -> tuple[str, list[str], list[str]]:
    """(video path, download files, notices) for the clicked / boxed objects."""
    prompts = prompts_of(state)
    if not prompts:
        raise gr.Error("click on an object (include point) or draw a box on some frame first")
    first, last = min(f for _, f, _ in prompts), max(f for _, f, _ in prompts)
    steps = (last + 1 if last > 0 else 0) + state["frames"] - first
    writer, notices = FrameWriter(), list(state["notices"])
    for done, frame in enumerate(track(ctx, state, prompts), 1):
        progress((min(done, steps), steps), desc="propagating", unit="frames")
        if frame is not None:
            notices += frame["notices"]
            writer.add(frame)
    notices = list(dict.fromkeys(notices))
    return write_video(state, writer, progress), writer.files(notices), notices


def segment_text(ctx: AppContext, state: dict, expression: str, reasoning: bool, threshold: float, progress):
    """(video path, files, notices, highlighted answer, colour map) for an expression or a question."""
    writer, notices = FrameWriter(), list(state["notices"])
    stream = ctx.pipe.refer_video_stream(
        iter_video(state["video"], max_frames=state["frames"]), expression, reasoning=reasoning, threshold=threshold
    )
    first = None
    for result in stream:
        first = first or result
        notices += result.notices
        writer.add(result.to_dict())
        progress((result.frame_index + 1, state["frames"]), desc="segmenting", unit="frames")
    answer = expression
    if reasoning:  # the explanation, from the first frame (the video path itself returns masks only)
        answer = (
            ctx.pipe.reason(read_frame(state["video"], 0), expression, explain=True, threshold=threshold).answer or ""
        )
    pieces = highlighted_answer(answer, expression, first) if first is not None else []
    if not reasoning and first is not None and not first.no_match:  # the expression names the object
        pieces = [(clean_text(expression), target_key(first, 0))]
    notices = list(dict.fromkeys(notices))
    return write_video(state, writer, progress), writer.files(notices), notices, pieces


def parse_objects(text: str) -> list[dict]:
    """The API's ``objects`` JSON -> per-object prompt dicts keyed by frame (as the UI builds them)."""
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"objects must be JSON ({error.msg}), e.g. {OBJECTS_EXAMPLE}") from None
    if isinstance(spec, dict):
        spec = [spec]
    if not isinstance(spec, list) or not spec:
        raise ValueError(f"objects must be a JSON list, e.g. {OBJECTS_EXAMPLE}")
    objects = []
    for n, item in enumerate(spec, 1):
        if not isinstance(item, dict):
            raise ValueError(f"object {n} must be a JSON object, e.g. {OBJECTS_EXAMPLE}")
        frame = item.get("frame", 0)
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise ValueError(f"object {n}: frame must be a frame number (0 = the first frame)")
        region = parse_object({k: v for k, v in item.items() if k != "frame"}, n)
        if region.scribble is not None:
            raise ValueError(f"object {n}: video objects take points or a box")
        prompt = {"points": [], "labels": [], "box": None}
        if region.box is not None:
            prompt["box"] = list(region.box)
        else:
            prompt.update(points=[list(p) for p in region.points], labels=list(region.point_labels))
        objects.append({str(frame): prompt})
    return objects


def video_seconds(*args, **kwargs) -> int:
    """ZeroGPU duration of a video request, from its frame count (the state, or the clip itself)."""
    for value in args:
        if isinstance(value, dict) and value.get("frames"):
            return video_duration(value["frames"])
    return video_duration(MAX_FRAMES)


def status_text(ctx: AppContext, state: dict, notices: list[str], head: str) -> str:
    return "  \n".join([head, *notice_lines(notices, ctx.caveat)])


def build(ctx: AppContext, examples: list[list]) -> None:
    with gr.Tab("Video"):
        state = gr.State(empty_state())
        with gr.Row():
            with gr.Column():
                video = VideoInput(
                    label=f"Video (MP4 / AVI / GIF; the first {MAX_FRAMES} frames are segmented)",
                    sources=["upload"],
                    elem_id="video-input",
                    height=240,
                )
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame to prompt", elem_id="video-frame")
                tool = gr.Radio(TOOLS, value=TOOLS[0], label="A click on the frame adds", elem_id="video-tool")
                with gr.Row():
                    undo_button = gr.Button("Undo", elem_id="video-undo")
                    object_button = gr.Button("New object", elem_id="video-new-object")
                    reset_button = gr.Button("Reset", elem_id="video-reset")
                run = gr.Button("Propagate (forward and backward)", variant="primary", elem_id="video-run")
                with gr.Accordion("Or describe the object (referring) / ask about it (reasoning)", open=False):
                    expression = TextInput(
                        label="Expression or question", placeholder="the blue ring", elem_id="video-text"
                    )
                    reasoning = FlagInput(value=False, label="It is a question (reasoning; the answer is shown)")
                    threshold = NoMatchThreshold(ctx.pipe.referring_threshold())
                    text_run = gr.Button("Segment the clip", elem_id="video-text-run")
            with gr.Column():
                canvas = gr.Image(
                    label="Frame: click here (green = include, red = exclude)",
                    interactive=False,
                    type="numpy",
                    elem_id="video-canvas",
                )
                status = gr.Markdown(elem_id="video-status")
                output = gr.Video(label="Result (H.264)", elem_id="video-output")
                answer = gr.HighlightedText(
                    label="Answer: the target's name in its mask's colour",
                    show_legend=False,
                    show_inline_category=True,
                    color_map=TARGET_COLOURS,
                    elem_id="video-answer",
                )
                files = gr.File(label="Per-frame masks (label PNGs) and COCO RLE JSON", file_count="multiple")
        with gr.Row(visible=False):
            api_objects = TextInput(label="objects")

        @ctx.gpu
        @user_errors
        def on_video(path):
            new_state = load_state(path)
            if not new_state["video"]:
                return new_state, None, gr.Slider(0, 1, value=0), "", None, None, []
            slider = gr.Slider(
                0,
                max(1, new_state["frames"] - 1),
                value=0,
                step=1,
                label=f"Frame to prompt (0-{new_state['frames'] - 1})",
                interactive=new_state["frames"] > 1,
            )
            head = f"{new_state['frames']} frames. Click on an object in any frame."
            return (
                new_state,
                show_frame(new_state, ctx),
                slider,
                status_text(ctx, new_state, new_state["notices"], head),
                None,
                None,
                [],
            )

        @ctx.gpu
        @user_errors
        def on_frame(st, index):
            if not st or not st.get("video"):
                return st, None
            st = copy.deepcopy(st) | {"frame": int(min(max(0, index), max(0, st["frames"] - 1))), "corner": None}
            return st, show_frame(st, ctx)

        def prompting(fn):
            @ctx.gpu
            @user_errors
            def handler(*args):
                new_state, message = fn(*args)
                return new_state, show_frame(new_state, ctx), message

            return handler

        @ctx.gpu
        @user_errors
        def on_click(st, tool_name, evt: gr.SelectData):  # Gradio passes the click by this annotation
            new_state, message = click(st, tool_name, evt.index[0], evt.index[1])
            return new_state, show_frame(new_state, ctx), message

        @on_gpu(video_seconds)
        @user_errors
        def on_propagate(st, progress=gr.Progress()):
            st = copied(st)
            path, downloads, notices = propagate(ctx, st, progress)
            head = f"Propagated {len(prompts_of(st))} prompt(s) over {st['frames']} frames."
            return path, downloads, status_text(ctx, st, notices, head)

        @on_gpu(video_seconds)
        @user_errors
        def on_text(st, text, is_question, limit, progress=gr.Progress()):
            st = copied(st)
            path, downloads, notices, pieces = segment_text(ctx, st, text, is_question, limit, progress)
            return path, downloads, status_text(ctx, st, notices, f"Segmented {st['frames']} frames."), pieces

        prompt_outputs = [state, canvas, status]
        # every event that changes the prompts runs alone and in order, each on the state the one before left
        edits = {
            "api_visibility": "private",
            "concurrency_id": "video-prompts",
            "concurrency_limit": 1,
            "trigger_mode": "multiple",
        }
        video.change(on_video, video, [state, canvas, frame, status, output, files, answer], **edits)
        frame.change(on_frame, [state, frame], [state, canvas], show_progress="hidden", **edits)
        canvas.select(on_click, [state, tool], prompt_outputs, **edits)
        undo_button.click(prompting(undo), state, prompt_outputs, **edits)
        object_button.click(prompting(new_object), state, prompt_outputs, **edits)
        reset_button.click(
            prompting(lambda st: (reset(st), "Reset: every prompt removed.")), state, prompt_outputs, **edits
        ).then(lambda: (None, None, []), None, [output, files, answer], api_visibility="private")
        run.click(on_propagate, state, [output, files, status], api_visibility="private")
        text_run.click(
            on_text,
            [state, expression, reasoning, threshold],
            [output, files, status, answer],
            api_visibility="private",
        )

        @on_gpu(video_seconds)
        @user_errors
        def segment_video(
            video: str,
            objects: str | None = None,
            expression: str | None = None,
            reasoning: bool = False,
            threshold: float = ctx.pipe.referring_threshold(),
            progress=gr.Progress(),
        ):
            """Objects as JSON (points / box on any frame), or an expression / question: the overlay video,
            the answer, a status line and the per-frame masks."""
            if not video:
                raise gr.Error("give a video")
            if bool((objects or "").strip()) == bool((expression or "").strip()):
                raise gr.Error(f"give either objects (JSON, e.g. {OBJECTS_EXAMPLE}) or an expression, not both")
            st = load_state(video)
            if (objects or "").strip():
                st["objects"] = parse_objects(objects)
                path, downloads, notices = propagate(ctx, st, progress)
                return path, [], status_text(ctx, st, notices, f"{len(st['objects'])} object(s)"), downloads
            path, downloads, notices, pieces = segment_text(ctx, st, expression, reasoning, threshold, progress)
            return path, pieces, status_text(ctx, st, notices, f"Segmented {st['frames']} frames."), downloads

        api_objects.submit(
            segment_video,
            [video, api_objects, expression, reasoning, threshold],
            [output, answer, status, files],
            api_name="segment_video",
        )
        gr.Examples(examples, [video])
        gr.Markdown(
            how_it_works(
                "Frames are segmented one by one. The prompt embeddings are averaged over the frames "
                "seen so far and the perceiver's tokens of frame t-1 seed frame t (temporal adapter). "
                "Each frame keeps the mask that best continues the one chosen on the frame before; "
                "frames before the first prompted one are tracked backward from it.",
                "06_temporal_adapter.ipynb",
            )
        )
