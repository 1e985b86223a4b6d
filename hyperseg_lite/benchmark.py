"""Score a checkpoint on a benchmark in its own format, with the paper's protocol and metric, beside the paper.

    python -m hyperseg_lite.benchmark --task refcoco --data DIR --split val --checkpoint weic22/HyperSeg-3B
    accelerate launch --num_processes 8 -m hyperseg_lite.benchmark --task coco-panoptic --data coco --out runs/
    python -m hyperseg_lite.benchmark --task world-referring --split test --samples 100   # the procedural world

Tasks (``--data`` formats: :mod:`hyperseg_lite.benchmarks_data`): refcoco, refcoco+, refcocog (cIoU, gIoU),
grefcoco (cIoU, gIoU, N-acc, T-acc), reasonseg (gIoU, cIoU), coco-panoptic and ade20k-panoptic (PQ, and mIoU
from the same prediction), ade20k, pascal-context-59, pascal-voc-20 (mIoU), davis17, youtube-vos (J&F),
ref-youtube-vos, ref-davis17, revos, reasonvos (J&F; ReVOS also per referring / reasoning), and world-<task> for
the world's splits (the numbers of ``hyperseg_lite.evaluate``). Every sample runs through ``HyperSegPipeline``.

Under ``accelerate launch`` each process takes a contiguous share of the samples and writes its records to
``<out>/<task>-<split>/``; rank 0 merges them after a barrier and scores from summed records
(``benchmarks_data.scoring``), so N processes give exactly the numbers of one. Each process also journals its
records as it goes: the same command run again after a kill scores only the missing samples. Writes
``<out>/<task>-<split>.json`` and prints our figure beside the paper's (``benchmarks_data/paper_results.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import benchmarks_data as data
from .benchmarks_data import scoring
from .distributed import Journal, my_share, process_state, read_parts, write_atomic, write_part
from .loading import EMBEDDED_CHECKPOINT

PAPER_RESULTS = Path(__file__).with_name("benchmarks_data") / "paper_results.json"
WORLD_TASKS = ("referring", "reasoning", "semantic", "panoptic", "vos", "referring_video")


@dataclass
class Benchmark:
    """How one benchmark reads (``reader``), answers one sample (``score``: sample -> record) and sums up."""

    reader: object
    score: Callable
    reduce: Callable
    headline: tuple[str, ...]


# ---------------------------------------------------------------- image tasks
def text_benchmark(reader, pipe, reasoning: bool = False, generalized: bool = False) -> Benchmark:
    def score(sample):
        ask = pipe.reason if reasoning else pipe.refer
        pred = ask(str(sample.image), sample.text).union()
        return scoring.text_record(pred, sample.mask, sample.ignore)

    headline = ("gIoU", "cIoU") if reasoning else ("cIoU", "gIoU")
    if generalized:  # gRefCOCO: N-acc (no-target expressions answered empty) and T-acc (targets answered)
        headline += ("no_target_accuracy", "target_accuracy")
    return Benchmark(reader, score, scoring.text_metrics, headline)


def _panoptic_pred(result, size, category_of: Callable[[str], int]) -> np.ndarray:
    pred = np.zeros((*size, 2), dtype=np.int64)
    pred[..., 0] = scoring.UNLABELLED
    for mask, label, seg_id in zip(result.masks, result.labels, result.ids):
        pred[mask] = (category_of(label), seg_id)
    return pred


def coco_panoptic_benchmark(reader: data.COCOPanopticReader, pipe) -> Benchmark:
    ids = reader.category_ids
    things = {ids[n] for n in reader.things}
    stuffs = {ids[n] for n in reader.stuff}
    classes = sorted(ids.values())

    def score(sample):
        result = pipe.segment_classes(str(sample.image), reader.class_names, mode="panoptic", stuff=reader.stuff)
        pred = _panoptic_pred(result, sample.target.shape[:2], ids.__getitem__)
        record = scoring.panoptic_record(pred, sample.target, things, stuffs)
        record.update(
            scoring.class_iou_record(pred[..., 0], sample.target[..., 0], classes, valid=sample.target[..., 0] > 0)
        )
        return record

    def reduce(records):
        return {**scoring.panoptic_quality(records, things, stuffs), "mIoU": scoring.miou(records, classes)["mIoU"]}

    return Benchmark(reader, score, reduce, ("PQ", "mIoU"))


def semantic_benchmark(reader: data.SemanticReader, pipe) -> Benchmark:
    names = reader.class_names
    classes = list(range(len(names)))

    def score(sample):
        result = pipe.segment_classes(str(sample.image), names, mode="semantic")
        pred = np.full(sample.label.shape, -1, dtype=np.int64)
        for mask, label in zip(result.masks, result.labels):
            pred[mask] = names.index(label)
        return scoring.class_iou_record(pred, sample.label, classes, valid=sample.label >= 0)

    return Benchmark(reader, score, lambda records: scoring.miou(records, classes), ("mIoU",))


# ---------------------------------------------------------------- video tasks
def vos_benchmark(reader: data.VOSReader, pipe) -> Benchmark:
    from .pipeline import Region

    def score(sample):
        last = len(sample.frames) - 1
        objects = {}
        for start in sorted(set(sample.starts.values())):  # objects given on the same frame are tracked together
            ids = [o for o, s in sample.starts.items() if s == start]
            given = sample.object_mask(start)
            meters = {o: scoring.JFMeter() for o in ids}
            stream = pipe.track_stream([str(f) for f in sample.frames[start:]], [Region(mask=given == o) for o in ids])
            for t, result in enumerate(stream, start):
                if t == start or (sample.drop_last and t == last):
                    continue
                truth = sample.object_mask(t)
                if truth is None:
                    continue
                for k, o in enumerate(ids):
                    meters[o].add(result.masks[k], truth == o)
            objects.update({o: m.result() for o, m in meters.items() if m.j})
        return {"objects": [objects[o] for o in sorted(objects)]}

    return Benchmark(reader, score, scoring.video_metrics, ("J&F", "J", "F"))


def refvos_benchmark(reader: data.RefVOSReader, pipe, reasoning: bool | None = None) -> Benchmark:
    def score(sample):
        meter = scoring.JFMeter()
        ask_reasoning = sample.kind == "reasoning" if reasoning is None else reasoning
        for t, result in enumerate(
            pipe.refer_video_stream([str(f) for f in sample.frames], sample.text, reasoning=ask_reasoning)
        ):
            truth = sample.masks(t, result.image_size)
            if truth is not None:
                meter.add(result.union(), truth)
        return {"objects": [meter.result()] if meter.j else [], "kind": sample.kind}

    headline = ("J&F", "J", "F") + (("J&F_referring", "J&F_reasoning") if reasoning is None else ())
    return Benchmark(reader, score, scoring.video_metrics, headline)


# ---------------------------------------------------------------- the procedural world (hyperseg_lite.evaluate)
class WorldReader:
    def __init__(self, world, task: str, n: int) -> None:
        self.world, self.task, self.n = world, task, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        return self.world.sample(self.task, index)


def world_benchmark(task: str, pipe, split: str, seed: int, samples: int, clip_length=(8, 16)) -> Benchmark:
    """The world's evaluation loops (``evaluation.tasks``) as per-sample records: the same calls, the same sums."""
    from .data.vocabulary import ALL_CLASS_NAMES, CATEGORIES, STUFF_NAMES
    from .data.world import World
    from .pipeline import Region

    if task not in WORLD_TASKS:
        raise ValueError(f"world tasks are {WORLD_TASKS}")
    world = World(split, seed, image_size=pipe.model.config.image_size, clip_length=tuple(clip_length))
    reader = WorldReader(world, task, samples)
    category = {name: k + 1 for k, name in enumerate(ALL_CLASS_NAMES)}  # 0 = void

    if task in ("referring", "reasoning"):

        def score(sample):
            size = sample.image.shape[:2]
            ask = pipe.refer if task == "referring" else pipe.reason
            gt = sample.masks.any(0) if len(sample.masks) else np.zeros(size, dtype=bool)
            return scoring.text_record(ask(sample.image, sample.expression).union(), gt)

        def reduce(records):
            metrics = scoring.text_metrics(records)
            if task == "reasoning":
                metrics = {k: metrics[k] for k in ("cIoU", "gIoU", "samples")}
            return metrics

        return Benchmark(reader, score, reduce, ("cIoU", "gIoU"))
    if task == "semantic":

        def score(sample):
            size = sample.image.shape[:2]
            result = pipe.segment_classes(sample.image, sample.class_names, mode="semantic")
            inter, union = {}, {}
            for k, name in enumerate(sample.class_names):
                gt = sample.masks[sample.labels == k].any(0) if (sample.labels == k).any() else np.zeros(size, bool)
                picked = [m for m, label in zip(result.masks, result.labels) if label == name]
                pred = np.any(picked, axis=0) if picked else np.zeros(size, bool)
                inter[name] = inter.get(name, 0) + int((gt & pred).sum())
                union[name] = union.get(name, 0) + int((gt | pred).sum())
            return {"class_intersection": inter, "class_union": union}

        return Benchmark(reader, score, lambda records: scoring.miou(records, list(ALL_CLASS_NAMES)), ("mIoU",))
    if task == "panoptic":
        things = {category[c] for c in CATEGORIES}
        stuffs = {category[s] for s in STUFF_NAMES}

        def score(sample):
            size = sample.image.shape[:2]
            result = pipe.segment_classes(sample.image, sample.class_names, mode="panoptic", stuff=sample.stuff_names)
            target = np.zeros((*size, 2), dtype=np.int64)
            for mask, label, seg_id in zip(sample.masks, sample.labels, sample.instance_ids):
                target[mask] = (category[sample.class_names[label]], seg_id)
            return scoring.panoptic_record(_panoptic_pred(result, size, category.__getitem__), target, things, stuffs)

        return Benchmark(reader, score, lambda records: scoring.panoptic_quality(records, things, stuffs), ("PQ",))
    if task == "vos":

        def score(sample):
            first = sample.frame_masks[0]
            meters = [scoring.JFMeter() for _ in range(first.shape[0])]
            for t, result in enumerate(pipe.track_stream(sample.frames, [Region(mask=m) for m in first])):
                if t:
                    for k, meter in enumerate(meters):
                        meter.add(result.masks[k], sample.frame_masks[t][k])
            return {"objects": [m.result() for m in meters]}

        return Benchmark(reader, score, scoring.video_metrics, ("J&F",))

    def score(sample):  # referring_video
        meter = scoring.JFMeter()
        for t, result in enumerate(pipe.refer_video_stream(sample.frames, sample.expression)):
            meter.add(result.union(), sample.frame_masks[t][0])
        return {"objects": [meter.result()]}

    return Benchmark(reader, score, scoring.video_metrics, ("J&F",))


