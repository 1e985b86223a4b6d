"""Exporters round-trip: RLE decodes to the same masks, the label PNG reloads to the same labels."""

from __future__ import annotations

import json

import numpy as np

from hyperseg_lite.pipeline import SegmentationResult
from hyperseg_lite.pipeline.exporters import decode_rle, load_label_png


def result():
    rng = np.random.default_rng(0)
    masks = rng.random((3, 37, 53)) > 0.7
    masks[1] &= ~masks[0]
    masks[2] &= ~(masks[0] | masks[1])
    return SegmentationResult(
        "instance", "a, b", masks, ["a", "b", "a"], np.array([0.9, 0.5, 0.7]), np.array([1, 2, 3])
    )


def test_rle_round_trip():
    r = result()
    rles = r.to_coco_rle()
    assert [x["label"] for x in rles] == ["a", "b", "a"]
    json.dumps(rles)  # JSON-ready
    assert np.array_equal(decode_rle(rles), r.masks)


def test_label_png_round_trip(tmp_path):
    r = result()
    path = r.save_label_png(tmp_path / "labels.png")
    reloaded = load_label_png(path)
    assert np.array_equal(reloaded, r.label_map())
    for i in range(3):
        assert np.array_equal(reloaded == i + 1, r.masks[i])


def test_json_has_everything():
    data = json.loads(result().to_json())
    assert data["task"] == "instance" and data["image_size"] == [37, 53] and len(data["segments"]) == 3
    assert not data["no_match"]


def test_empty_result():
    empty = SegmentationResult.empty("referring", "nothing", (10, 12))
    assert empty.no_match and empty.to_coco_rle() == [] and empty.label_map().shape == (10, 12)
    assert not empty.union().any()
