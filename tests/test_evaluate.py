"""The metrics agree with their definitions, and ``python -m hyperseg_lite.evaluate`` runs every task."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hyperseg_lite.evaluation.coco_ap import MaskAP, stack_clip
from hyperseg_lite.evaluation.mask_metrics import IoUAccumulator, boundary_f_measure, jaccard
from hyperseg_lite.evaluation.tasks import gives_reason, interior_click, names_answer, tight_box


def square(y, x, side=10, size=40):
    mask = np.zeros((size, size), dtype=bool)
    mask[y : y + side, x : x + side] = True
    return mask


def test_jaccard_and_empty_convention():
    assert jaccard(square(0, 0), square(0, 0)) == 1.0
    assert jaccard(square(0, 0), square(0, 5)) == pytest.approx(50 / 150)
    assert jaccard(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0  # DAVIS: both empty agree


def test_boundary_f_is_one_for_identical_and_drops_with_shift():
    assert boundary_f_measure(square(5, 5), square(5, 5)) == 1.0
    assert boundary_f_measure(square(5, 6), square(5, 5)) == 1.0  # within the 0.8 % tolerance (1 px here)
    near, far = boundary_f_measure(square(5, 8), square(5, 5)), boundary_f_measure(square(5, 15), square(5, 5))
    assert 0.0 <= far < near < 1.0
    assert boundary_f_measure(np.zeros((40, 40), bool), square(5, 5)) == 0.0


def test_ciou_giou_and_no_target_accuracy():
    acc = IoUAccumulator()
    acc.add(square(0, 0), square(0, 0))  # perfect: I = U = 100
    acc.add(square(0, 0), square(0, 5))  # I = 50, U = 150
    acc.add(np.zeros((40, 40), bool), np.zeros((40, 40), bool))  # no target, nothing predicted
    acc.add(square(0, 0), np.zeros((40, 40), bool))  # no target, something predicted: U = 100
    assert acc.ciou == pytest.approx(150 / 350)
    assert acc.giou == pytest.approx((1 + 1 / 3 + 1 + 0) / 4)
    assert acc.no_target_accuracy == 0.5


def test_an_explanation_is_judged_by_the_object_it_names_and_the_reason_it_gives():
    truth = "The ring and the star, because they are red like the cross."
    assert names_answer("The red ring and the star, because it is blue.", truth)
    assert not names_answer("The red ring, because it is red like the cross.", truth)  # the star is not named
    assert gives_reason("The red ring, because it is red like the cross.", truth)  # "it is" for "they are"
    assert not gives_reason("The red ring, because it is red like the heart.", truth)
    assert not gives_reason("The red ring.", truth) and not gives_reason("The star, because.", "The star.")


def test_mask_ap_perfect_half_and_empty():
    gts = [square(0, 0), square(20, 20)]
    perfect = MaskAP(["a", "b"])
    perfect.add(gts, ["a", "b"], gts, ["a", "b"], [0.9, 0.8])
    assert perfect.compute()["AP"] == pytest.approx(1.0)
    wrong_class = MaskAP(["a", "b"])
    wrong_class.add(gts, ["a", "b"], gts, ["b", "a"], [0.9, 0.8])
    assert wrong_class.compute()["AP"] == 0.0
    nothing = MaskAP(["a"])
    nothing.add(gts[:1], ["a"], [], [], [])
    assert nothing.compute()["AP"] == 0.0


def test_stack_clip_turns_track_iou_into_image_iou():
    frames = [np.stack([square(0, 0)]), np.stack([square(10, 10)])]
    stacked = stack_clip(frames)
    assert stacked.shape == (1, 80, 40) and stacked.sum() == 200


def test_benchmark_prompts_from_a_mask():
    mask = square(10, 20, side=9)
    x, y = interior_click(mask)
    assert (x, y) == (24.0, 14.0)  # the centre pixel
    assert tight_box(mask) == [20.0, 10.0, 29.0, 19.0]


def test_a_video_track_is_scored_with_the_label_of_its_last_frame():
    """The pipeline relabels a track as its class evidence grows; the evaluation scores the track with its last
    label (the one with all the evidence), the same in every process: a tie in a vote over frames was broken by
    Python's string hashing, which differs from process to process."""
    from hyperseg_lite.data.world import World
    from hyperseg_lite.evaluation.tasks import evaluate_vis
    from hyperseg_lite.pipeline.results import SegmentationResult

    world = World("val", 0, image_size=64, clip_length=(4, 4))
    sample = world.sample("vis", 0)
    truth = [sample.class_names[k] for k in sample.labels]
    other = next(name for name in sample.class_names if name != truth[0])

    class Replay:
        """Answers with the true masks of object 0 as one track, labelled wrongly on all frames but the last."""

        def video_instances(self, frames, class_names, threshold=None):
            results = []
            for t, masks in enumerate(sample.frame_masks):
                label = other if t < len(frames) - 1 else truth[0]
                results.append(
                    SegmentationResult("video_instance", "", masks[:1], [label], np.array([0.9]), np.array([1]))
                )
            return results

    alone = MaskAP(sorted(set(sample.class_names)))  # what a perfect track of object 0 scores
    alone.add(stack_clip(sample.frame_masks), truth, stack_clip([m[:1] for m in sample.frame_masks]), truth[:1], [0.9])
    assert evaluate_vis(Replay(), world, 1)["AP"] == pytest.approx(alone.compute()["AP"])


def test_evaluate_cli_runs_every_task(tiny, tmp_path):
    from hyperseg_lite.evaluate import main

    tiny.model.save_pretrained(tmp_path / "ckpt")
    tiny.tokenizer.save_pretrained(tmp_path / "ckpt")
    report = main(
        [
            "--checkpoint",
            str(tmp_path / "ckpt"),
            "--samples",
            "2",
            "--video-samples",
            "1",
            "--clip-length",
            "3",
            "3",
            "--json",
            str(tmp_path / "out.json"),
        ]
    )
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["split"] == "test" and set(saved["tasks"]) == set(report["tasks"])
    for task, metrics in saved["tasks"].items():
        assert metrics["samples"] >= 1, task
