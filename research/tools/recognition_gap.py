"""Does the model find the objects but fail to recognise them? Masks found vs masks chosen, per task.

    python research/tools/recognition_gap.py --checkpoint assets/hyperseg-lite --split val --samples 100

HyperSeg's decoder proposes one mask per mask token; recognition then scores every mask token against the
prompt embeddings (dot products, HER). This separates the two halves for every sample that has a target:

* referring / reasoning: IoU of the mask the pipeline chooses (highest score; for an expression, with every other
  token over the checkpoint's ``referring_union_threshold``) against the best IoU any one mask token (or that answer)
  reached (the oracle choice), and how often the oracle token was ranked first;
* class prompts (semantic, panoptic): for every ground-truth segment the mask token that covers it best, its
  IoU, and whether its highest-scoring listed class is the true one (top-1), things and stuff apart; chance
  is one over the number of listed names of the same kind (a model that only tells things from stuff).

A high oracle mIoU with a low chosen mIoU, or well-covered segments with chance-level top-1, means the
masks are there and the prompt scores (``loss_cls``, the features they read) are what fails.

* interactive: one click per object (the evaluation's interior-most pixel): the pipeline's mask against the best
  any mask token reached (each kept to the parts the click touches when the pipeline keeps them), how often the
  best token has the highest region score, and for the objects no token covers (best IoU < 0.5) what that best
  mask is: low precision with high recall is a merge with its neighbours, the reverse a fragment.

Referring samples without a target measure the other half of recognition, knowing that nothing matches: the
AUC of the answer's score (the one the no-match threshold reads) between real and no-target expressions, 0.5
when the scores cannot tell them apart at any threshold (``tools/class_threshold.py`` then picks the threshold).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from hyperseg_lite.data.vocabulary import STUFF_NAMES
from hyperseg_lite.data.world import World
from hyperseg_lite.evaluation.tasks import interior_click
from hyperseg_lite.loading import EMBEDDED_CHECKPOINT
from hyperseg_lite.pipeline import HyperSegPipeline, HyperSegPredictor, Region
from hyperseg_lite.pipeline import postprocess as post
from hyperseg_lite.pipeline.answers import region_answer
from hyperseg_lite.pipeline.prompted_parts import keep_prompted_parts

REFERRING_TASKS = ("referring", "reasoning")
CLASS_TASKS = ("semantic", "panoptic")
CLICK_TASKS = ("interactive",)


def _ious(masks: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, H, W) candidate masks vs one (H, W) truth -> (N,) IoU."""
    return (masks & truth).sum((1, 2)) / np.maximum((masks | truth).sum((1, 2)), 1)


def score_auc(positives: list[float], negatives: list[float]) -> float:
    """P(a real expression's score > a no-target one's), ties half; NaN without both kinds."""
    if not positives or not negatives:
        return float("nan")
    pos, neg = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def measure_referring(pipe: HyperSegPipeline, world: World, task: str, samples: int) -> dict:
    predictor = HyperSegPredictor(pipe)
    chosen, oracle, ranks, target_scores, refusal_scores = [], [], [], [], []
    for index in range(samples):
        sample = world.sample(task, index)
        image = predictor.encode(sample.image)
        if task == "referring":
            candidates = predictor.predict(expression=sample.expression, image=image)
        else:
            candidates = predictor.predict(question=sample.expression, image=image)
        logits, probs = candidates.mask_logits, candidates.scores
        best, score = post.referring_choice(logits, probs)
        if not len(sample.masks):
            refusal_scores.append(score)
            continue
        target_scores.append(score)
        truth = sample.masks.any(0)
        masks = candidates.to_original()
        ious = _ious(masks, truth)
        by_score = torch.argsort(probs[:, 0], descending=True).cpu().numpy()
        union = pipe.model.config.referring_union_threshold if task == "referring" else 0.0
        answer = masks[post.referring_union(logits, probs, best, union)].any(0)  # what the pipeline answers with
        chosen.append(float(_ious(answer[None], truth)[0]))
        oracle.append(max(float(ious.max()), chosen[-1]))  # a union of tokens can beat every single one
        ranks.append(int(np.flatnonzero(by_score == int(ious.argmax()))[0]))
    return {
        "task": task,
        "targets": len(chosen),
        "chosen_miou": float(np.mean(chosen)),
        "oracle_miou": float(np.mean(oracle)),
        "oracle_ranked_first": float(np.mean(np.asarray(ranks) == 0)),
        "no_target": len(refusal_scores),
        "no_target_auc": score_auc(target_scores, refusal_scores),
    }


def measure_classes(pipe: HyperSegPipeline, world: World, task: str, samples: int) -> list[dict]:
    predictor = HyperSegPredictor(pipe)
    found = {"thing": [], "stuff": []}
    top1 = {"thing": [], "stuff": []}
    listed = {"thing": [], "stuff": []}
    true_score = {"thing": [], "stuff": []}
    for index in range(samples):
        sample = world.sample(task, index)
        names = list(sample.class_names)
        candidates = predictor.predict(class_names=names, mode=task, image=predictor.encode(sample.image))
        probs = candidates.scores
        masks = candidates.to_original()
        for truth, label in zip(sample.masks, sample.labels):
            kind = "stuff" if names[label] in STUFF_NAMES else "thing"
            ious = _ious(masks, truth)
            best = int(ious.argmax())
            found[kind].append(float(ious[best]))
            top1[kind].append(int(probs[best].argmax()) == int(label))
            true_score[kind].append(float(probs[best, label]))
            listed[kind].append(sum((name in STUFF_NAMES) == (kind == "stuff") for name in names))
    return [
        {
            "task": f"{task} ({kind}s)",
            "targets": len(found[kind]),
            "best_mask_miou": float(np.mean(found[kind])),
            "top1_of_best_mask": float(np.mean(top1[kind])),
            "true_class_score": float(np.mean(true_score[kind])),
            "chance_top1": float(np.mean(1 / np.asarray(listed[kind]))),
        }
        for kind in ("thing", "stuff")
        if found[kind]
    ]


