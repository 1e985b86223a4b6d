"""One evaluation loop per task: draw samples from the world, ask the pipeline (what users run), score.

Every loop returns a flat dict of metrics plus ``samples``. Prompts follow the benchmarks: one click at the
object's interior-most pixel and its tight box (interactive), the first-frame mask (video object segmentation,
as DAVIS's semi-supervised protocol), all frames scored (referring video, as Ref-YouTube-VOS).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
from torchmetrics.detection import PanopticQuality

from ..data.out_of_world import HELD_OUT_EXPRESSIONS
from ..data.vocabulary import ALL_CLASS_NAMES, CATEGORIES, STUFF_NAMES
from ..data.world import World
from ..pipeline import Region
from ..subword_tokenizer import real_word_fraction, tokenizer_words
from ..tasks import TASK_NAMES, get_task
from .coco_ap import MaskAP, stack_clip
from .mask_metrics import IoUAccumulator, boundary_f_measure, jaccard

OUT_OF_WORLD_MIN_SAMPLES = 50
EXPLANATIONS = 100  # reasoning questions whose generated explanations the real-word gate reads
AP_THRESHOLD = 0.05  # keep low-scoring detections: AP ranks them, it does not threshold


def _union(result, size) -> np.ndarray:
    return result.union() if len(result) else np.zeros(size, dtype=bool)


def _referring_like(pipe, world: World, task: str, n: int) -> dict[str, float]:
    scores = IoUAccumulator()
    found_target = []
    for index in range(n):
        sample = world.sample(task, index)
        size = sample.image.shape[:2]
        ask = pipe.refer if task == "referring" else pipe.reason
        pred = _union(ask(sample.image, sample.expression), size)
        gt = sample.masks.any(0) if len(sample.masks) else np.zeros(size, dtype=bool)
        scores.add(pred, gt)
        if gt.any():
            found_target.append(bool(pred.any()))
    metrics = {"cIoU": scores.ciou, "gIoU": scores.giou, "samples": n}
    if task == "referring":
        metrics["no_target_accuracy"] = scores.no_target_accuracy
        metrics["target_accuracy"] = float(np.mean(found_target)) if found_target else float("nan")
    return metrics


def evaluate_out_of_world(
    pipe, world: World, scenes: int = 8, expressions: tuple[str, ...] = HELD_OUT_EXPRESSIONS
) -> dict[str, float]:
    """Share of the held-out out-of-world expressions (other nouns, languages, nonsense) that find nothing.

    Expression ``i`` is asked on referring scene ``i % scenes`` of the split; each scene is encoded once."""
    encoded = [pipe.encode(world.sample("referring", index).image) for index in range(scenes)]
    hits = [pipe.refer(encoded[i % scenes], text).no_match for i, text in enumerate(expressions)]
    return {"out_of_world_no_match": float(np.mean(hits)), "out_of_world_expressions": len(expressions)}


def evaluate_referring(pipe, world: World, n: int) -> dict[str, float]:
    """cIoU / gIoU / no-target accuracy; with at least ``OUT_OF_WORLD_MIN_SAMPLES`` samples (a full evaluation)
    also the no-match rate of the held-out out-of-world expressions (124 more queries, too many for a quick look)."""
    metrics = _referring_like(pipe, world, "referring", n)
    if n >= OUT_OF_WORLD_MIN_SAMPLES:
        metrics.update(evaluate_out_of_world(pipe, world, 8))
    return metrics


def evaluate_explanations(pipe, world: World, n: int = EXPLANATIONS, vocabulary: set[str] | None = None) -> dict:
    """The explanations of ``n`` reasoning questions as the pipeline answers them (``pipe.reason(...,
    explain=True)``): the real-word gate, the share of their words that are real words (in the subword tokenizer's
    training vocabulary, ``words.txt``), and the share that name the right object (:func:`names_answer`). Empty
    when no vocabulary is known for the model's tokenizer and none is given."""
    vocabulary = vocabulary if vocabulary is not None else tokenizer_words(pipe.tokenizer)
    if vocabulary is None:
        return {}
    answers, named, reasons = [], [], []
    for index in range(n):
        sample = world.sample("reasoning", index)
        answer = pipe.reason(sample.image, sample.expression, explain=True).answer or ""
        answers.append(answer)
        named.append(names_answer(answer, sample.answer or ""))
        reasons.append(gives_reason(answer, sample.answer or ""))
    return {
        "explanation_real_words": real_word_fraction(answers, vocabulary),
        "explanation_names_answer": float(np.mean(named)) if named else float("nan"),
        "explanation_gives_reason": float(np.mean(reasons)) if reasons else float("nan"),
        "explanations": n,
    }


