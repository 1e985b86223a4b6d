"""Batch prediction over your own images and videos: one prompt spec, files out, resumable, any number of GPUs.

    python -m hyperseg_lite.predict photos/ --classes "person, dog, sky" --stuff sky --mode panoptic --out preds/
    python -m hyperseg_lite.predict "clips/*.mp4" --expression "the dog running left" --out preds/ --overlay
    python -m hyperseg_lite.predict @inputs.txt --question "what can hold water?" --out preds/
    python -m hyperseg_lite.predict img.jpg --regions regions.json --out preds/     # clicks / boxes / scribbles
    accelerate launch --num_processes 4 -m hyperseg_lite.predict big_folder/ --classes-file names.txt --out preds/

Inputs: files, folders (their images and videos), globs, or ``@list.txt`` (one path per line). Prompt (one):
``--classes`` / ``--classes-file`` (+ ``--mode``, ``--stuff``), ``--expression``, ``--question``, ``--regions``
(a JSON list of regions ``{"points": [[x, y]], "point_labels": [1], "box": [x0, y0, x1, y1], "scribble": [...]}``,
or ``{"<input file name>": [regions]}``; on a video, the regions prompt its first frame).

Per image ``NAME``: ``NAME.json`` (COCO RLE segments, labels, scores; written last, so it marks the input as
done), ``NAME.png`` (16-bit label map, 0 = background), with ``--mode panoptic`` ``NAME_panoptic.png`` (COCO
panoptic ids as R + 256 G + 256^2 B) and, once all inputs are done, ``panoptic.json`` (COCO panoptic format),
with ``--overlay`` ``NAME_overlay.jpg``. Per video: ``NAME.jsonl`` (one result per frame) and ``NAME/<frame>.png``.
Every file is written to a temporary name and renamed, so a killed run leaves no half file and a rerun skips
every finished input. An input that cannot be read is named on stderr and left out (exit status 1 at the end). Inputs
are read one at a time and videos streamed frame by frame: memory stays bounded.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .distributed import my_share, process_state, write_atomic
from .loading import EMBEDDED_CHECKPOINT

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v"}
PROMPT_KINDS = ("classes", "expression", "question", "regions")


class PredictError(ValueError):
    """Bad inputs or prompt; the message says what to change."""


def expand_inputs(specs: Iterable[str]) -> list[Path]:
    """Files, folders, globs and @lists -> the images and videos they name, in a stable order, once each."""
    found: list[Path] = []
    for spec in specs:
        if spec.startswith("@"):
            lines = Path(spec[1:]).read_text().splitlines()
            found.extend(expand_inputs([line.strip() for line in lines if line.strip() and not line.startswith("#")]))
            continue
        path = Path(spec)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(spec, recursive=True))
            if not matches:
                raise PredictError(f"{spec} is neither a file, a folder nor a glob that matches anything")
            found.extend(m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise PredictError("no images or videos among the inputs")
    return unique


def output_names(inputs: list[Path]) -> list[str]:
    """File stems, made unique with their parent folder's name where two inputs share one."""
    stems = [p.stem for p in inputs]
    names = []
    for path, stem in zip(inputs, stems):
        names.append(stem if stems.count(stem) == 1 else f"{path.parent.name}__{stem}")
    if len(set(names)) != len(names):
        names = [f"{n}__{k}" for k, n in enumerate(names)]
    return names


def load_regions(path: Path | None):
    if path is None:
        return None
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PredictError(f"cannot read the regions JSON {path}: {error}") from None
    if not isinstance(spec, (list, dict)):
        raise PredictError("the regions JSON is a list of regions or a {file name: [regions]} object")
    return spec


def regions_for(spec, path: Path):
    from .pipeline import Region

    chosen = spec.get(path.name, spec.get(str(path))) if isinstance(spec, dict) else spec
    if chosen is None:
        raise PredictError(f"the regions JSON has no entry for {path.name}")
    allowed = {"points", "point_labels", "box", "scribble"}
    regions = []
    for item in chosen:
        unknown = set(item) - allowed
        if unknown:
            raise PredictError(f"unknown region keys {sorted(unknown)}; use {sorted(allowed)}")
        regions.append(Region(**item))
    return regions


