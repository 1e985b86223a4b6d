"""``python -m hyperseg_lite.predict``: every prompt kind to files, a run stopped midway resumes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmark_fixtures import BOXES, moving_boxes, picture
from helpers import launch_two_cpu_processes, one_thread
from PIL import Image

from hyperseg_lite.pipeline import HyperSegPipeline
from hyperseg_lite.pipeline.exporters import decode_rle, load_label_png
from hyperseg_lite.predict import main, parse_args, run


@pytest.fixture(scope="module")
def pipe():
    return HyperSegPipeline.from_pretrained()


def images(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True)
    for k in range(count):
        Image.fromarray(picture(BOXES)).save(folder / f"img{k}.jpg")
    return folder


def test_class_prompts_write_rle_json_label_pngs_and_one_panoptic_json(tmp_path, pipe):
    folder = images(tmp_path / "in")
    args = parse_args(
        [
            str(folder),
            "--out",
            str(tmp_path / "out"),
            "--classes",
            "red box, green box, wall",
            "--stuff",
            "wall",
            "--overlay",
            "--no-progress",
        ]
    )
    assert run(args, pipe) == {"done": 3, "skipped": 0, "failed": 0}
    out = tmp_path / "out"
    record = json.loads((out / "img0.json").read_text())
    labels = load_label_png(out / "img0.png")
    masks = decode_rle(record["segments"]) if record["segments"] else np.zeros((0, *labels.shape), bool)
    for k, mask in enumerate(masks):  # the label PNG and the RLE agree (later segments drawn over earlier ones)
        assert (labels[mask] >= k + 1).all()
    panoptic = json.loads((out / "panoptic.json").read_text())
    assert len(panoptic["images"]) == 3 and [c["isthing"] for c in panoptic["categories"]] == [1, 1, 0]
    rgb = np.asarray(Image.open(out / panoptic["annotations"][0]["file_name"])).astype(np.int64)
    ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    assert set(np.unique(ids)) - {0} == {s["id"] for s in panoptic["annotations"][0]["segments_info"]}
    assert (out / "img0_overlay.png").exists()


def test_a_run_stopped_midway_resumes_with_the_inputs_left(tmp_path, pipe):
    folder = images(tmp_path / "in", count=3)
    args = parse_args([str(folder), "--out", str(tmp_path / "out"), "--expression", "the red box", "--no-progress"])
    finished = []

    def crash_after_two(path):
        finished.append(path.name)
        if len(finished) == 2:
            raise KeyboardInterrupt  # as a user's Ctrl-C or a killed job

    with pytest.raises(KeyboardInterrupt):
        run(args, pipe, after_each=crash_after_two)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.json")) == ["img0.json", "img1.json"]
    assert not list(out.glob(".*tmp*"))  # nothing half-written
    before = (out / "img0.json").stat().st_mtime_ns
    assert run(args, pipe) == {"done": 1, "skipped": 2, "failed": 0}
    assert (out / "img0.json").stat().st_mtime_ns == before
    assert json.loads((out / "img2.json").read_text())["task"] == "referring"


def test_videos_stream_to_jsonl_and_per_frame_pngs_and_regions_prompt_images(tmp_path, pipe, monkeypatch):
    def whole_clip(*args, **kwargs):
        raise AssertionError("predict must stream videos (track_stream), never hold a whole clip")

    monkeypatch.setattr(pipe, "track", whole_clip)
    clip = tmp_path / "in" / "clip.gif"
    clip.parent.mkdir()
    frames = [Image.fromarray(picture(moving_boxes(t))) for t in range(3)]
    frames[0].save(clip, save_all=True, append_images=frames[1:], duration=100)
    Image.fromarray(picture(BOXES)).save(tmp_path / "in" / "still.png")
    regions = tmp_path / "regions.json"
    regions.write_text(json.dumps([{"points": [[10, 15]], "point_labels": [1]}, {"box": [34, 10, 58, 40]}]))
    assert run(
        parse_args([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--regions", str(regions), "--no-progress"]),
        pipe,
    ) == {"done": 2, "skipped": 0, "failed": 0}
    lines = (tmp_path / "out" / "clip.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame_index"] for line in lines] == [0, 1, 2]
    assert len(list((tmp_path / "out" / "clip").glob("*.png"))) == 3
    assert len(json.loads((tmp_path / "out" / "still.json").read_text())["segments"]) == 2


def test_an_unreadable_input_is_named_and_the_others_are_done(tmp_path, pipe, capsys):
    folder = images(tmp_path / "in", count=2)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    args = parse_args([str(folder), "--out", str(tmp_path / "out"), "--expression", "the red box", "--no-progress"])
    assert run(args, pipe) == {"done": 2, "skipped": 0, "failed": 1}
    assert "failed " in capsys.readouterr().err and not (tmp_path / "out" / "broken.json").exists()


def test_bad_regions_are_one_line_and_exit_status_2(tmp_path, capsys):
    images(tmp_path / "in", count=1)
    regions = tmp_path / "regions.json"
    regions.write_text(json.dumps([{"clicks": [[1, 2]]}]))
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--regions", str(regions), "--no-progress"])
    assert stopped.value.code == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: unknown region keys ['clicks']; use ['box', 'point_labels', 'points', 'scribble']"
    )


def test_two_accelerate_processes_write_the_files_of_one(tmp_path, pipe):
    """Sharded over 2 CPU processes (gloo), every output file is byte for byte the one-process file.

    Both at one thread, as the launched processes run: a convolution sums in another order with more threads,
    which moves the embedded model's scores in the last printed digit."""
    folder = images(tmp_path / "in", count=3)
    args = [str(folder), "--classes", "red box, green box, wall", "--stuff", "wall", "--no-progress"]
    with one_thread():
        run(parse_args([*args, "--out", str(tmp_path / "one")]), pipe)
    two = launch_two_cpu_processes("hyperseg_lite.predict", [*args, "--out", str(tmp_path / "two")], port=29572)
    assert two.returncode == 0, two.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "two").iterdir()) and "panoptic.json" in files
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