def names_answer(answer: str, truth: str) -> bool:
    """Whether an explanation's opening (up to its first comma) names the object of the true one's: every word of
    the truth's opening but "the" / "and" is in it ("The white cross" names "The white cross"; "The black crescent"
    names "The crescent", whose truth states no colour)."""

    def opening(text: str) -> set[str]:
        return set(text.split(",")[0].lower().split()) - {"the", "and"}

    wanted = opening(truth)
    return bool(wanted) and wanted <= opening(answer)


def gives_reason(answer: str, truth: str) -> bool:
    """Whether an explanation gives the true one's reason (what follows its first comma): every word of it but
    the pronoun and verb that follow the answer's number ("it is" / "they are") ("because it is red like the
    star" gives "because they are red like the star")."""

    def reason(text: str) -> set[str]:
        rest = text.partition(",")[2]
        return set(rest.lower().replace(",", " ").replace(".", " ").split()) - {"it", "is", "they", "are"}

    wanted = reason(truth)
    return bool(wanted) and wanted <= reason(answer)


def evaluate_reasoning(pipe, world: World, n: int) -> dict[str, float]:
    """cIoU / gIoU; in a full evaluation (``OUT_OF_WORLD_MIN_SAMPLES`` or more) also the real-word gate on
    ``EXPLANATIONS`` generated explanations, when the tokenizer has its vocabulary."""
    metrics = _referring_like(pipe, world, "reasoning", n)
    if n >= OUT_OF_WORLD_MIN_SAMPLES:
        metrics.update(evaluate_explanations(pipe, world, EXPLANATIONS))
    return metrics


def evaluate_semantic(pipe, world: World, n: int) -> dict[str, float]:
    """mIoU over classes, intersections and unions summed over the split per class."""
    inter = dict.fromkeys(ALL_CLASS_NAMES, 0)
    union = dict.fromkeys(ALL_CLASS_NAMES, 0)
    for index in range(n):
        sample = world.sample("semantic", index)
        size = sample.image.shape[:2]
        result = pipe.segment_classes(sample.image, sample.class_names, mode="semantic")
        for k, name in enumerate(sample.class_names):
            gt = sample.masks[sample.labels == k].any(0) if (sample.labels == k).any() else np.zeros(size, bool)
            picked = [m for m, label in zip(result.masks, result.labels) if label == name]
            pred = np.any(picked, axis=0) if picked else np.zeros(size, bool)
            inter[name] += int((gt & pred).sum())
            union[name] += int((gt | pred).sum())
    ious = [inter[c] / union[c] for c in ALL_CLASS_NAMES if union[c] > 0]
    return {"mIoU": float(np.mean(ious)) if ious else float("nan"), "samples": n}


def _category_id(name: str) -> int:
    return ALL_CLASS_NAMES.index(name) + 1  # 0 = void


UNLABELLED = 1000  # category of pixels the prediction leaves empty; a stuff class we score but leave out of the mean


