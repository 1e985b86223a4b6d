"""research/tools/mask_feature_probe.py runs stage 1's instance probe on a whole model's mask_features."""

from __future__ import annotations

import json

from helpers import load_tool

from hyperseg_lite import build_random_model


def test_the_instance_probe_reads_a_saved_model_and_reports_mean_iou_and_merged_share(tmp_path, capsys):
    loaded = build_random_model("tiny2", seed=0)
    loaded.model.save_pretrained(tmp_path / "model")
    loaded.tokenizer.save_pretrained(tmp_path / "model")
    out = tmp_path / "probe.json"
    results = load_tool("mask_feature_probe").main(
        ["--checkpoint", str(tmp_path / "model"), "--val-scenes", "3", "--probe-scenes", "3", "--json", str(out)]
    )
    figures = results[str(tmp_path / "model")]
    assert set(figures) == {"decoder_instance_probe", "decoder_instance_below_half"}
    assert all(0.0 <= v <= 1.0 for v in figures.values())
    assert json.loads(out.read_text()) == results
    assert "decoder_instance_probe" in capsys.readouterr().out