# ---------------------------------------------------------------- the task table
TASKS = (
    "refcoco",
    "refcoco+",
    "refcocog",
    "grefcoco",
    "reasonseg",
    "coco-panoptic",
    "ade20k-panoptic",
    "ade20k",
    "pascal-context-59",
    "pascal-voc-20",
    "davis17",
    "youtube-vos",
    "ref-youtube-vos",
    "ref-davis17",
    "revos",
    "reasonvos",
    *(f"world-{t}" for t in WORLD_TASKS),
)


def make_reader(task: str, args):
    """The benchmark's reader (None for world tasks, whose world needs the model's image size): built before the
    model is loaded, so a wrong folder is reported at once."""
    if task.startswith("world-"):
        return None
    if args.data is None:
        raise ValueError(f"--data is required for {task} (the folder in the benchmark's own format)")
    if task in ("refcoco", "refcoco+", "refcocog", "grefcoco"):
        return data.RefCOCOReader(args.data, task, args.split, args.images)
    if task == "reasonseg":
        return data.ReasonSegReader(args.data, args.split)
    if task in ("coco-panoptic", "ade20k-panoptic"):
        return data.COCOPanopticReader(args.data, args.split, "coco" if task == "coco-panoptic" else "ade20k")
    if task in ("ade20k", "pascal-context-59", "pascal-voc-20"):
        return data.SemanticReader(args.data, task, args.split, args.classes)
    if task in ("davis17", "youtube-vos"):
        return data.VOSReader(args.data, "davis" if task == "davis17" else task, args.split)
    if task in ("ref-youtube-vos", "ref-davis17", "revos", "reasonvos"):
        return data.RefVOSReader(args.data, args.split, args.meta)
    raise ValueError(f"task must be one of {TASKS}")