def panoptic_png(result) -> np.ndarray:
    """(H, W, 3) uint8 COCO panoptic PNG: segment id k + 1 of segment k as R + 256 G + 256^2 B."""
    ids = result.label_map().astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)


def _save_png(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    Image.fromarray(array).save(tmp)
    os.replace(tmp, path)


class Predictor:
    """Answers one prompt spec for one input at a time and writes its files (``run`` drives it)."""

    def __init__(self, pipe, args) -> None:
        self.pipe, self.args = pipe, args
        self.kind = next(k for k in PROMPT_KINDS if getattr(args, k) is not None)
        self.regions = load_regions(args.regions) if self.kind == "regions" else None

    def ask_image(self, path: Path):
        a = self.args
        if self.kind == "classes":
            return self.pipe.segment_classes(str(path), a.classes, mode=a.mode, stuff=a.stuff, threshold=a.threshold)
        if self.kind == "expression":
            return self.pipe.refer(str(path), a.expression)
        if self.kind == "question":
            return self.pipe.reason(str(path), a.question, explain=a.explain)
        return self.pipe.interactive(str(path), regions_for(self.regions, path))

    def ask_video(self, path: Path):
        a = self.args
        if self.kind == "classes":
            return self.pipe.video_instances_stream(str(path), a.classes, threshold=a.threshold)
        if self.kind in ("expression", "question"):
            return self.pipe.refer_video_stream(
                str(path), a.expression or a.question, reasoning=self.kind == "question"
            )
        return self.pipe.track_stream(str(path), regions_for(self.regions, path))

    def image(self, path: Path, name: str, out: Path) -> None:
        result = self.ask_image(path)
        _save_png(out / f"{name}.png", result.label_map())
        record = {"file": str(path), **result.to_dict()}
        if self.kind == "classes" and self.args.mode == "panoptic":
            _save_png(out / f"{name}_panoptic.png", panoptic_png(result))
            record["panoptic_png"] = f"{name}_panoptic.png"
        if self.args.overlay:
            pixels = np.asarray(Image.open(path).convert("RGB"))
            _save_png(out / f"{name}_overlay.png", result.overlay(pixels))
        write_atomic(out / f"{name}.json", json.dumps(record))  # last: marks the input as done

    def video(self, path: Path, name: str, out: Path) -> None:
        frames_dir = out / name
        frames_dir.mkdir(parents=True, exist_ok=True)
        partial = out / f".{name}.jsonl.{os.getpid()}.tmp"
        with open(partial, "w") as handle:
            for result in self.ask_video(path):  # streamed: one frame in memory at a time
                _save_png(frames_dir / f"{result.frame_index:05d}.png", result.label_map())
                handle.write(json.dumps({"file": str(path), **result.to_dict()}) + "\n")
        os.replace(partial, out / f"{name}.jsonl")  # last: marks the video as done


def done_marker(out: Path, name: str, path: Path) -> Path:
    return out / (f"{name}.jsonl" if path.suffix.lower() in VIDEO_SUFFIXES else f"{name}.json")


def merge_panoptic(out: Path, inputs: list[Path], names: list[str], classes: list[str], stuff: list[str]) -> Path:
    """One COCO panoptic JSON for every image (rank 0, after all processes finished)."""
    categories = [{"id": k + 1, "name": n, "isthing": int(n not in stuff)} for k, n in enumerate(classes)]
    images, annotations = [], []
    for image_id, (path, name) in enumerate(zip(inputs, names), 1):
        marker = out / f"{name}.json"
        if path.suffix.lower() in VIDEO_SUFFIXES or not marker.exists():
            continue
        record = json.loads(marker.read_text())
        height, width = record["image_size"]
        images.append({"id": image_id, "file_name": path.name, "height": height, "width": width})
        segments = [
            {"id": k + 1, "category_id": classes.index(s["label"]) + 1, "iscrowd": 0, "score": s["score"]}
            for k, s in enumerate(record["segments"])
        ]
        annotations.append({"image_id": image_id, "file_name": record["panoptic_png"], "segments_info": segments})
    target = out / "panoptic.json"
    write_atomic(target, json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return target


def run(args, pipe=None, after_each: Callable[[Path], None] | None = None) -> dict:
    """Predict every input not yet done; ``after_each(path)`` is called after each finished input (tests use it
    to stop a run midway). Returns counts (on every process: its own)."""
    state = process_state()
    inputs = expand_inputs(args.inputs)
    names = output_names(inputs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    predictor = Predictor(pipe, args)
    if predictor.regions is not None:  # a wrong regions file fails before the model is loaded
        for path in inputs:
            regions_for(predictor.regions, path)
    if pipe is None:
        from .pipeline import HyperSegPipeline

        predictor.pipe = HyperSegPipeline.from_pretrained(
            args.checkpoint, precision=args.precision, device_map=str(state.device)
        )
    counts = {"done": 0, "skipped": 0, "failed": 0}
    with my_share(state, list(range(len(inputs)))) as mine:
        for index in tqdm(
            mine,
            desc=f"predict ({state.process_index + 1}/{state.num_processes})",
            disable=not args.progress,
            position=state.process_index,
        ):
            path, name = inputs[index], names[index]
            if done_marker(out, name, path).exists():
                counts["skipped"] += 1
                continue
            try:
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    predictor.video(path, name, out)
                else:
                    predictor.image(path, name, out)
            except ValueError as error:  # an unreadable or unusable input: say so, go on; a rerun tries it again
                print(f"failed {path}: {error}", file=sys.stderr)
                counts["failed"] += 1
                continue
            counts["done"] += 1
            if after_each is not None:
                after_each(path)
    state.wait_for_everyone()
    if state.is_main_process and predictor.kind == "classes" and args.mode == "panoptic":
        merge_panoptic(out, inputs, names, args.classes, args.stuff)
    return counts


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="files, folders, globs or @list.txt")
    parser.add_argument("--out", type=Path, required=True)
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--classes", help="comma-separated class names")
    prompt.add_argument("--classes-file", type=Path, help="class names, one per line")
    prompt.add_argument("--expression", help="a referring expression")
    prompt.add_argument("--question", help="a reasoning question")
    prompt.add_argument("--regions", type=Path, help="regions JSON (clicks, boxes, scribbles)")
    parser.add_argument("--mode", default="panoptic", choices=["semantic", "instance", "panoptic"])
    parser.add_argument("--stuff", default="", help="comma-separated names among the classes that are stuff")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--explain", action="store_true", help="questions: also write the model's answer text")
    parser.add_argument("--overlay", action="store_true", help="also write NAME_overlay.png")
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--precision", default=None)
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    if args.classes_file is not None:
        args.classes = ",".join(line.strip() for line in args.classes_file.read_text().splitlines() if line.strip())
    args.classes, args.stuff = _names(args.classes), _names(args.stuff) or []
    if args.classes is not None and not set(args.stuff) <= set(args.classes):
        parser.error("every --stuff name must be one of the classes")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        counts = run(args)
    except ValueError as error:  # bad inputs, prompts or files: one sentence, no traceback
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    state = process_state()
    who = f"process {state.process_index + 1}/{state.num_processes}: " if state.num_processes > 1 else ""
    failed = f", {counts['failed']} failed (named above)" if counts["failed"] else ""
    print(f"{who}predicted {counts['done']} input(s), skipped {counts['skipped']} already done{failed} -> {args.out}")
    if counts["failed"]:
        raise SystemExit(1)
    return counts


if __name__ == "__main__":
    main()