def evaluate_panoptic(pipe, world: World, n: int) -> dict[str, float]:
    """PQ / SQ / RQ averaged over the world's classes.

    Pixels the prediction leaves empty get an explicit "unlabelled" class instead of void: torchmetrics excuses
    ground-truth segments that fall mostly in predicted void, which would reward predicting nothing.
    """
    things, stuffs = {_category_id(c) for c in CATEGORIES}, {_category_id(s) for s in STUFF_NAMES} | {UNLABELLED}
    metric = PanopticQuality(things=things, stuffs=stuffs, return_sq_and_rq=True, return_per_class=True)
    seen: set[int] = set()
    for index in range(n):
        sample = world.sample("panoptic", index)
        size = sample.image.shape[:2]
        result = pipe.segment_classes(sample.image, sample.class_names, mode="panoptic", stuff=sample.stuff_names)
        target = np.zeros((*size, 2), dtype=np.int64)  # pixels of unlisted classes: unknown id 0, ignored
        for mask, label, seg_id in zip(sample.masks, sample.labels, sample.instance_ids):
            target[mask] = (_category_id(sample.class_names[label]), seg_id)
        pred = np.zeros((*size, 2), dtype=np.int64)
        pred[..., 0] = UNLABELLED
        for mask, label, seg_id in zip(result.masks, result.labels, result.ids):
            pred[mask] = (_category_id(label), seg_id)
        metric.update(torch.from_numpy(pred)[None], torch.from_numpy(target)[None])
        seen |= set(np.unique(target[..., 0]).tolist()) | set(np.unique(pred[..., 0]).tolist())
    order = sorted(things) + sorted(stuffs)  # torchmetrics' row order: things, then stuffs, each sorted
    per_class = metric.compute().numpy()  # (classes, 3): PQ, SQ, RQ
    rows = [order.index(c) for c in sorted(seen - {0, UNLABELLED})]  # classes with a segment on either side
    pq, sq, rq = (float(v) for v in per_class[rows].mean(0)) if rows else (float("nan"),) * 3
    return {"PQ": pq, "SQ": sq, "RQ": rq, "samples": n}


def evaluate_instance(pipe, world: World, n: int) -> dict[str, float]:
    ap = MaskAP(list(ALL_CLASS_NAMES))
    for index in range(n):
        sample = world.sample("instance", index)
        result = pipe.segment_classes(sample.image, sample.class_names, mode="instance", threshold=AP_THRESHOLD)
        ap.add(sample.masks, [sample.class_names[k] for k in sample.labels], result.masks, result.labels, result.scores)
    return {**ap.compute(), "samples": n}


def interior_click(mask: np.ndarray) -> list[float]:
    """The pixel farthest from the boundary: the standard first click of interactive benchmarks."""
    distance = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return [float(x), float(y)]


def tight_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def evaluate_interactive(pipe, world: World, n: int) -> dict[str, float]:
    clicks, boxes = [], []
    for index in range(n):
        sample = world.sample("interactive", index)
        for gt in sample.masks:
            clicked = pipe.interactive(sample.image, Region(points=[interior_click(gt)]))
            clicks.append(jaccard(clicked.masks[0], gt))
            boxed = pipe.interactive(sample.image, Region(box=tight_box(gt)))
            boxes.append(jaccard(boxed.masks[0], gt))
    return {
        "mIoU_click": float(np.mean(clicks)),
        "mIoU_box": float(np.mean(boxes)),
        "objects": len(clicks),
        "samples": n,
    }


def _j_and_f(preds: list[np.ndarray], gts: list[np.ndarray]) -> tuple[float, float]:
    j = [jaccard(p, g) for p, g in zip(preds, gts)]
    f = [boundary_f_measure(p, g) for p, g in zip(preds, gts)]
    return float(np.mean(j)), float(np.mean(f))


def evaluate_vos(pipe, world: World, n: int) -> dict[str, float]:
    js, fs = [], []
    for index in range(n):
        sample = world.sample("vos", index)
        first = sample.frame_masks[0]
        results = pipe.track(sample.frames, [Region(mask=m) for m in first])
        for k in range(first.shape[0]):  # per object, frames after the prompted one
            j, f = _j_and_f([r.masks[k] for r in results[1:]], [m[k] for m in sample.frame_masks[1:]])
            js.append(j)
            fs.append(f)
    return {
        "J&F": (float(np.mean(js)) + float(np.mean(fs))) / 2,
        "J": float(np.mean(js)),
        "F": float(np.mean(fs)),
        "samples": n,
    }