def build_benchmark(task: str, reader, pipe, args) -> Benchmark:
    if task.startswith("world-"):
        return world_benchmark(task[len("world-") :], pipe, args.split, args.seed, args.samples, args.clip_length)
    if task in ("refcoco", "refcoco+", "refcocog", "grefcoco"):
        return text_benchmark(reader, pipe, generalized=task == "grefcoco")
    if task == "reasonseg":
        return text_benchmark(reader, pipe, reasoning=True)
    if task in ("coco-panoptic", "ade20k-panoptic"):
        return coco_panoptic_benchmark(reader, pipe)
    if task in ("ade20k", "pascal-context-59", "pascal-voc-20"):
        return semantic_benchmark(reader, pipe)
    if task in ("davis17", "youtube-vos"):
        return vos_benchmark(reader, pipe)
    # ReasonVOS asks every expression as a question; ReVOS by each expression's type; the others refer
    return refvos_benchmark(reader, pipe, True if task == "reasonvos" else (None if task == "revos" else False))


# ---------------------------------------------------------------- paper figures
def paper_figures(task: str, split: str) -> dict[str, dict]:
    rows = json.loads(PAPER_RESULTS.read_text())["rows"]
    same = {"val": "valid", "valid": "val"}  # the video benchmarks name their validation split "valid"
    return {r["metric"]: r for r in rows if r["task"] == task and r["split"] in (split, same.get(split))}


