"""Write the app's example gallery from the world's test split: three scenes, one clip, and their prompts.

    python tools/make_examples.py            # -> assets/examples/world_*.png, world_clip.mp4, examples.json

The prompts are the world's own (true of each scene by construction), so the embedded model, trained on the
training split, meets unseen scenes of the kind it knows. The referring and reasoning examples are the first test
samples (from a fixed start) that the embedded model gets right (IoU >= 0.5): the gallery shows what the model can
do; what it cannot is measured in its model card and shown in ``notebooks/08_evaluation.ipynb``. Deterministic for
given weights.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation import jaccard
from hyperseg_lite.pipeline import HyperSegPipeline

OUT = Path(__file__).resolve().parent.parent / "assets" / "examples"


def _box_of(mask: np.ndarray) -> str:
    ys, xs = np.nonzero(mask)
    return f"{xs.min()}, {ys.min()}, {xs.max() + 1}, {ys.max() + 1}"


def _first_answered(world: World, pipe: HyperSegPipeline, task: str, start: int, limit: int = 200):
    """The first sample from ``start`` with a target that the model segments with IoU >= 0.5."""
    for index in range(start, start + limit):
        sample = world.sample(task, index)
        if sample.no_target:
            continue
        result = (
            pipe.refer(sample.image, sample.expression)
            if task == "referring"
            else pipe.reason(sample.image, sample.expression)
        )
        predicted = result.union() if len(result) else np.zeros(sample.image.shape[:2], bool)
        if jaccard(predicted, sample.masks.any(0)) >= 0.5:
            return sample
    raise SystemExit(f"no {task} sample from {start} to {start + limit} is answered well by this model")


def main() -> None:
    world = World("test", seed=2024, image_size=256, clip_length=(16, 16))
    pipe = HyperSegPipeline.from_pretrained()
    examples: dict = {"images": [], "video": None}
    for k, index in enumerate((1, 301, 601)):
        referring = _first_answered(world, pipe, "referring", index)
        reasoning = _first_answered(world, pipe, "reasoning", index)
        panoptic = world.sample("panoptic", index)
        # each task's prompt is only true of its own scene, so every task gets its sample's image
        name = f"world_{k + 1}.png"
        Image.fromarray(referring.image).save(OUT / name)
        Image.fromarray(reasoning.image).save(OUT / f"world_{k + 1}_question.png")
        examples["images"].append(
            {
                "image": name,
                "expression": referring.expression,
                "box": _box_of(referring.masks[0]),
                "question_image": f"world_{k + 1}_question.png",
                "question": reasoning.expression,
                "answer": reasoning.answer,
                "classes_image": f"world_{k + 1}_classes.png",
                "classes": ", ".join(panoptic.class_names),
                "stuff": panoptic.stuff_names,
            }
        )
        Image.fromarray(panoptic.image).save(OUT / f"world_{k + 1}_classes.png")
    clip = world.sample("vos", 0)
    frames = np.stack(clip.frames)
    height, width = frames.shape[1:3]
    path = OUT / "world_clip.mp4"
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
        "8",
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-crf",
        "18",
        str(path),
    ]
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed to write the example clip (apt-get install ffmpeg)")
    subprocess.run(command, input=frames.tobytes(), check=True)
    referring_video = world.sample("referring_video", 0)
    subprocess.run(
        command[:-1] + [str(OUT / "world_clip_referring.mp4")],
        input=np.stack(referring_video.frames).tobytes(),
        check=True,
    )
    examples["video"] = {
        "video": path.name,
        "box": _box_of(clip.frame_masks[0][0]),
        "referring_video": "world_clip_referring.mp4",
        "expression": referring_video.expression,
    }
    (OUT / "examples.json").write_text(json.dumps(examples, indent=2))
    print(json.dumps(examples, indent=2))


if __name__ == "__main__":
    main()