def evaluate_referring_video(pipe, world: World, n: int) -> dict[str, float]:
    js, fs = [], []
    for index in range(n):
        sample = world.sample("referring_video", index)
        results = pipe.refer_video(sample.frames, sample.expression)
        size = sample.frames[0].shape[:2]
        j, f = _j_and_f([_union(r, size) for r in results], [m[0] for m in sample.frame_masks])
        js.append(j)
        fs.append(f)
    return {
        "J&F": (float(np.mean(js)) + float(np.mean(fs))) / 2,
        "J": float(np.mean(js)),
        "F": float(np.mean(fs)),
        "samples": n,
    }


def evaluate_vis(pipe, world: World, n: int) -> dict[str, float]:
    """YouTube-VIS style AP: each predicted track is one spatio-temporal mask with its mean score, labelled as the
    pipeline labels it on its last frame (a track's label sums the evidence of all its detections so far; with
    ``track_match_classes`` every detection of a track has the same label)."""
    ap = MaskAP(list(CATEGORIES))
    for index in range(n):
        sample = world.sample("vis", index)
        results = pipe.video_instances(sample.frames, sample.class_names, threshold=AP_THRESHOLD)
        size = sample.frames[0].shape[:2]
        tracks: dict[int, dict] = {}
        for t, result in enumerate(results):
            for mask, label, score, track in zip(result.masks, result.labels, result.scores, result.ids):
                entry = tracks.setdefault(
                    int(track), {"masks": [np.zeros(size, bool)] * len(results), "labels": [], "scores": []}
                )
                entry["masks"] = entry["masks"][:t] + [mask] + entry["masks"][t + 1 :]
                entry["labels"].append(label)
                entry["scores"].append(float(score))
        pred_masks = [stack_clip([m[None] for m in e["masks"]])[0] for e in tracks.values()]
        pred_labels = [e["labels"][-1] for e in tracks.values()]
        pred_scores = [float(np.mean(e["scores"])) for e in tracks.values()]
        gt_masks = stack_clip(sample.frame_masks)
        ap.add(gt_masks, [sample.class_names[k] for k in sample.labels], pred_masks, pred_labels, pred_scores)
    return {**ap.compute(), "samples": n}


def evaluate_describe(pipe, world: World, n: int) -> dict[str, float]:
    """Class-free naming: precision and recall of the names ``pipe.describe`` gives against the classes present,
    as the pipeline answers (the names of its greedy and sampled lists, confirmed by segmentation) and as the LLM
    wrote its greedy list (``raw_*``)."""
    named, correct, present = {"": 0, "raw_": 0}, {"": 0, "raw_": 0}, 0
    for index in range(n):
        sample = world.sample("describe", index)
        truth = set(sample.class_names)
        image = pipe.encode(sample.image)
        raw = pipe.describe(image, confirm=False)
        confirmed = pipe.describe(image)
        present += len(truth)
        for prefix, names in (("", set(confirmed)), ("raw_", set(raw))):
            named[prefix] += len(names)
            correct[prefix] += len(names & truth)
    report: dict[str, float] = {}
    for prefix in named:
        precision = correct[prefix] / named[prefix] if named[prefix] else 0.0
        recall = correct[prefix] / present if present else 0.0
        report[f"{prefix}name_precision"] = precision
        report[f"{prefix}name_recall"] = recall
        report[f"{prefix}name_F1"] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    report["samples"] = n
    return report


EVALUATORS: dict[str, Callable] = {
    "referring": evaluate_referring,
    "reasoning": evaluate_reasoning,
    "semantic": evaluate_semantic,
    "panoptic": evaluate_panoptic,
    "instance": evaluate_instance,
    "interactive": evaluate_interactive,
    "vos": evaluate_vos,
    "referring_video": evaluate_referring_video,
    "vis": evaluate_vis,
    "describe": evaluate_describe,
}
if set(EVALUATORS) != set(TASK_NAMES):  # every registered task is scored, and nothing else
    raise RuntimeError(f"evaluators {sorted(EVALUATORS)} do not match the task registry {sorted(TASK_NAMES)}")


def evaluate_task(pipe, world: World, task: str, n: int) -> dict[str, float]:
    return EVALUATORS[get_task(task).name](pipe, world, n)