def _pct(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def table(results: list[dict]) -> str:
    lines = [
        "| task | split | metric | ours | paper (HyperSeg-3B) | source | samples |",
        "|---|---|---|---|---|---|---|",
    ]
    for report in results:
        paper = report["paper"]
        for metric in report["headline"]:
            row = paper.get(metric)
            lines.append(
                f"| {report['task']} | {report['split']} | {metric} | {_pct(report['metrics'].get(metric))} | "
                f"{row['value'] if row else '-'} | {row['source'] if row else '-'} | {report['metrics']['samples']} |"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------- running
def run_task(task: str, reader, pipe, args, state) -> dict | None:
    """Score this process's share, write it, and on rank 0 merge every share into the report."""
    benchmark = build_benchmark(task, reader, pipe, args)
    total = len(benchmark.reader) if args.limit is None else min(args.limit, len(benchmark.reader))
    parts = Path(args.out) / f"{task}-{args.split}"
    began = time.perf_counter()
    fingerprint = {
        "task": task,
        "split": args.split,
        "checkpoint": str(args.checkpoint),
        "precision": args.precision,
        "total": total,
        "data": str(args.data),
        "seed": args.seed,
        "clip_length": list(args.clip_length),
        "processes": state.num_processes,
    }
    journal = Journal(parts, state, fingerprint)  # a rerun after a kill scores only what is missing
    with my_share(state, range(total)) as mine:
        for index in tqdm(
            mine,
            desc=f"{task} ({state.process_index + 1}/{state.num_processes})",
            disable=not args.progress,
            position=state.process_index,
        ):
            if index not in journal.records:
                journal.add({"index": index, **benchmark.score(benchmark.reader[index])})
        records = [journal.records[index] for index in mine]
    journal.close()
    write_part(parts, state, records)
    seconds = time.perf_counter() - began
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    merged = read_parts(parts, state.num_processes)
    if [r["index"] for r in merged] != list(range(total)):
        raise RuntimeError(f"the parts in {parts} do not hold every sample once")
    report = {
        "task": task,
        "split": args.split,
        "checkpoint": str(args.checkpoint),
        "processes": state.num_processes,
        "metrics": benchmark.reduce(merged),
        "headline": list(benchmark.headline),
        "paper": paper_figures(task, args.split),
        "seconds_rank0": round(seconds, 1),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    write_atomic(Path(args.out) / f"{task}-{args.split}.json", json.dumps(report, indent=2))
    return report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", nargs="+", required=True, choices=TASKS, metavar="TASK", help=", ".join(TASKS))
    parser.add_argument("--data", type=Path, default=None, help="the benchmark's folder, in its own format")
    parser.add_argument(
        "--split", default="val", help="val, testA, testB, test, valid... (world: val / test / compositional)"
    )
    parser.add_argument(
        "--checkpoint", default=str(EMBEDDED_CHECKPOINT), help="our folder, an official one, or a hub id"
    )
    parser.add_argument("--precision", default=None, help="fp32 / bf16 / fp16 / 8bit / 4bit (default: bf16 on GPU)")
    parser.add_argument("--out", type=Path, default=Path("benchmark_results"), help="results and per-process parts")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N samples")
    parser.add_argument("--images", type=Path, default=None, help="RefCOCO family: the COCO train2014 folder")
    parser.add_argument("--classes", type=Path, default=None, help="semantic: the class list (one name per line)")
    parser.add_argument("--meta", type=Path, default=None, help="video referring: the meta expressions JSON")
    parser.add_argument("--seed", type=int, default=0, help="world tasks: the world's seed")
    parser.add_argument("--samples", type=int, default=100, help="world tasks: samples (clips) to draw")
    parser.add_argument("--clip-length", type=int, nargs=2, default=(8, 16), metavar=("MIN", "MAX"))
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    return parser.parse_args(argv)


def main(argv=None) -> list[dict] | None:
    args = parse_args(argv)
    state = process_state()
    from .pipeline import HyperSegPipeline

    try:
        readers = [make_reader(task, args) for task in args.task]
        pipe = HyperSegPipeline.from_pretrained(args.checkpoint, precision=args.precision, device_map=str(state.device))
        reports = [run_task(task, reader, pipe, args, state) for task, reader in zip(args.task, readers)]
    except ValueError as error:  # bad folders, splits or options: one sentence, no traceback
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if not state.is_main_process:
        return None
    print(table(reports), flush=True)
    return reports


if __name__ == "__main__":
    main()
