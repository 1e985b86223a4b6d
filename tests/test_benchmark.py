"""``python -m hyperseg_lite.benchmark``: the world's numbers of ``evaluate``, every format end to end, exact sums,
and 2 accelerate processes (gloo, CPU) scoring bit for bit like one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from benchmark_fixtures import (
    write_ade,
    write_coco_panoptic,
    write_davis,
    write_reasonseg,
    write_refcoco,
    write_revos,
    write_youtube_vos,
)
from helpers import launch_two_cpu_processes

from hyperseg_lite import benchmark, evaluate
from hyperseg_lite.benchmarks_data import COCOPanopticReader, scoring


def run(args, out) -> dict:
    reports = benchmark.main([*args, "--out", str(out), "--no-progress"])
    return {r["task"]: r for r in reports}


def test_world_tasks_reproduce_evaluate_exactly(tmp_path):
    tasks = ["referring", "semantic", "panoptic", "vos"]  # every kind of sum: pixels, per class, PQ, J and F
    expected = evaluate.run(
        evaluate.EMBEDDED_CHECKPOINT, "test", 0, tasks, samples=2, video_samples=2, clip_length=(3, 3)
    )["tasks"]
    got = run(
        ["--task", *(f"world-{t}" for t in tasks), "--split", "test", "--samples", "2", "--clip-length", "3", "3"],
        tmp_path,
    )
    for task in tasks:
        ours = got[f"world-{task}"]["metrics"]
        for key, value in expected[task].items():
            # out_of_world_*: evaluate's extra probe with the held-out out-of-world expressions, no benchmark's
            if key != "seconds" and not key.startswith("out_of_world"):
                assert ours[key] == value or (np.isnan(ours[key]) and np.isnan(value)), (task, key)


def test_every_image_format_runs_end_to_end_with_the_paper_beside_ours(tmp_path, capsys):
    refcoco, reasonseg = write_refcoco(tmp_path), write_reasonseg(tmp_path)
    coco, ade = write_coco_panoptic(tmp_path), write_ade(tmp_path)
    reports = {
        **run(["--task", "refcoco", "--data", str(refcoco["folder"])], tmp_path / "out"),
        **run(["--task", "grefcoco", "--data", str(refcoco["folder"])], tmp_path / "out"),
        **run(["--task", "reasonseg", "--data", str(reasonseg["folder"])], tmp_path / "out"),
        **run(["--task", "coco-panoptic", "--data", str(coco["folder"]), "--limit", "2"], tmp_path / "out"),
        **run(["--task", "ade20k", "--data", str(ade["folder"])], tmp_path / "out"),
    }
    assert reports["refcoco"]["metrics"]["samples"] == 3
    assert reports["refcoco"]["paper"]["cIoU"]["value"] == 84.8  # from benchmarks_data/paper_results.json
    assert reports["grefcoco"]["metrics"]["samples"] == 3 and "no_target_accuracy" in reports["grefcoco"]["metrics"]
    assert reports["coco-panoptic"]["metrics"]["samples"] == 2
    for report in reports.values():
        for metric in report["headline"]:
            assert 0.0 <= report["metrics"][metric] <= 1.0, (report["task"], metric)
        saved = json.loads((tmp_path / "out" / f"{report['task']}-val.json").read_text())
        assert saved["metrics"]["samples"] == report["metrics"]["samples"]
    printed = capsys.readouterr().out
    assert "| refcoco | val | cIoU |" in printed and "Table 1, RefCOCO val" in printed


def test_video_formats_run_end_to_end(tmp_path):
    davis, ytvos, revos = (
        write_davis(tmp_path, frames=3),
        write_youtube_vos(tmp_path, frames=3),
        write_revos(tmp_path, frames=2),
    )
    reports = {
        **run(["--task", "davis17", "--data", str(davis["folder"])], tmp_path / "out"),
        **run(["--task", "youtube-vos", "--data", str(ytvos["folder"]), "--split", "train"], tmp_path / "out"),
        **run(["--task", "revos", "--data", str(revos["folder"]), "--split", "valid"], tmp_path / "out"),
    }
    assert reports["davis17"]["metrics"]["samples"] == 1  # one sequence; its middle frame scored, 2 objects
    assert 0.0 <= reports["davis17"]["metrics"]["J&F"] <= 1.0
    assert 0.0 <= reports["youtube-vos"]["metrics"]["J&F"] <= 1.0
    metrics = reports["revos"]["metrics"]
    assert "J&F_referring" in metrics and "J&F_reasoning" in metrics  # ReVOS reports both kinds and overall
    assert metrics["J&F"] == pytest.approx((metrics["J"] + metrics["F"]) / 2)


def test_perfect_answers_score_one_and_global_sums_are_not_shard_averages(tmp_path):
    coco = write_coco_panoptic(tmp_path)
    reader = COCOPanopticReader(coco["folder"])
    ids = reader.category_ids
    things, stuffs = {ids[n] for n in reader.things}, {ids[n] for n in reader.stuff}
    records = []
    for k in range(3):
        target = reader[k].target
        pred = target.copy()
        pred[target[..., 0] == 0] = (scoring.UNLABELLED, 0)  # what the benchmark writes where nothing is predicted
        records.append(scoring.panoptic_record(pred, target, things, stuffs))
    assert scoring.panoptic_quality(records, things, stuffs)["PQ"] == 1.0
    small = scoring.text_record(np.ones((2, 2), bool), np.ones((2, 2), bool))  # 4 / 4
    large = scoring.text_record(np.ones((10, 10), bool), np.zeros((10, 10), bool))  # 0 / 100
    merged = scoring.text_metrics([small, large])
    assert merged["cIoU"] == 4 / 104  # not (1 + 0) / 2
    assert merged["gIoU"] == 0.5 and merged["no_target_accuracy"] == 0.0 and merged["target_accuracy"] == 1.0


def test_a_missing_folder_is_one_line_and_exit_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        benchmark.main(["--task", "reasonseg", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'nowhere' / 'val'} is not a folder; --data is the ReasonSeg folder holding val/"
    )


def test_two_accelerate_processes_score_bit_for_bit_like_one(tmp_path):
    """``accelerate launch --multi_gpu`` on a machine without CUDA starts CPU processes joined over gloo; the
    one-process reference runs in this process. gRefCOCO exercises cIoU / N-acc sums, the world's panoptic PQ sums."""
    refcoco = write_refcoco(tmp_path)
    args = ["--task", "grefcoco", "world-panoptic", "--data", str(refcoco["folder"]), "--samples", "4", "--no-progress"]
    single = run(args, tmp_path / "one")
    two = launch_two_cpu_processes("hyperseg_lite.benchmark", [*args, "--out", str(tmp_path / "two")], port=29571)
    assert two.returncode == 0, two.stderr[-2000:]
    for task in ("grefcoco", "world-panoptic"):
        double = json.loads((tmp_path / "two" / f"{task}-val.json").read_text())
        assert single[task]["processes"] == 1 and double["processes"] == 2
        assert json.dumps(double["metrics"]) == json.dumps(single[task]["metrics"])  # every digit, NaN included
        assert len(list((tmp_path / "two" / f"{task}-val").glob("part-*-of-00002.json"))) == 2


def test_a_killed_run_resumes_and_scores_only_what_is_missing(tmp_path, monkeypatch):
    args = ["--task", "world-referring", "--split", "test", "--samples", "4"]
    clean = run(args, tmp_path / "clean")["world-referring"]["metrics"]
    original = benchmark.build_benchmark
    scored = []

    def counting(*a, limit=None):
        built = original(*a)
        score = built.score

        def counted(sample):
            if limit is not None and len(scored) == limit:
                raise KeyboardInterrupt  # as a killed job
            scored.append(1)
            return score(sample)

        built.score = counted
        return built

    monkeypatch.setattr(benchmark, "build_benchmark", lambda *a: counting(*a, limit=2))
    with pytest.raises(KeyboardInterrupt):
        run(args, tmp_path / "resumed")
    scored.clear()
    monkeypatch.setattr(benchmark, "build_benchmark", lambda *a: counting(*a))
    resumed = run(args, tmp_path / "resumed")["world-referring"]["metrics"]
    assert len(scored) == 2 and json.dumps(resumed) == json.dumps(clean)
    # other settings never reuse the journal
    scored.clear()
    run([*args[:-1], "3"], tmp_path / "resumed")
    assert len(scored) == 3