def measure_clicks(pipe: HyperSegPipeline, world: World, samples: int) -> dict:
    predictor = HyperSegPredictor(pipe)
    chosen, oracle, ranked_first, missed = [], [], [], []
    for index in range(samples):
        sample = world.sample("interactive", index)
        image = predictor.encode(sample.image)
        for truth in sample.masks:
            click = Region(points=[interior_click(truth)])
            candidates = predictor.predict(regions=[click], image=image)
            logits = candidates.mask_logits
            if pipe.keep_prompted_parts:  # every token's mask as the pipeline would answer it
                logits = torch.stack([keep_prompted_parts(m, click, candidates.image) for m in logits])
            if pipe.edge_refinement is not None:
                logits = pipe.edge_refinement.logits(logits, candidates.image)
            masks = candidates.to_original(logits)
            ious = _ious(masks, truth)
            best = int(ious.argmax())
            answer = region_answer(  # pipe.interactive's
                candidates,
                [click],
                pipe.prompt_overlap_weight,
                keep_parts=pipe.keep_prompted_parts,
                edges=pipe.edge_refinement,
            ).masks[0]
            chosen.append(float(_ious(answer[None], truth)[0]))
            oracle.append(float(ious[best]))
            ranked_first.append(int(candidates.scores[:, 0].argmax()) == best)
            if ious[best] < 0.5:
                overlap = float((masks[best] & truth).sum())
                missed.append((overlap / max(float(masks[best].sum()), 1.0), overlap / float(truth.sum())))
    missed_array = np.asarray(missed).reshape(-1, 2)
    return {
        "task": "interactive (one click)",
        "objects": len(chosen),
        "chosen_miou": float(np.mean(chosen)),
        "oracle_miou": float(np.mean(oracle)),
        "oracle_ranked_first": float(np.mean(ranked_first)),
        "uncovered": len(missed),
        "uncovered_precision": float(missed_array[:, 0].mean()) if missed else float("nan"),
        "uncovered_recall": float(missed_array[:, 1].mean()) if missed else float("nan"),
    }


@torch.inference_mode()
def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(EMBEDDED_CHECKPOINT))
    parser.add_argument("--split", default="val", choices=("train", "val", "test", "compositional"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=100, help="samples drawn per task")
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(REFERRING_TASKS + CLASS_TASKS),
        choices=REFERRING_TASKS + CLASS_TASKS + CLICK_TASKS,
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    pipe = HyperSegPipeline.from_pretrained(args.checkpoint)
    world = World(args.split, args.seed, image_size=pipe.model.config.image_size)
    referring = [measure_referring(pipe, world, t, args.samples) for t in args.tasks if t in REFERRING_TASKS]
    classes = [row for t in args.tasks if t in CLASS_TASKS for row in measure_classes(pipe, world, t, args.samples)]
    clicks = [measure_clicks(pipe, world, args.samples) for t in args.tasks if t in CLICK_TASKS]
    print(f"{args.split} seed {args.seed}, {args.samples} samples per task, {args.checkpoint}")
    if referring:
        print(
            "| task | samples with a target | chosen mIoU | oracle mIoU | oracle ranked first | no-target samples "
            "| score AUC, real vs no-target |\n|---|---|---|---|---|---|---|"
        )
        for r in referring:
            print(
                f"| {r['task']} | {r['targets']} | {r['chosen_miou']:.3f} | {r['oracle_miou']:.3f} | "
                f"{r['oracle_ranked_first']:.2f} | {r['no_target']} | {r['no_target_auc']:.3f} |"
            )
    if classes:
        print(
            "| task | segments | best-mask mIoU | top-1 class of that mask | chance (same kind) | its score for the "
            "true class |\n|---|---|---|---|---|---|"
        )
        for r in classes:
            print(
                f"| {r['task']} | {r['targets']} | {r['best_mask_miou']:.3f} | {r['top1_of_best_mask']:.2f} | "
                f"{r['chance_top1']:.2f} | {r['true_class_score']:.2f} |"
            )
    if clicks:
        print(
            "| task | objects | chosen mIoU | oracle mIoU | oracle ranked first | no mask >= 0.5 IoU | its best mask: "
            "precision / recall |\n|---|---|---|---|---|---|---|"
        )
        for r in clicks:
            print(
                f"| {r['task']} | {r['objects']} | {r['chosen_miou']:.3f} | {r['oracle_miou']:.3f} | "
                f"{r['oracle_ranked_first']:.2f} | {r['uncovered']} | {r['uncovered_precision']:.2f} / "
                f"{r['uncovered_recall']:.2f} |"
            )
    report = referring + classes + clicks
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
