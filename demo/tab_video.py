"""Tab 5: video. Prompt the first frame with a box / clicks or with text, propagate with a progress bar,
get a browser-playable H.264 video with overlays and the per-frame masks."""

from __future__ import annotations

import shutil
import subprocess

import cv2
import gradio as gr
import numpy as np

from hyperseg_lite.pipeline import HyperSegPipeline, Region, load_video

from .common import downloads, how_it_works, parse_box, request_dir, user_errors

UI_MAX_FRAMES = 300  # the Space's limit per clip (stated in the UI)


def encode_h264(frames: list[np.ndarray], fps: float) -> str:
    """Write frames as H.264 MP4 with ffmpeg (browsers play it); OpenCV's mp4v is the fallback."""
    folder = request_dir()
    path = folder / "overlay.mp4"
    height, width = frames[0].shape[:2]
    if shutil.which("ffmpeg"):
        command = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                   "-r", f"{fps:.3f}", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                   "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-movflags", "+faststart", str(path)]
        subprocess.run(command, input=b"".join(f.tobytes() for f in frames), check=True)
        return str(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


def fps_of(video) -> float:
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    capture.release()
    return fps if 1 <= fps <= 120 else 8.0


def propagate(pipe: HyperSegPipeline, video, prompt_kind: str, box_text: str, expression: str,
              progress=gr.Progress()):
    if not video:
        raise gr.Error("upload a video or pick an example")
    frames = load_video(video, max_frames=UI_MAX_FRAMES)
    if prompt_kind == "box on the first frame":
        stream = pipe.track_stream(frames, Region(box=parse_box(box_text)))
    else:
        stream = pipe.refer_video_stream(frames, expression, reasoning=prompt_kind == "question")
    results, overlays = [], []
    for result in progress.tqdm(stream, total=len(frames), desc="propagating"):
        results.append(result)
        overlays.append(result.overlay(frames[result.frame_index], legend=False))
    return encode_h264(overlays, fps_of(video)), downloads(results)


def build(pipe: HyperSegPipeline, examples: list[list]) -> None:
    with gr.Tab("Video"):
        with gr.Row():
            with gr.Column():
                video = gr.Video(label=f"Video (mp4 / avi / gif, at most {UI_MAX_FRAMES} frames)", sources=["upload"], elem_id="video-input")
                prompt_kind = gr.Radio(["box on the first frame", "expression", "question"],
                                       value="box on the first frame", label="Prompt")
                box_text = gr.Textbox(label="First-frame box (x0, y0, x1, y1)", value="10, 60, 70, 120", elem_id="video-box")
                expression = gr.Textbox(label="Expression or question", placeholder="the blue ring")
                run = gr.Button("Propagate", variant="primary", elem_id="video-run")
            with gr.Column():
                output = gr.Video(label="Result (H.264)", elem_id="video-output")
                files = gr.File(label="Per-frame masks (label PNGs) and COCO RLE JSON", file_count="multiple")
        handler = user_errors(lambda v, k, b, e, progress=gr.Progress(): propagate(pipe, v, k, b, e, progress))
        run.click(handler, [video, prompt_kind, box_text, expression], [output, files], api_name="segment_video")
        gr.Examples(examples, [video, prompt_kind, box_text, expression])
        gr.Markdown(how_it_works("Frames are segmented one by one. The prompt embeddings are averaged over the frames "
                                 "seen so far and the perceiver's tokens of frame t-1 seed frame t (temporal adapter). "
                                 "Each frame keeps the mask that best continues the one chosen on the frame before.",
                                 "06_temporal_adapter.ipynb"))
